"""One notion of "now" for the whole project: naive UTC, as stored in the database."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC without tzinfo (SQLite stores no offsets)."""
    return datetime.now(UTC).replace(tzinfo=None)
