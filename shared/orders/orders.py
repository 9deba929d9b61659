"""Orders and tickets, and what a new order sets in motion (SPEC §Behaviour 1–2, 4)."""

from __future__ import annotations

import logging
from datetime import date

from peewee import IntegrityError

from shared import audit
from shared.accounts.customers import add_contact, get_customer
from shared.accounts.logins import (
    create_login,
    is_activated,
    logins_of,
    primary_login,
    set_login_state,
)
from shared.accounts.staff import find_staff
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.events import UPLOAD_REQUEST, notify
from shared.files.folders import create_order_folders, is_safe_number
from shared.links import PortalLinks
from shared.models import Contact, Order, PortalLogin, StaffUser, Ticket
from shared.notify.activation import send_activation_mail
from shared.notify.recipients import customer_address
from shared.orders.print_spec import check_page_count, parse_trim_size, trim_size_text

log = logging.getLogger(__name__)

ACTION_LOGIN_CREATED = "portal login created"
ACTION_ACTIVATION_QUEUED = "activation mail queued"
ACTION_LOGIN_ACTIVATED = "portal login set active"
ACTION_FOLDERS_CREATED = "order folders created"
# Fields that update_order may change.
ORDER_FIELDS = ("job_description", "due_date", "contact_email", "owner")
MAX_JOB_DESCRIPTION = 2000


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
    owner: str = "",
    trim_size: str = "",
    page_count: int | None = None,
) -> tuple[Order, list[str]]:
    """Create an order and run the new-order checks; returns the order and what was done.

    ``owner`` is the username of the staff user responsible for it (optional).
    """
    project_no = project_no.strip()
    if not is_safe_number(project_no):
        raise Invalid("project_no", "use 1–64 letters, digits, '.', '_' or '-'")
    _check_job_description(job_description)
    trim = parse_trim_size(trim_size)
    page_count = check_page_count(page_count)
    with write_transaction():
        try:
            customer = get_customer(customer_no)
        except NotFound as exc:
            raise Invalid("customer_no", str(exc)) from None
        staff_owner = find_owner(owner) if owner else None
        contact = (
            add_contact(customer, contact_email, field="contact_email") if contact_email else None
        )
        try:
            with write_transaction():
                order = Order.create(
                    project_no=project_no,
                    customer=customer,
                    job_description=job_description.strip(),
                    due_date=due_date,
                    contact=contact,
                    owner=staff_owner,
                    trim_width_mm=trim[0] if trim else None,
                    trim_height_mm=trim[1] if trim else None,
                    page_count=page_count,
                )
        except IntegrityError:
            raise Conflict(f"order {project_no!r} exists already") from None
        audit.record(
            audit.ORDER_CREATE,
            f"order {project_no}",
            audit.changes({}, _values(order)),
            customer_no=customer.customer_no,
        )
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
    login = primary_login(customer)
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
    ticket_no, title = ticket_no.strip(), title.strip()
    if not ticket_no:
        raise Invalid("ticket_no", "required")
    if len(ticket_no) > 64 or not ticket_no.isprintable():
        raise Invalid("ticket_no", "at most 64 printable characters")
    if len(title) > 200:
        raise Invalid("title", "at most 200 characters")
    with write_transaction():
        order = get_order(project_no)
        try:
            with write_transaction():
                ticket = Ticket.create(order=order, ticket_no=ticket_no, title=title)
        except IntegrityError:
            raise Conflict(f"ticket {ticket_no!r} exists already in order {project_no!r}") from None
        audit.record(
            audit.TICKET_ADD,
            f"order {project_no}",
            f"ticket {ticket_no}" + (f": {title}" if title else ""),
            customer_no=order.customer.customer_no,
        )
        # Mailed only with portal_reminder_email_automatically = 2; the worker, which has
        # the settings, decides when the batch goes out.
        notify(UPLOAD_REQUEST, order=order, ticket=ticket)
        return ticket


def tickets_of(order: Order) -> list[Ticket]:
    """The order's tickets, oldest first."""
    return list(order.tickets.order_by(Ticket.created_at, Ticket.id))


def find_owner(username: str) -> StaffUser:
    """The active staff user ``username``, to own an order; Invalid if there is none."""
    staff = find_staff(username)
    if staff is None or not staff.active:
        raise Invalid("owner", f"no active staff user {username!r}")
    return staff


