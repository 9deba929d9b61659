"""Server-side sessions: the cookie holds a random key, the database its hash.

Deleting the row ends the session, even for a copied cookie; setting a new
password deletes every session of that login.
"""

from __future__ import annotations

from datetime import timedelta

from peewee import JOIN

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import Customer, PortalLogin, PortalSession, StaffUser
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


def find_session(key: str) -> PortalSession | None:
    """The live session for ``key``, or None if it ended or expired.

    Its login with the customer, or its staff user, come in the same query: every
    signed-in request asks for them.
    """
    return (
        PortalSession.select(PortalSession, PortalLogin, Customer, StaffUser)
        .join(PortalLogin, JOIN.LEFT_OUTER)
        .join(Customer, JOIN.LEFT_OUTER)
        .switch(PortalSession)
        .join(StaffUser, JOIN.LEFT_OUTER)
        .where((PortalSession.key_hash == token_hash(key)) & (PortalSession.expires_at > utcnow()))
        .first()
    )


def end_session(key: str) -> None:
    with write_transaction():
        PortalSession.delete().where(PortalSession.key_hash == token_hash(key)).execute()


def end_sessions_of(login: PortalLogin) -> int:
    """End every session of ``login``; call inside a write transaction."""
    return PortalSession.delete().where(PortalSession.login == login).execute()


def end_staff_sessions(staff: StaffUser) -> int:
    """End every session of a staff user (disabled, new password); inside a write transaction."""
    return PortalSession.delete().where(PortalSession.staff == staff).execute()
