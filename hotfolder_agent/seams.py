"""Test seam: make the agent stop still at a named step, so tests can kill it exactly there.

Set ``PTPORTAL_AGENT_PAUSE_AT=<step>`` (a ``STEP_*`` name of ``download``, ``delivery``,
``notification`` or ``outbound``: ``download_started``, ``verified``, ``planned``,
``linked``, ``placed``, ``before_xml``, ``upload_started``) and
``PTPORTAL_AGENT_PAUSE_MARKER=<file>``: the first time the agent reaches that step it
writes the marker file and sleeps — for ever, or for ``PTPORTAL_AGENT_PAUSE_SECONDS``.
Without these variables it does nothing. The steps up to ``linked`` are reached on a
download thread, ``upload_started`` on the upload thread, the others on the main loop.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PAUSE_AT = "PTPORTAL_AGENT_PAUSE_AT"
PAUSE_MARKER = "PTPORTAL_AGENT_PAUSE_MARKER"
PAUSE_SECONDS = "PTPORTAL_AGENT_PAUSE_SECONDS"

_paused: set[str] = set()


def pause_at(step: str) -> None:
    """Pause here if the environment asks for ``step`` (once per process)."""
    if os.environ.get(PAUSE_AT) != step or step in _paused:
        return
    _paused.add(step)
    log.warning("test seam: pausing at %s", step)
    marker = os.environ.get(PAUSE_MARKER)
    if marker:
        Path(marker).write_text(f"{step} {os.getpid()}\n", encoding="utf-8")
    seconds = float(os.environ.get(PAUSE_SECONDS, "inf"))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
