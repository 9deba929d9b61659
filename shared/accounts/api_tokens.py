"""Bearer tokens for the workflow API: created once, shown once, stored hashed, revocable."""

from __future__ import annotations

from datetime import timedelta

from peewee import IntegrityError

from shared import audit
from shared.clock import utcnow
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.models import ApiToken
from shared.tokens import new_token, token_hash

TOKEN_PREFIX = "ptp_"


def create_token(name: str) -> str:
    """Create a token called ``name`` and return it; it cannot be shown again."""
    name = name.strip()
    if not name:
        raise Invalid("name", "say who uses the token, e.g. ptworkflow")
    token = TOKEN_PREFIX + new_token()
    try:
        with write_transaction():
            ApiToken.create(name=name, token_hash=token_hash(token))
            audit.record(audit.TOKEN_CREATE, f"token {name}")
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists already") from None
    return token


def revoke_token(name: str) -> None:
    with write_transaction():
        if not ApiToken.update(revoked_at=utcnow()).where(ApiToken.name == name).execute():
            raise NotFound(f"no token named {name!r}")
        audit.record(audit.TOKEN_REVOKE, f"token {name}")


def authenticate_token(token: str) -> ApiToken | None:
    """The live token matching ``token``, or None (unknown or revoked)."""
    row = ApiToken.get_or_none(
        (ApiToken.token_hash == token_hash(token)) & (ApiToken.revoked_at.is_null())
    )
    if row is not None and (
        row.last_used_at is None or utcnow() - row.last_used_at > timedelta(minutes=1)
    ):
        with write_transaction():
            ApiToken.update(last_used_at=utcnow()).where(ApiToken.id == row.id).execute()
    return row
