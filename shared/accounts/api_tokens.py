"""Bearer tokens for the API: created once, shown once, stored hashed, revocable.

Each token has a scope (seed 000: staff create a token per system that signs in): a
workflow token is for the ERP or PTworkflow and reaches the workflow API; an agent
token is for a hotfolder agent and reaches only the agent endpoints. The prefix tells
them apart at a glance (``ptp_`` workflow, ``pta_`` agent).
"""

from __future__ import annotations

from datetime import timedelta

from peewee import IntegrityError

from shared import audit
from shared.clock import utcnow
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.models import ApiToken
from shared.tokens import new_token, token_hash

SCOPE_WORKFLOW = ApiToken.SCOPE_WORKFLOW
SCOPE_AGENT = ApiToken.SCOPE_AGENT
SCOPES = ApiToken.SCOPES
PREFIXES = {SCOPE_WORKFLOW: "ptp_", SCOPE_AGENT: "pta_"}
TOKEN_PREFIX = PREFIXES[SCOPE_WORKFLOW]
# Last use is written at most this often per token (an agent asks several times a second).
LAST_USE_EVERY = timedelta(minutes=1)


def create_token(name: str, scope: str = SCOPE_WORKFLOW) -> str:
    """Create a token called ``name`` for ``scope`` and return it; it cannot be shown again."""
    name = name.strip()
    if not name:
        raise Invalid("name", "say who uses the token, e.g. ptworkflow")
    if scope not in SCOPES:
        raise Invalid("scope", "one of " + ", ".join(SCOPES))
    token = PREFIXES[scope] + new_token()
    try:
        with write_transaction():
            ApiToken.create(name=name, token_hash=token_hash(token), scope=scope)
            audit.record(audit.TOKEN_CREATE, f"token {name} ({scope})")
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists already") from None
    return token


def revoke_token(name: str) -> None:
    with write_transaction():
        if not ApiToken.update(revoked_at=utcnow()).where(ApiToken.name == name).execute():
            raise NotFound(f"no token named {name!r}")
        audit.record(audit.TOKEN_REVOKE, f"token {name}")


def authenticate_token(token: str, host: str = "") -> ApiToken | None:
    """The live token matching ``token``, or None (unknown or revoked).

    Its last use (and the address ``host`` it came from) is recorded, at most once a
    minute unless the address changed.
    """
    row = ApiToken.get_or_none(
        (ApiToken.token_hash == token_hash(token)) & (ApiToken.revoked_at.is_null())
    )
    if row is None:
        return None
    now = utcnow()
    stale = row.last_used_at is None or now - row.last_used_at > LAST_USE_EVERY
    if stale or (host and host != row.last_host):
        with write_transaction():
            ApiToken.update(last_used_at=now, last_host=host or row.last_host).where(
                ApiToken.id == row.id
            ).execute()
        row.last_used_at, row.last_host = now, host or row.last_host
    return row


def all_tokens() -> list[ApiToken]:
    """Every token, live ones first, by name (the tokens page and ``ptportal token list``)."""
    return list(ApiToken.select().order_by(ApiToken.revoked_at.is_null(False), ApiToken.name))
