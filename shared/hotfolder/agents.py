"""When a hotfolder agent counts as gone: one rule for the staff page and for taking over work.

An agent beats every ``[agent] heartbeat_seconds``; after three missed beats (and never
sooner than ``MIN_SILENCE``, so a short interval does not flap) it is gone, and so are
its claims.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.models import AgentHeartbeat

MISSED_HEARTBEATS = 3
MIN_SILENCE = timedelta(seconds=10)


def silence_allowed(heartbeat_seconds: float) -> timedelta:
    """How long an agent may stay silent and still count as running."""
    return max(timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds), MIN_SILENCE)


def is_alive(beat: AgentHeartbeat, heartbeat_seconds: float, now: datetime) -> bool:
    """True if the agent of ``beat`` has not said it stopped and beat recently enough."""
    return beat.stopped_at is None and beat.seen_at >= now - silence_allowed(heartbeat_seconds)
