"""The signed-in customer as Flask-Login sees it: a portal login plus its server session."""

from __future__ import annotations

from flask_login import UserMixin

from shared.models import PortalLogin
from shared.sessions import find_session


class CustomerUser(UserMixin):
    """A customer's portal login in a live session; ``get_id`` is the session key."""

    def __init__(self, login: PortalLogin, session_key: str) -> None:
        self.login = login
        self.customer = login.customer
        self.session_key = session_key

    def get_id(self) -> str:
        return self.session_key


def load_user(session_key: str) -> CustomerUser | None:
    """Flask-Login's loader: only a live session of an active login signs anybody in."""
    session = find_session(session_key)
    if session is None or session.login is None or not session.login.is_active:
        return None
    return CustomerUser(session.login, session_key)
