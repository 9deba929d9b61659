"""Staff users of the print shop (admins and staff)."""

from __future__ import annotations

from peewee import IntegrityError

from shared.accounts.passwords import PasswordVault, check_password
from shared.accounts.usernames import check_username, username_key
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.mail.addresses import check_email
from shared.models import StaffUser


def create_staff(
    settings: Settings, username: str, name: str, email: str, admin: bool, password: str
) -> StaffUser:
    """Create a staff user; the password follows the same rules as customers'."""
    if not username.strip():
        raise Invalid("username", "required")
    username = check_username(username)
    check = check_password(password, username)
    if not check.ok:
        raise Invalid("password", "breaks the rules: " + ", ".join(sorted(check.broken)))
    password_hash = PasswordVault(settings.security).hash(password)
    try:
        with write_transaction():
            return StaffUser.create(
                username=username,
                name=name,
                email=check_email("email", email),
                role=StaffUser.ROLE_ADMIN if admin else StaffUser.ROLE_STAFF,
                password_hash=password_hash,
            )
    except IntegrityError:
        raise Conflict(f"staff user {username!r} exists already") from None


def staff_sign_in(vault: PasswordVault, username: str, password: str) -> StaffUser | None:
    """The active staff user with these credentials, upgrading an outdated hash."""
    key = username_key(username)
    staff = None if key is None else StaffUser.get_or_none(StaffUser.username == key)
    if not vault.verify(staff.password_hash if staff else None, password):
        return None
    if not staff.active:
        return None
    if vault.needs_rehash(staff.password_hash):
        with write_transaction():
            staff.password_hash = vault.hash(password)
            staff.save()
    return staff
