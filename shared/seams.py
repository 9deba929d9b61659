"""Test seam: make a portal or worker process stand still at a named step, to be killed there.

Set ``PTPORTAL_PAUSE_AT=<step>`` (a ``STEP_*`` of ``shared.files.receiving`` or
``shared.files.intake``, or a step of ``shared.conversations.importing``) and
``PTPORTAL_PAUSE_MARKER=<file>``: the first process to reach that step writes
``<step> <pid>`` into the marker file and sleeps — for ever, or for
``PTPORTAL_PAUSE_SECONDS``. Once the marker exists, no process pauses again, so the process
that replaces a killed one (gunicorn's next worker) goes through. Without these variables
it does nothing. Never set them in production.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PAUSE_AT = "PTPORTAL_PAUSE_AT"
PAUSE_MARKER = "PTPORTAL_PAUSE_MARKER"
PAUSE_SECONDS = "PTPORTAL_PAUSE_SECONDS"


def pause_at(step: str) -> None:
    """Pause here if the environment asks for ``step`` and no process paused there yet."""
    if os.environ.get(PAUSE_AT) != step:
        return
    marker = Path(os.environ.get(PAUSE_MARKER, ""))
    if not marker.name or marker.exists():
        return
    log.warning("test seam: pausing at %s", step)
    marker.write_text(f"{step} {os.getpid()}\n", encoding="utf-8")
    deadline = time.monotonic() + float(os.environ.get(PAUSE_SECONDS, "inf"))
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
