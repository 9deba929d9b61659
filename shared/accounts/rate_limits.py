"""Rate limit counters in the database: the one place where limits are counted.

Failed sign-ins per username are a security rule, so every gunicorn worker and every
portal host must count together; a counter per process (``memory://``) would let each of
N workers allow the whole limit. Per-address limits are counted here too, for the same
reason: requests are spread unevenly over the workers, so a limit divided by the worker
count would refuse early in one worker and allow too much in another.

A counter is a fixed window: the first request opens it for ``window_seconds``, each
request adds to it atomically (one upsert), and an expired window starts again at zero.
``portal.rate_limits`` plugs these functions into Flask-Limiter as its storage
``database://``; another storage (Redis) would be another such plug, chosen in client.ini.
"""

from __future__ import annotations

import time

from shared.db import write_transaction
from shared.models import RateLimitCounter


def add_hits(key: str, window_seconds: float, amount: int = 1) -> int:
    """Count ``amount`` requests for ``key``; returns the count of its current window."""
    now = time.time()
    with write_transaction():
        RateLimitCounter.delete().where(RateLimitCounter.expires_at <= now).execute()
        (
            RateLimitCounter.insert(key=key, count=amount, expires_at=now + window_seconds)
            .on_conflict(
                conflict_target=[RateLimitCounter.key],
                update={RateLimitCounter.count: RateLimitCounter.count + amount},
            )
            .execute()
        )
        return RateLimitCounter.get(RateLimitCounter.key == key).count


def _live(key: str) -> RateLimitCounter | None:
    return RateLimitCounter.get_or_none(
        (RateLimitCounter.key == key) & (RateLimitCounter.expires_at > time.time())
    )


def hits(key: str) -> int:
    """The count of ``key``'s current window (0 when none is open)."""
    counter = _live(key)
    return counter.count if counter else 0


def window_end(key: str) -> float:
    """When ``key``'s current window ends (seconds since the epoch; now when none is open)."""
    counter = _live(key)
    return counter.expires_at if counter else time.time()


def forget(key: str) -> None:
    """Drop ``key``'s counter."""
    with write_transaction():
        RateLimitCounter.delete().where(RateLimitCounter.key == key).execute()


def forget_all() -> int:
    """Drop every counter; returns how many there were."""
    with write_transaction():
        return RateLimitCounter.delete().execute()
