"""Server-side sessions: the cookie holds a random key, the database its hash.

Deleting the row ends the session, even for a copied cookie; setting a new
password deletes every session of that login.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from peewee import JOIN

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import Customer, OrderListVersion, PortalLogin, PortalSession, StaffUser
from shared.prepared import PreparedSelect
from shared.tokens import new_token, token_hash


def start_session(
    hours: int, login: PortalLogin | None = None, staff: StaffUser | None = None
) -> str:
    """Create a session and return its key (to go into the signed cookie only)."""
    key = new_token()
    with write_transaction():
        PortalSession.delete().where(PortalSession.expires_at < utcnow()).execute()
        PortalSession.create(
            key_hash=token_hash(key),
            login=login,
            staff=staff,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    return key


def _live_session_query(key_hash: str, now: datetime):
    return (
        PortalSession.select(
            PortalSession, PortalLogin, Customer, OrderListVersion.version, StaffUser
        )
        .join(PortalLogin, JOIN.LEFT_OUTER)
        .join(Customer, JOIN.LEFT_OUTER)
        .join(OrderListVersion, JOIN.LEFT_OUTER, attr="order_list")
        .switch(PortalSession)
        .join(StaffUser, JOIN.LEFT_OUTER)
        .where((PortalSession.key_hash == key_hash) & (PortalSession.expires_at > now))
        .limit(1)
    )


# Every signed-in request asks for its session: the SQL is built once.
_live_session = PreparedSelect(
    _live_session_query, "example-session-key-hash", datetime(1901, 2, 3, 4, 5, 6, 789012)
)


def find_session(key: str) -> PortalSession | None:
    """The live session for ``key``, or None if it ended or expired.

    Its login with the customer and the version of the customer's order list
    (``shared.list_versions``), or its staff user, come in the same query: every
    signed-in request asks for them.
    """
    return _live_session.first(token_hash(key), utcnow())


def end_session(key: str) -> None:
    with write_transaction():
        PortalSession.delete().where(PortalSession.key_hash == token_hash(key)).execute()


def end_sessions_of(login: PortalLogin) -> int:
    """End every session of ``login``; call inside a write transaction."""
    return PortalSession.delete().where(PortalSession.login == login).execute()