def _check_job_description(text: str) -> None:
    if len(text) > MAX_JOB_DESCRIPTION:
        raise Invalid("job_description", f"at most {MAX_JOB_DESCRIPTION} characters")


def _values(order: Order) -> dict:
    return {
        "job_description": order.job_description,
        "due_date": order.due_date.isoformat() if order.due_date else None,
        "contact_email": order.contact.email if order.contact_id else None,
        "owner": order.owner.username if order.owner_id else None,
        "state": order.state,
    }


def update_order(project_no: str, **fields) -> Order:
    """Change the given fields of an order (``ORDER_FIELDS``); only those named change.

    ``due_date=None`` clears the date; ``contact_email=""`` goes back to the favorite
    contact or the customer; ``owner=""`` leaves the order without owner.
    """
    unknown = set(fields) - set(ORDER_FIELDS)
    if unknown:
        raise Invalid(sorted(unknown)[0], "unknown field")
    if "job_description" in fields:
        _check_job_description(fields["job_description"])
    with write_transaction():
        order = get_order(project_no)
        before = _values(order)
        if "job_description" in fields:
            order.job_description = fields["job_description"].strip()
        if "due_date" in fields:
            order.due_date = fields["due_date"]
        if "contact_email" in fields:
            email = fields["contact_email"].strip()
            current = order.contact.email.lower() if order.contact_id else ""
            if email.lower() != current:
                order.contact = (
                    add_contact(order.customer, email, field="contact_email") if email else None
                )
        if "owner" in fields:
            order.owner = find_owner(fields["owner"]) if fields["owner"] else None
        after = _values(order)
        changed = audit.changes(before, after)
        if changed:
            order.updated_at = utcnow()
            order.save()
            audit.record(
                audit.ORDER_UPDATE,
                f"order {project_no}",
                changed,
                customer_no=order.customer.customer_no,
            )
    return order


def set_order_state(project_no: str, state: str) -> Order:
    """Close or cancel an order, or open it again.

    Closed and cancelled orders leave reminders and the digest, and customers can no
    longer upload into them (``shared.files.access``); staff still can.
    """
    if state not in Order.STATES:
        raise Invalid("state", "one of " + ", ".join(Order.STATES))
    with write_transaction():
        order = get_order(project_no)
        if order.state == state:
            return order
        previous = order.state
        order.state = state
        order.closed_at = None if state == Order.STATE_OPEN else utcnow()
        order.updated_at = utcnow()
        order.save()
        audit.record(
            audit.ORDER_STATE,
            f"order {project_no}",
            f"{previous} → {state}",
            customer_no=order.customer.customer_no,
        )
    log.info("order %s is %s", project_no, state)
    return order


def _login_summary(login: PortalLogin) -> dict:
    return {"username": login.username, "state": login.state, "activated": is_activated(login)}


def order_summary(order: Order) -> dict:
    """The order's state as the workflow API reports it.

    ``portal_login`` is the customer's first login (the one the new-order steps look
    at); ``portal_logins`` lists every login of the customer.
    """
    customer = order.customer
    logins = logins_of(customer)
    contact: Contact | None = order.contact
    return {
        "project_no": order.project_no,
        "customer_no": customer.customer_no,
        "job_description": order.job_description,
        "due_date": order.due_date.isoformat() if order.due_date else None,
        "contact_email": contact.email if contact else None,
        "owner": order.owner.username if order.owner_id else None,
        "state": order.state,
        "closed_at": order.closed_at.isoformat() + "Z" if order.closed_at else None,
        "created_at": order.created_at.isoformat() + "Z",
        "trim_size": trim_size_text(order) or None,
        "page_count": order.page_count,
        "folders_created": order.folders_created,
        "portal_login": _login_summary(logins[0]) if logins else None,
        "portal_logins": [_login_summary(login) for login in logins],
        "tickets": [{"ticket_no": t.ticket_no, "title": t.title} for t in tickets_of(order)],
    }


def find_order(project_no: str) -> Order | None:
    return Order.get_or_none(Order.project_no == project_no)


def recent_orders(limit: int = 50) -> list[Order]:
    """The newest orders (to pick one for a preview)."""
    return list(Order.select().order_by(Order.created_at.desc(), Order.id.desc()).limit(limit))
