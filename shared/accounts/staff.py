"""Staff users of the print shop (admins and staff): created by admins, who never see or
mail a password; the staff user sets it through a single-use link, like customers."""

from __future__ import annotations

from datetime import timedelta

from peewee import IntegrityError

from shared import audit
from shared.accounts.passwords import PasswordVault, check_password
from shared.accounts.sessions import end_staff_sessions
from shared.accounts.usernames import check_username, username_key
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.mail.addresses import check_email
from shared.models import StaffToken, StaffUser, SystemDefault
from shared.tokens import LinkState, link_state, new_token, token_hash

ROLES = (StaffUser.ROLE_STAFF, StaffUser.ROLE_ADMIN)


def find_staff(username: str) -> StaffUser | None:
    """The staff user called ``username`` as ``shared.accounts.usernames`` compares names."""
    key = username_key(username)
    return None if key is None else StaffUser.get_or_none(StaffUser.username == key)


def _values(staff: StaffUser) -> dict:
    return {
        "username": staff.username,
        "name": staff.name,
        "email": staff.email,
        "role": staff.role,
        "active": staff.active,
    }


def create_staff(
    settings: Settings, username: str, name: str, email: str, admin: bool, password: str
) -> StaffUser:
    """Create a staff user with a password (the command line's way, for the first admin)."""
    username = check_username(username)
    check = check_password(password, username)
    if not check.ok:
        raise Invalid("password", "breaks the rules: " + ", ".join(sorted(check.broken)))
    password_hash = PasswordVault(settings.security).hash(password)
    with write_transaction():
        staff = invite_staff(username, name, email, admin)
        staff.password_hash = password_hash
        staff.password_changed_at = utcnow()
        staff.save()
    return staff


def invite_staff(username: str, name: str, email: str, admin: bool) -> StaffUser:
    """Create a staff user without a password; the activation link lets them choose one."""
    username = check_username(username)
    email = check_email("email", email)
    taken = Conflict(f"staff user {username!r} exists already")
    try:
        with write_transaction():
            if find_staff(username) is not None:
                raise taken
            staff = StaffUser.create(
                username=username,
                name=name.strip() or username,
                email=email,
                role=StaffUser.ROLE_ADMIN if admin else StaffUser.ROLE_STAFF,
            )
            audit.record(audit.STAFF_CREATE, f"staff {username}", audit.changes({}, _values(staff)))
            return staff
    except IntegrityError:
        raise taken from None


def _active_admins() -> int:
    return (
        StaffUser.select()
        .where((StaffUser.role == StaffUser.ROLE_ADMIN) & (StaffUser.active == True))  # noqa: E712
        .count()
    )


def update_staff(staff: StaffUser, *, name: str, email: str, role: str, active: bool) -> StaffUser:
    """Change a staff user; disabling ends their sessions at once.

    The last active admin can be neither disabled nor made staff: nobody could manage
    the portal any more.
    """
    if role not in ROLES:
        raise Invalid("role", "staff or admin")
    email = check_email("email", email)
    with write_transaction():
        staff = StaffUser.get_by_id(staff.id)
        before = _values(staff)
        was_admin = staff.is_admin and staff.active
        if was_admin and (role != StaffUser.ROLE_ADMIN or not active) and _active_admins() <= 1:
            raise Conflict("the last active admin cannot be disabled or made staff")
        staff.name = name.strip() or staff.username
        staff.email = email
        staff.role = role
        staff.active = active
        staff.save()
        if not active:
            end_staff_sessions(staff)
        changed = audit.changes(before, _values(staff))
        if changed:
            audit.record(audit.STAFF_UPDATE, f"staff {staff.username}", changed)
    return staff


def all_staff() -> list[StaffUser]:
    """Every staff user, active ones first, by name."""
    return list(StaffUser.select().order_by(StaffUser.active.desc(), StaffUser.name))


def issue_staff_token(settings: Settings, staff: StaffUser) -> str:
    """A fresh single-use link token for ``staff`` to set a password; inside a transaction."""
    token = new_token()
    StaffToken.create(
        staff=staff,
        token_hash=token_hash(token),
        expires_at=utcnow() + timedelta(minutes=settings.portal.activation_link_minutes),
    )
    return token


def staff_token_state(token: str) -> tuple[LinkState, StaffToken | None]:
    """Whether a staff activation token can still be used (does not use it up)."""
    row = StaffToken.get_or_none(StaffToken.token_hash == token_hash(token))
    if row is None:
        return LinkState.UNKNOWN, None
    return link_state(row.used_at, row.expires_at, utcnow(), row.staff.active), row


def set_staff_password_with_token(vault: PasswordVault, token: str, password: str) -> StaffUser:
    """Use the token up and store the password; every session of the user ends."""
    with write_transaction():
        state, row = staff_token_state(token)
        if state is not LinkState.VALID:
            raise Conflict(f"activation link is {state.value}")
        staff = row.staff
        check = check_password(password, staff.username)
        if not check.ok:
            raise Invalid("password", ", ".join(sorted(check.broken)))
        staff.password_hash = vault.hash(password)
        staff.password_changed_at = utcnow()
        staff.save()
        StaffToken.update(used_at=utcnow()).where(
            (StaffToken.staff == staff) & StaffToken.used_at.is_null()
        ).execute()
        end_staff_sessions(staff)
        audit.record(audit.STAFF_PASSWORD_SET, f"staff {staff.username}")
    return staff


def two_factor_required() -> bool:
    """Whether admins require a second factor of every staff user."""
    return SystemDefault.portal().staff_two_factor_required


def needs_second_factor(staff: StaffUser) -> bool:
    """After the password, a TOTP code (or its set-up) is still needed."""
    return staff.has_two_factor or two_factor_required()


def staff_sign_in(vault: PasswordVault, username: str, password: str) -> StaffUser | None:
    """The active staff user with these credentials, upgrading an outdated hash.

    A user who needs a second factor is not signed in yet: the caller asks for it and
    ``shared.accounts.two_factor`` records the sign-in once it is given.
    """
    staff = find_staff(username)
    if not vault.verify(staff.password_hash if staff else None, password):
        audit.record(
            audit.STAFF_SIGN_IN_FAILED,
            f"staff {username.strip()[:100]}",
            "wrong username or password",
        )
        return None
    if not staff.active:
        audit.record(audit.STAFF_SIGN_IN_FAILED, f"staff {staff.username}", "disabled")
        return None
    with write_transaction():
        if vault.needs_rehash(staff.password_hash):
            staff.password_hash = vault.hash(password)
            staff.save()
        if not needs_second_factor(staff):
            record_staff_sign_in(staff, "password")
    return staff


def staff_by_ids(ids: set[int]) -> list[StaffUser]:
    return list(StaffUser.select().where(StaffUser.id.in_(ids)))


def record_staff_sign_in(staff: StaffUser, how: str) -> None:
    """The staff user is in: password alone, or with a TOTP or recovery code."""
    audit.record(
        audit.STAFF_SIGN_IN,
        f"staff {staff.username}",
        how,
        actor=audit.current_actor().as_(audit.ACTOR_STAFF, staff.username),
    )
