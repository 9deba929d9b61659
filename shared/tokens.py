"""Random secrets handed to people (links, API tokens, sessions) and how they are stored.

Tokens carry 256 bits from ``secrets``; the database keeps only their SHA-256,
so a leaked database cannot be replayed as links or bearer tokens.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class LinkState(enum.Enum):
    """Whether a single-use link (activation, staff invitation) can still be used."""

    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


def link_state(
    used_at: datetime | None, expires_at: datetime, now: datetime, holder_may_use: bool
) -> LinkState:
    """The one rule for single-use links: used once, then never; expired at ``expires_at``
    or when the person it was made for may no longer sign in."""
    if used_at is not None:
        return LinkState.USED
    if expires_at <= now or not holder_may_use:
        return LinkState.EXPIRED
    return LinkState.VALID
