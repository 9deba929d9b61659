"""The whole system as a browser meets it: gunicorn, the worker, clamd, SMTP, on localhost."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import base_sections, write_ini
from smtp_helpers import RecordingHandler, free_port, smtp_server

from shared.accounts.api_tokens import SCOPE_AGENT, create_token
from shared.accounts.staff import create_staff
from shared.config import AgentSettings, Settings, load_agent_settings, load_settings
from shared.db import bind_database, database
from shared.schema import init_database

STAFF_PASSWORD = "Setzerei und Druckerei 1887"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@dataclass
class RunningSystem:
    settings: Settings
    base_url: str
    api_token: str
    mail: RecordingHandler
    directory: Path
    agent: AgentSettings
    processes: list[subprocess.Popen] = field(default_factory=list)

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer")


def wait_until_serving(base_url: str, timeout: float = 30) -> None:
    """Wait until the portal at ``base_url`` answers its health check."""
    _wait_for(f"{base_url}/healthz", timeout)


def seeded_system(
    directory: Path, clamd, smtp_port: int, portal: dict, ini_overrides: dict
) -> Settings:
    """client.ini for a system of real processes (clamd, SMTP on ``smtp_port``, the
    worker's queue in SQLite) with ``portal`` and ``ini_overrides`` on top; its database
    made, with the staff admin "anna". The database is left bound."""
    overrides = {
        "portal": portal,
        "clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        "worker": {"queue_url": "sqlite:///data/queue.db"},
    }
    for section, values in ini_overrides.items():
        overrides.setdefault(section, {}).update(values)
    settings = load_settings(write_ini(directory, base_sections(smtp_port, **overrides)))
    bind_database(settings.database.url)
    init_database(settings.portal.shop_name)
    create_staff(settings, "anna", "Anna Muster", "anna@druckerei.example", True, STAFF_PASSWORD)
    return settings


@contextmanager
def running_system(directory: Path, clamd, **ini_overrides) -> Iterator[RunningSystem]:
    """Portal (gunicorn, gthread), worker and hotfolder agent as real processes; the agent in a
    directory of its own (``agent/``, [agent] only) talking to the portal over loopback."""
    handler = RecordingHandler()
    port = free_port()
    with smtp_server(handler) as smtp_port:
        base_url = {"base_url": f"http://127.0.0.1:{port}"}
        settings = seeded_system(directory, clamd, smtp_port, base_url, ini_overrides)
        ini = settings.source
        token = create_token("browser-tests")
        agent_ini = write_ini(
            _directory(directory / "agent"),
            {
                "agent": {
                    "portal_url": settings.portal.base_url,
                    "token": create_token("hotfolder", SCOPE_AGENT),
                    "hotfolder_root": "hotfolders",
                    "notification_dir": "notifications",
                    "stable_seconds": "0.5",
                    "batch_window_seconds": "0",
                    "rescan_seconds": "5",
                    # Approval files are asked for with every beat.
                    "heartbeat_seconds": "2",
                }
            },
        )
        database.close()
        system = RunningSystem(
            settings,
            settings.portal.base_url,
            token,
            handler,
            directory,
            load_agent_settings(agent_ini),
        )
        portal = [sys.executable, "-m", "portal", "--config", str(ini)]
        agent = [sys.executable, "-m", "hotfolder_agent", "--config", str(agent_ini)]
        for name, command in (
            ("portal", [*portal, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]),
            ("worker", [*portal, "worker", "--workers", "2"]),
            ("agent", agent),
        ):
            with (directory / f"{name}.log").open("ab") as log:
                system.processes.append(
                    subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
                )
        try:
            _wait_for(f"{system.base_url}/healthz")
            yield system
        finally:
            for process in system.processes:
                process.terminate()
            for process in system.processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
