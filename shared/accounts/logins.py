"""The portal login's life: creation, activation link, password, sign-in (SPEC §Behaviour 2–3)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from peewee import JOIN

from shared import audit
from shared.accounts.passwords import PasswordVault, check_password
from shared.accounts.sessions import end_sessions_of
from shared.accounts.usernames import check_username, username_key
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.events import PASSWORD_SET, notify
from shared.files.folders import create_order_folders
from shared.mail.addresses import check_email
from shared.models import (
    LANGUAGES,
    Activation,
    ActivationToken,
    Customer,
    Order,
    PortalLogin,
    SystemDefault,
)
from shared.tokens import LinkState, link_state, new_token, token_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignInResult:
    login: PortalLogin | None
    inactive: bool = False


def logins_of(customer: Customer) -> list[PortalLogin]:
    """Every portal login of ``customer``, the first one created first."""
    return list(
        PortalLogin.select()
        .where(PortalLogin.customer == customer)
        .order_by(PortalLogin.created_at, PortalLogin.id)
    )


def primary_login(customer: Customer) -> PortalLogin | None:
    """The customer's first portal login: the one the seed's automatic steps look at
    (create if missing, mail the activation link, set active)."""
    return (
        PortalLogin.select()
        .where(PortalLogin.customer == customer)
        .order_by(PortalLogin.created_at, PortalLogin.id)
        .first()
    )


def customer_may_upload(customer: Customer) -> bool:
    """Whether anybody of ``customer`` can sign in and upload (portal on, a login active)."""
    if not customer.portal_enabled:
        return False
    return (
        PortalLogin.select()
        .where((PortalLogin.customer == customer) & (PortalLogin.state == PortalLogin.STATE_ACTIVE))
        .exists()
    )


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


def logins_with_activation(customer: Customer) -> list[tuple[PortalLogin, Activation | None]]:
    """The customer's logins with their activation (checked, updated), first login first."""
    rows = (
        PortalLogin.select(PortalLogin, Activation)
        .join(
            Activation,
            JOIN.LEFT_OUTER,
            on=(Activation.login == PortalLogin.id),
            attr="activation",
        )
        .where(PortalLogin.customer == customer)
        .order_by(PortalLogin.created_at, PortalLogin.id)
    )
    return [(row, getattr(row, "activation", None)) for row in rows]


def _free_username(wanted: str) -> str:
    candidate, number = wanted, 1
    while find_login(candidate) is not None:
        number += 1
        candidate = f"{wanted}-{number}"
    return candidate


def _check_language(language: str) -> str:
    if language and language not in LANGUAGES:
        raise Invalid("language", "one of " + ", ".join(LANGUAGES))
    return language


def create_login(
    customer: Customer,
    username: str = "",
    state: str = "",
    email: str = "",
    language: str = "",
) -> PortalLogin:
    """Create a portal login of ``customer`` from the ``ptportal`` system defaults.

    Without ``username`` the defaults' scheme names it (customer number, or the login's
    or customer's address), with ``-2``, ``-3`` … appended when taken. Usernames are
    compared as ``shared.accounts.usernames`` says. Call inside a write transaction.
    """
    defaults = SystemDefault.portal()
    email = check_email("email", email)
    language = _check_language(language)
    state = state or defaults.login_state
    if state not in PortalLogin.STATES:
        raise Invalid("state", "active or inactive")
    if not username.strip():
        address = email or customer.email
        wanted = None
        if defaults.username_from == SystemDefault.USERNAME_FROM_EMAIL and address:
            wanted = username_key(address)
        username = _free_username(wanted or check_username(customer.customer_no))
    else:
        username = check_username(username)
        if find_login(username) is not None:
            raise Conflict(f"username {username!r} is taken")
    login = PortalLogin.create(
        customer=customer, username=username, state=state, email=email, language=language
    )
    Activation.create(login=login)
    audit.record(
        audit.LOGIN_CREATE,
        f"login {username}",
        f"state {state}" + (f", email {email}" if email else ""),
        customer_no=customer.customer_no,
    )
    log.info("portal login %s created for customer %s", username, customer.customer_no)
    return login


