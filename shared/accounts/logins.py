"""The portal login's life: creation, activation link, password, sign-in (SPEC §Behaviour 2–3)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import timedelta

from shared.accounts.passwords import PasswordVault, check_password
from shared.accounts.sessions import end_sessions_of
from shared.accounts.usernames import check_username, username_key
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.events import PASSWORD_SET, notify
from shared.files.folders import create_order_folders
from shared.models import (
    Activation,
    ActivationToken,
    Customer,
    Order,
    PortalLogin,
    SystemDefault,
)
from shared.tokens import new_token, token_hash

log = logging.getLogger(__name__)


class TokenState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SignInResult:
    login: PortalLogin | None
    inactive: bool = False


def login_of(customer: Customer) -> PortalLogin | None:
    return PortalLogin.get_or_none(PortalLogin.customer == customer)


def find_login(username: str) -> PortalLogin | None:
    """The login called ``username`` as ``shared.accounts.usernames`` compares names."""
    key = username_key(username)
    return None if key is None else PortalLogin.get_or_none(PortalLogin.username == key)


def may_use_portal(login: PortalLogin) -> bool:
    """An active login of a customer the print shop lets use the portal."""
    return login.is_active and login.customer.portal_enabled


def is_activated(login: PortalLogin) -> bool:
    activation = Activation.get_or_none(Activation.login == login)
    return bool(activation and activation.checked)


def _free_username(wanted: str) -> str:
    candidate, number = wanted, 1
    while find_login(candidate) is not None:
        number += 1
        candidate = f"{wanted}-{number}"
    return candidate


def create_login(customer: Customer, username: str = "", state: str = "") -> PortalLogin:
    """Create the customer's portal login from the ``ptportal`` system defaults."""
    if login_of(customer) is not None:
        raise Conflict(f"customer {customer.customer_no!r} already has a portal login")
    defaults = SystemDefault.portal()
    if not username:
        wanted = None
        if defaults.username_from == SystemDefault.USERNAME_FROM_EMAIL and customer.email:
            wanted = username_key(customer.email)
        username = _free_username(wanted or check_username(customer.customer_no))
    else:
        username = check_username(username)
        if find_login(username) is not None:
            raise Conflict(f"username {username!r} is taken")
    login = PortalLogin.create(
        customer=customer, username=username, state=state or defaults.login_state
    )
    Activation.create(login=login)
    log.info("portal login %s created for customer %s", username, customer.customer_no)
    return login


def create_folders_for_customer(settings: Settings, customer: Customer) -> int:
    """Create the folders of every order of ``customer`` that has none yet."""
    created = 0
    for order in customer.orders.where(Order.folders_created == False):  # noqa: E712
        create_order_folders(settings.storage.order_root, customer.customer_no, order.project_no)
        order.folders_created = True
        order.save()
        created += 1
    return created


def set_login_state(settings: Settings, login: PortalLogin, state: str) -> None:
    """Activate or deactivate a login; an active login gets its order folders."""
    if state not in (PortalLogin.STATE_ACTIVE, PortalLogin.STATE_INACTIVE):
        raise Invalid("state", "active or inactive")
    login.state = state
    login.deactivated_at = None if state == PortalLogin.STATE_ACTIVE else utcnow()
    login.save()
    if state == PortalLogin.STATE_INACTIVE:
        end_sessions_of(login)
    else:
        create_folders_for_customer(settings, login.customer)


def issue_token(settings: Settings, login: PortalLogin, kind: str) -> str:
    """A new single-use token for ``login``; returns the token (shown once, in the mail)."""
    token = new_token()
    ActivationToken.create(
        login=login,
        token_hash=token_hash(token),
        kind=kind,
        expires_at=utcnow() + timedelta(minutes=settings.portal.activation_link_minutes),
    )
    return token


def token_state(token: str) -> tuple[TokenState, ActivationToken | None]:
    """Whether an activation token can still be used (does not use it up)."""
    row = ActivationToken.get_or_none(ActivationToken.token_hash == token_hash(token))
    if row is None:
        return TokenState.UNKNOWN, None
    if row.used_at is not None:
        return TokenState.USED, row
    if row.expires_at <= utcnow() or not may_use_portal(row.login):
        return TokenState.EXPIRED, row
    return TokenState.VALID, row


def set_password_with_token(vault: PasswordVault, token: str, password: str) -> PortalLogin:
    """Use the token up and store the new password; ends every other session of the login."""
    with write_transaction():
        state, row = token_state(token)
        if state is not TokenState.VALID:
            raise Conflict(f"activation link is {state.value}")
        login = row.login
        check = check_password(password, login.username)
        if not check.ok:
            raise Invalid("password", ", ".join(sorted(check.broken)))
        login.password_hash = vault.hash(password)
        login.password_changed_at = utcnow()
        login.save()
        ActivationToken.update(used_at=utcnow()).where(
            (ActivationToken.login == login) & (ActivationToken.used_at.is_null())
        ).execute()
        end_sessions_of(login)
        notify(PASSWORD_SET, customer=login.customer)
    log.info("password set for portal login %s", login.username)
    return login


def sign_in(vault: PasswordVault, username: str, password: str) -> SignInResult:
    """Check credentials; on success mark the activation and upgrade an old hash."""
    login = find_login(username)
    if not vault.verify(login.password_hash if login else None, password):
        return SignInResult(None)
    if not may_use_portal(login):
        return SignInResult(None, inactive=True)
    with write_transaction():
        activation, _ = Activation.get_or_create(login=login)
        if not activation.checked:
            activation.checked = 1
            activation.updated = utcnow()
            activation.save()
        if vault.needs_rehash(login.password_hash):
            login.password_hash = vault.hash(password)
            login.save()
    return SignInResult(login)
