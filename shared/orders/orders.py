"""Orders and tickets, and what a new order sets in motion (SPEC §Behaviour 1–2, 4)."""

from __future__ import annotations

import logging
from datetime import date

from peewee import IntegrityError

from shared.accounts.customers import add_contact, get_customer
from shared.accounts.logins import create_login, is_activated, login_of, set_login_state
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.events import UPLOAD_REQUEST, notify
from shared.files.folders import create_order_folders, is_safe_number
from shared.links import PortalLinks
from shared.models import Contact, Order, PortalLogin, Ticket
from shared.notify.activation import send_activation_mail
from shared.notify.recipients import customer_address
from shared.orders.print_spec import check_page_count, parse_trim_size, trim_size_text

log = logging.getLogger(__name__)

ACTION_LOGIN_CREATED = "portal login created"
ACTION_ACTIVATION_QUEUED = "activation mail queued"
ACTION_LOGIN_ACTIVATED = "portal login set active"
ACTION_FOLDERS_CREATED = "order folders created"


def get_order(project_no: str) -> Order:
    order = Order.get_or_none(Order.project_no == project_no)
    if order is None:
        raise NotFound(f"order {project_no!r} does not exist")
    return order


def create_order(
    settings: Settings,
    links: PortalLinks,
    *,
    project_no: str,
    customer_no: str,
    job_description: str = "",
    due_date: date | None = None,
    contact_email: str = "",
    trim_size: str = "",
    page_count: int | None = None,
) -> tuple[Order, list[str]]:
    """Create an order and run the new-order checks; returns the order and what was done."""
    if not is_safe_number(project_no):
        raise Invalid("project_no", "use 1–64 letters, digits, '.', '_' or '-'")
    trim = parse_trim_size(trim_size)
    page_count = check_page_count(page_count)
    with write_transaction():
        try:
            customer = get_customer(customer_no)
        except NotFound as exc:
            raise Invalid("customer_no", str(exc)) from None
        contact = (
            add_contact(customer, contact_email, field="contact_email") if contact_email else None
        )
        try:
            with write_transaction():
                order = Order.create(
                    project_no=project_no,
                    customer=customer,
                    job_description=job_description,
                    due_date=due_date,
                    contact=contact,
                    trim_width_mm=trim[0] if trim else None,
                    trim_height_mm=trim[1] if trim else None,
                    page_count=page_count,
                )
        except IntegrityError:
            raise Conflict(f"order {project_no!r} exists already") from None
        actions = prepare_portal(settings, links, order)
        # Whether it is mailed (portal_reminder_email_automatically = 1) the worker decides.
        notify(UPLOAD_REQUEST, order=order)
    log.info("order %s created for %s: %s", project_no, customer_no, actions or "no portal")
    return order, actions


def prepare_portal(settings: Settings, links: PortalLinks, order: Order) -> list[str]:
    """Seed 004: portal-enabled? login exists? activated? — and act on the switches."""
    customer = order.customer
    if not customer.portal_enabled:
        return []
    actions = []
    workflow = settings.workflow
    login = login_of(customer)
    if login is None and workflow.portal_create_uplogin_automatically:
        login = create_login(customer)
        actions.append(ACTION_LOGIN_CREATED)
    if login is None:
        return actions
    wants_mail = workflow.portal_send_uplogin_email_automatically and not is_activated(login)
    if wants_mail and login.deactivated_at is None:
        _require_recipient(order)
        send_activation_mail(settings, links, login, order)
        actions.append(ACTION_ACTIVATION_QUEUED)
        if not login.is_active:
            set_login_state(settings, login, PortalLogin.STATE_ACTIVE)
            actions.append(ACTION_LOGIN_ACTIVATED)
    if login.is_active and not order.folders_created:
        create_order_folders(settings.storage.order_root, customer.customer_no, order.project_no)
        order.folders_created = True
        order.save()
    if order.folders_created:
        actions.append(ACTION_FOLDERS_CREATED)
    return actions


def _require_recipient(order: Order) -> None:
    """Refuse the order when the activation mail has nowhere to go.

    Creating the order anyway would leave a login that is neither mailed nor set
    active, and the caller would not notice; an error it can fix is better.
    """
    if customer_address(order.customer, order) is None:
        customer_no = order.customer.customer_no
        raise Invalid(
            "contact_email",
            f"customer {customer_no!r} has no usable email address and no contact to send "
            "the portal access to; give contact_email or add a contact or email first",
        )


def add_ticket(project_no: str, ticket_no: str, title: str = "") -> Ticket:
    """Add a ticket to an order; a ticket number is unique within its order."""
    if not ticket_no.strip():
        raise Invalid("ticket_no", "required")
    with write_transaction():
        order = get_order(project_no)
        try:
            with write_transaction():
                ticket = Ticket.create(order=order, ticket_no=ticket_no.strip(), title=title)
        except IntegrityError:
            raise Conflict(f"ticket {ticket_no!r} exists already in order {project_no!r}") from None
        # Mailed only with portal_reminder_email_automatically = 2; the worker, which has
        # the settings, decides when the batch goes out.
        notify(UPLOAD_REQUEST, order=order, ticket=ticket)
        return ticket


def order_summary(order: Order) -> dict:
    """The order's state as the workflow API reports it."""
    customer = order.customer
    login = login_of(customer)
    contact: Contact | None = order.contact
    return {
        "project_no": order.project_no,
        "customer_no": customer.customer_no,
        "job_description": order.job_description,
        "due_date": order.due_date.isoformat() if order.due_date else None,
        "contact_email": contact.email if contact else None,
        "created_at": order.created_at.isoformat() + "Z",
        "trim_size": trim_size_text(order) or None,
        "page_count": order.page_count,
        "folders_created": order.folders_created,
        "portal_login": None
        if login is None
        else {
            "username": login.username,
            "state": login.state,
            "activated": is_activated(login),
        },
        "tickets": [
            {"ticket_no": t.ticket_no, "title": t.title}
            for t in order.tickets.order_by(Ticket.created_at, Ticket.id)
        ],
    }


def find_order(project_no: str) -> Order | None:
    return Order.get_or_none(Order.project_no == project_no)


def recent_orders(limit: int = 50) -> list[Order]:
    """The newest orders (to pick one for a preview)."""
    return list(Order.select().order_by(Order.created_at.desc(), Order.id.desc()).limit(limit))
