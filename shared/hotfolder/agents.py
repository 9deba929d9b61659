"""When a hotfolder agent counts as gone: one rule for the staff page and for its leases.

An agent beats every ``heartbeat_seconds`` (it says how often with each beat); after
three missed beats (and never sooner than ``MIN_SILENCE``, so a short interval does not
flap) it is gone. Its files are leased for exactly that long and every beat extends the
lease, so the files of a gone agent become free for another at the moment it counts as
gone, and not before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.models import AgentHeartbeat

MISSED_HEARTBEATS = 3
MIN_SILENCE = timedelta(seconds=10)


def silence_allowed(heartbeat_seconds: float) -> timedelta:
    """How long an agent may stay silent and still count as running."""
    return max(timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds), MIN_SILENCE)


def lease_end(heartbeat_seconds: float, now: datetime) -> datetime:
    """Until when an agent beating every ``heartbeat_seconds`` holds what it leases now."""
    return now + silence_allowed(heartbeat_seconds)


def is_alive(beat: AgentHeartbeat, now: datetime) -> bool:
    """True if the agent of ``beat`` has not said it stopped and beat recently enough."""
    return beat.stopped_at is None and beat.seen_at >= now - silence_allowed(beat.heartbeat_seconds)
