"""Who is signed in, as Flask-Login sees it: a customer's portal login or a staff user.

``get_id`` returns the server-side session key, so ending the session row signs
the browser out wherever its cookie went.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, redirect, request, url_for
from flask_login import UserMixin, current_user

from shared.accounts.logins import may_use_portal
from shared.accounts.sessions import find_session
from shared.models import PortalLogin, StaffUser


class CustomerUser(UserMixin):
    """A customer's portal login in a live session."""

    is_staff = False

    def __init__(self, login: PortalLogin, session_key: str) -> None:
        self.login = login
        self.customer = login.customer
        self.session_key = session_key
        self.display_name = login.username

    def get_id(self) -> str:
        return self.session_key


class StaffMember(UserMixin):
    """A print shop employee in a live session."""

    is_staff = True

    def __init__(self, staff: StaffUser, session_key: str) -> None:
        self.staff = staff
        self.session_key = session_key
        self.display_name = staff.name or staff.username

    @property
    def is_admin(self) -> bool:
        return self.staff.role == StaffUser.ROLE_ADMIN

    def get_id(self) -> str:
        return self.session_key


def load_user(session_key: str) -> CustomerUser | StaffMember | None:
    """Flask-Login's loader: only a live session of an active login or staff user counts."""
    session = find_session(session_key)
    if session is None:
        return None
    if session.login is not None and may_use_portal(session.login):
        return CustomerUser(session.login, session_key)
    if session.staff is not None and session.staff.active:
        return StaffMember(session.staff, session_key)
    return None


def customer_required(view):
    """Only a signed-in customer; staff are sent to their own pages."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


def staff_required(view):
    """Only a signed-in staff user."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated or not current_user.is_staff:
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def require_admin():
    """A blueprint's ``before_request``: staff sign in first, and only admins get further
    (403 for other staff); so every route the blueprint has, or gets later, is guarded."""
    if not current_user.is_authenticated or not current_user.is_staff:
        return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
    if not current_user.is_admin:
        abort(403)
    return None


def admin_required(view):
    """Only a signed-in admin (other staff: 403)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        refusal = require_admin()
        if refusal is not None:
            return refusal
        return view(*args, **kwargs)

    return wrapper
