"""Random secrets handed to people (links, API tokens, sessions) and how they are stored.

Tokens carry 256 bits from ``secrets``; the database keeps only their SHA-256,
so a leaked database cannot be replayed as links or bearer tokens.
"""

import hashlib
import secrets


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
