"""Flask-Limiter's storage ``database://``: its counters are ``shared.accounts.rate_limits``.

``[portal] rate_limit_storage_url`` picks the storage: ``database://`` (the default) counts
in the portal's database, so every gunicorn worker and every host shares one count;
``memory://`` counts per process (one worker only); ``redis://…`` uses Redis through the
limits library. Importing this module registers the scheme with limits (its documented way
to add a storage: a ``Storage`` subclass naming its ``STORAGE_SCHEME``).
"""

from __future__ import annotations

from typing import ClassVar

from limits.storage import Storage
from peewee import DatabaseError, InterfaceError

from shared.accounts import rate_limits
from shared.db import database

SCHEME = "database"


class DatabaseStorage(Storage):
    """Fixed-window counters in the portal's database (the only strategy the portal uses)."""

    STORAGE_SCHEME: ClassVar[list[str]] = [SCHEME]

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (DatabaseError, InterfaceError)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return rate_limits.add_hits(key, expiry, amount)

    def get(self, key: str) -> int:
        return rate_limits.hits(key)

    def get_expiry(self, key: str) -> float:
        return rate_limits.window_end(key)

    def check(self) -> bool:
        try:
            database.execute_sql("SELECT 1")
        except (DatabaseError, InterfaceError):
            return False
        return True

    def reset(self) -> int | None:
        return rate_limits.forget_all()

    def clear(self, key: str) -> None:
        rate_limits.forget(key)
