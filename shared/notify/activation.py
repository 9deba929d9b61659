"""The activation mail (template ``Hotfolder Portalzugang``, SPEC §Behaviour 2–3).

A fresh single-use link for a portal login, composed like every other customer mail.
Where it goes:

0. A login with its own address (an additional person of the customer): there, while it
   is usable; else on along the chain below.
1. With an order at hand (a new order, staff sending a link for one): the recipient
   chain for that order (``shared.notify.recipients.customer_address``).
2. A new link asked for on the portal: where the last activation mail went, while that
   address is usable; else the chain with the customer's latest order, so a customer
   whose only address is an order contact still gets it.
3. No usable address at all: nothing is sent, and staff are told (event
   ``activation_undeliverable``); the customer's page says the same as for any username.
"""

from __future__ import annotations

import logging

from shared import audit
from shared.accounts.logins import find_login, issue_token, may_use_portal
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict
from shared.events import ACTIVATION_UNDELIVERABLE, LINK_REQUESTED, LOGIN_CREATED, notify
from shared.links import PortalLinks
from shared.mail.addresses import normalise
from shared.mail.bounces import bounced
from shared.mail.defaults import ACTIVATION_TEMPLATE
from shared.mail.templates import template_context
from shared.models import ActivationToken, Order, OutboxMail, PortalLogin
from shared.notify.compose import order_values, queue_for, render_for
from shared.notify.recipients import Addressee, customer_address

log = logging.getLogger(__name__)

MAIL_KIND_PREFIX = "activation-"


def activation_recipient(login: PortalLogin, order: Order | None) -> Addressee | None:
    """Where an activation mail for ``login`` goes (steps 0 to 2 above); None if nowhere."""
    customer = login.customer
    skipped: list[str] = []
    if login.email:
        if not bounced([login.email]):
            return Addressee(login.email, "the login's own address", True)
        skipped.append(f"the login's own address {login.email} is on the bounce list")
    if order is not None:
        return customer_address(customer, order, skipped)
    # The last activation mail of this customer, unless it went to another person's login.
    others = {
        normalise(row.email)
        for row in PortalLogin.select(PortalLogin.email).where(
            (PortalLogin.customer == customer) & (PortalLogin.id != login.id)
        )
        if row.email
    }
    mails = (
        OutboxMail.select(OutboxMail.recipients)
        .where((OutboxMail.customer == customer) & OutboxMail.kind.startswith(MAIL_KIND_PREFIX))
        .order_by(OutboxMail.id.desc())
    )
    last = next((m for m in mails.limit(20) if normalise(m.recipients) not in others), None)
    if last is not None and last.recipient_list:
        address = last.recipient_list[0]
        if normalise(address) not in bounced([address]):
            return Addressee(address, "address of the last activation mail", True)
    latest_order = (
        Order.select()
        .where(Order.customer == customer)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .first()
    )
    return customer_address(customer, latest_order, skipped)


def send_activation_mail(
    settings: Settings,
    links: PortalLinks,
    login: PortalLogin,
    order: Order | None = None,
    kind: str = ActivationToken.KIND_FIRST,
) -> OutboxMail:
    """Queue the mail with a fresh link; call inside a transaction.

    Raises Conflict when there is no usable address (nothing is written then).
    """
    customer = login.customer
    addressee = activation_recipient(login, order)
    if addressee is None:
        raise Conflict(f"customer {customer.customer_no!r} has no usable email address")
    language = login.language or customer.language or "de"
    token = issue_token(settings, login, kind)
    values = order_values(links, order, customer, language)
    values.update(
        portal_client_username=login.username,
        portal_first_activation_link=links.activation(token, language),
        link_valid_minutes=str(settings.portal.activation_link_minutes),
    )
    mail = render_for(addressee, ACTIVATION_TEMPLATE, language, template_context(**values), order)
    event = LINK_REQUESTED if kind == ActivationToken.KIND_RENEWAL else LOGIN_CREATED
    notify(event, customer=customer, order=order, detail=addressee.email)
    audit.record(
        audit.LOGIN_LINK_SENT,
        f"login {login.username}",
        f"to {addressee.email} ({addressee.reason})",
        customer_no=customer.customer_no,
    )
    return queue_for(
        settings,
        addressee,
        mail,
        kind=f"{MAIL_KIND_PREFIX}{kind}",
        customer=customer,
        order=order,
    )


def request_new_link(settings: Settings, links: PortalLinks, username: str) -> bool:
    """Send a renewal link if ``username`` names a login that may use the portal.

    The caller answers the same whatever this returns (no user enumeration).
    """
    login = find_login(username)
    if login is None or not may_use_portal(login):
        log.info("new activation link requested for unknown or inactive username")
        return False
    with write_transaction():
        try:
            send_activation_mail(settings, links, login, kind=ActivationToken.KIND_RENEWAL)
        except Conflict as exc:
            log.warning("no new activation link for %s: %s", login.username, exc)
            notify(ACTIVATION_UNDELIVERABLE, customer=login.customer, detail=login.username)
            return False
    return True
