"""``ptportal-agent`` / ``python -m hotfolder_agent``: parse arguments, set up logging, run."""

from __future__ import annotations

import argparse
import logging
import sys

from shared.config import ConfigError, config_path, load_agent_settings

log = logging.getLogger("hotfolder_agent")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool = False) -> None:
    """One plain, greppable line per event on stderr (journald adds nothing to parse)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )
    # watchdog's own debug chatter is about its internals, not our files.
    logging.getLogger("watchdog").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> None:
    """Run the agent until SIGTERM; exit 0 then, 2 for a bad client.ini, 3 for an unusable
    state folder (``hotfolder_agent.agent``)."""
    parser = argparse.ArgumentParser(
        prog="ptportal-agent",
        description="Fetch clean uploads from the portal over HTTPS into the internal "
        "hotfolders, write XML job notifications and send staff files back to the portal.",
    )
    parser.add_argument(
        "--config", help="client.ini (default: $PTPORTAL_CONFIG, else ./client.ini)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = load_agent_settings(config_path(args.config))
    except ConfigError as exc:
        log.critical("action=start %s", exc)
        sys.exit(2)

    from hotfolder_agent.agent import Agent

    sys.exit(Agent(settings).run())