def update_login(
    login: PortalLogin,
    *,
    username: str | None = None,
    email: str | None = None,
    language: str | None = None,
) -> PortalLogin:
    """Adjust a login afterwards (seed: "individuell je Kunde … nachträglich angepasst")."""
    with write_transaction():
        login = PortalLogin.get_by_id(login.id)
        before = {"username": login.username, "email": login.email, "language": login.language}
        if username is not None:
            username = check_username(username)
            other = find_login(username)
            if other is not None and other.id != login.id:
                raise Conflict(f"username {username!r} is taken")
            login.username = username
        if email is not None:
            login.email = check_email("email", email)
        if language is not None:
            login.language = _check_language(language)
        login.save()
        after = {"username": login.username, "email": login.email, "language": login.language}
        changed = audit.changes(before, after)
        if changed:
            audit.record(
                audit.LOGIN_UPDATE,
                f"login {before['username']}",
                changed,
                customer_no=login.customer.customer_no,
            )
    return login


def remember_language(login: PortalLogin, language: str) -> None:
    """Keep the language a customer reads (browser or their choice) for their mails."""
    if language in LANGUAGES and login.language != language:
        with write_transaction():
            PortalLogin.update(language=language).where(PortalLogin.id == login.id).execute()
        login.language = language


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
    if state not in PortalLogin.STATES:
        raise Invalid("state", "active or inactive")
    changed = login.state != state
    login.state = state
    login.deactivated_at = None if state == PortalLogin.STATE_ACTIVE else utcnow()
    login.save()
    if changed:
        audit.record(
            audit.LOGIN_STATE,
            f"login {login.username}",
            state,
            customer_no=login.customer.customer_no,
        )
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


def token_state(token: str) -> tuple[LinkState, ActivationToken | None]:
    """Whether an activation token can still be used (does not use it up)."""
    row = ActivationToken.get_or_none(ActivationToken.token_hash == token_hash(token))
    if row is None:
        return LinkState.UNKNOWN, None
    return link_state(row.used_at, row.expires_at, utcnow(), may_use_portal(row.login)), row


def set_password_with_token(vault: PasswordVault, token: str, password: str) -> PortalLogin:
    """Use the token up and store the new password; ends every other session of the login."""
    with write_transaction():
        state, row = token_state(token)
        if state is not LinkState.VALID:
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
        audit.record(
            audit.LOGIN_PASSWORD_SET,
            f"login {login.username}",
            customer_no=login.customer.customer_no,
        )
    log.info("password set for portal login %s", login.username)
    return login


def sign_in(vault: PasswordVault, username: str, password: str) -> SignInResult:
    """Check credentials; on success mark the activation and upgrade an old hash."""
    login = find_login(username)
    if not vault.verify(login.password_hash if login else None, password):
        _failed(username, login, "wrong username or password")
        return SignInResult(None)
    if not may_use_portal(login):
        _failed(username, login, "login inactive or portal off")
        return SignInResult(None, inactive=True)
    with write_transaction():
        audit.record(
            audit.SIGN_IN,
            f"login {login.username}",
            actor=audit.current_actor().as_(audit.ACTOR_CUSTOMER, login.username),
            customer_no=login.customer.customer_no,
        )
        activation, _ = Activation.get_or_create(login=login)
        if not activation.checked:
            activation.checked = 1
            activation.updated = utcnow()
            activation.save()
        if vault.needs_rehash(login.password_hash):
            login.password_hash = vault.hash(password)
            login.save()
    return SignInResult(login)


def _failed(username: str, login: PortalLogin | None, reason: str) -> None:
    audit.record(
        audit.SIGN_IN_FAILED,
        f"login {username.strip()[:100]}",
        reason,
        customer_no=login.customer.customer_no if login else "",
    )
