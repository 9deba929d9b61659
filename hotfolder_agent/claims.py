"""When may an agent take over work another agent claimed? Only when that agent is gone.

Gone means: it said it stopped, its heartbeat is older than ``stale_after``, or it
ran on this host and its process no longer exists (the quick answer after a crash
and restart, so recovery does not wait for the heartbeat to go stale).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

from shared.clock import utcnow
from shared.models import AgentHeartbeat


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        # Another agent in this process (tests), or a recycled pid: the heartbeat decides.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie has ended; only its parent has not collected it yet.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def holder_is_gone(
    claimed_by: str, agent_id: str, stale_after: timedelta, now: datetime | None = None
) -> bool:
    """True if the agent ``claimed_by`` can no longer be working on its claim."""
    if claimed_by == agent_id:
        return False
    beat = AgentHeartbeat.get_or_none(AgentHeartbeat.agent_id == claimed_by)
    if beat is None or beat.stopped_at is not None:
        return True
    if beat.seen_at < (now or utcnow()) - stale_after:
        return True
    return beat.host == socket.gethostname() and not _process_exists(beat.pid)
