"""Test seam: make the mail import stand still at a named step, so tests can kill it there.

Set ``PTPORTAL_MAIL_PAUSE_AT=<step>`` (``fetched``, ``staged`` or ``committed``, see
``shared.conversations.importing``) and ``PTPORTAL_MAIL_PAUSE_MARKER=<file>``: the first
time the import reaches that step it writes the marker file and sleeps — for ever, or for
``PTPORTAL_MAIL_PAUSE_SECONDS``. Without these variables it does nothing. Never set them
in production.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PAUSE_AT = "PTPORTAL_MAIL_PAUSE_AT"
PAUSE_MARKER = "PTPORTAL_MAIL_PAUSE_MARKER"
PAUSE_SECONDS = "PTPORTAL_MAIL_PAUSE_SECONDS"

_paused: set[str] = set()


def pause_at(step: str) -> None:
    """Pause here if the environment asks for ``step`` (once per process)."""
    if os.environ.get(PAUSE_AT) != step or step in _paused:
        return
    _paused.add(step)
    log.warning("test seam: pausing the mail import at %s", step)
    marker = os.environ.get(PAUSE_MARKER)
    if marker:
        Path(marker).write_text(f"{step} {os.getpid()}\n", encoding="utf-8")
    deadline = time.monotonic() + float(os.environ.get(PAUSE_SECONDS, "inf"))
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
