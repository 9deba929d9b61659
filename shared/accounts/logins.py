"""The portal login's life: creation, activation link, password, sign-in (SPEC §Behaviour 2–3)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from peewee import fn

from shared.accounts.customers import customer_recipient
from shared.accounts.passwords import PasswordVault, check_password
from shared.accounts.sessions import end_sessions_of
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.files.folders import create_order_folders
from shared.mail.defaults import ACTIVATION_TEMPLATE
from shared.mail.outbox import queue_mail
from shared.mail.templates import active_signature, find_template, render_mail, template_context
from shared.models import (
    Activation,
    ActivationToken,
    Customer,
    Order,
    OutboxMail,
    PortalLogin,
    SystemDefault,
)
from shared.notify.events import LINK_REQUESTED, LOGIN_CREATED, PASSWORD_SET, notify
from shared.tokens import new_token, token_hash

log = logging.getLogger(__name__)

ACTIVATION_PATH = "/activate"


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
    """The login called ``username``; customers may type it in any case."""
    return PortalLogin.get_or_none(fn.LOWER(PortalLogin.username) == username.strip().lower())


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
        if defaults.username_from == SystemDefault.USERNAME_FROM_EMAIL and customer.email:
            username = customer.email.lower()
        else:
            username = customer.customer_no.lower()
        username = _free_username(username)
    elif find_login(username) is not None:
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


def activation_request_url(settings: Settings, language: str = "") -> str:
    """The page where a customer asks for a new link."""
    query = f"?{urlencode({'lang': language})}" if language else ""
    return f"{settings.portal.base_url}{ACTIVATION_PATH}{query}"


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


def activation_link(settings: Settings, token: str, language: str = "") -> str:
    """The link in the mail: built from the configured base URL, never the request's Host."""
    query = f"?{urlencode({'lang': language})}" if language else ""
    return f"{settings.portal.base_url}{ACTIVATION_PATH}/{token}{query}"


def send_activation_mail(
    settings: Settings,
    login: PortalLogin,
    order: Order | None = None,
    kind: str = ActivationToken.KIND_FIRST,
) -> OutboxMail:
    """Queue the ``Hotfolder Portalzugang`` mail with a fresh link; call inside a transaction."""
    customer = login.customer
    recipient = customer_recipient(customer, order)
    if recipient is None:
        raise Conflict(f"customer {customer.customer_no!r} has no email address or contact")
    language = login.language or customer.language
    token = issue_token(settings, login, kind)
    context = template_context(
        project_no=order.project_no if order else "",
        job_description=order.job_description if order else "",
        due_date=order.due_date.strftime("%d.%m.%Y") if order and order.due_date else "",
        portal_client_username=login.username,
        portal_first_activation_link=activation_link(settings, token, language),
        portal_activation_link=activation_request_url(settings, language),
        link_valid_minutes=str(settings.portal.activation_link_minutes),
        customer_name=customer.name,
    )
    template = find_template(ACTIVATION_TEMPLATE, language)
    mail = render_mail(template, active_signature(), context)
    event = LINK_REQUESTED if kind == ActivationToken.KIND_RENEWAL else LOGIN_CREATED
    notify(event, customer=customer, order=order, detail=recipient.email)
    return queue_mail(
        kind=f"activation-{kind}",
        sender=settings.smtp.email,
        recipients=[recipient.email],
        recipient_reason=recipient.reason,
        reply_to=settings.smtp.reply_to,
        mail=mail,
        customer=customer,
        order=order,
    )


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


def request_new_link(settings: Settings, username: str) -> bool:
    """Send a renewal link if ``username`` names an active login; the caller answers the same."""
    login = find_login(username)
    if login is None or not may_use_portal(login):
        log.info("new activation link requested for unknown or inactive username")
        return False
    with write_transaction():
        try:
            send_activation_mail(settings, login, kind=ActivationToken.KIND_RENEWAL)
        except Conflict as exc:
            log.warning("cannot send new activation link to %s: %s", login.username, exc)
            return False
    return True
