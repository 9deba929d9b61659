"""What matching a received mail needs from the database, and when an order counts as open.

``shared.mail_intake.matching.decide`` works on plain data; these are its three look-ups:
the order a Message-ID the portal sent belongs to, the order a number in the subject
names, and what the portal knows about a sender address.

Orders have no "closed" state (yet): an order counts as open for mail until
``OPEN_DAYS_AFTER_DUE`` days after its due date, or, without a due date, for
``OPEN_DAYS_WITHOUT_DUE`` days after it was created. Mail naming a closed order goes to
the staff inbox with the order suggested; staff may still assign it there.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from peewee import Expression, fn

from shared.clock import utcnow
from shared.mail.addresses import normalise
from shared.mail.outbox import order_of_sent_mail
from shared.mail_intake.matching import OrderFacts, SenderFacts
from shared.models import Contact, Customer, Order

OPEN_DAYS_AFTER_DUE = 30
OPEN_DAYS_WITHOUT_DUE = 365


def _cutoffs(now: datetime) -> tuple[date, datetime]:
    return (
        now.date() - timedelta(days=OPEN_DAYS_AFTER_DUE),
        now - timedelta(days=OPEN_DAYS_WITHOUT_DUE),
    )


def open_orders(now: datetime | None = None) -> Expression:
    """The condition "the order is open" for a query on ``Order``."""
    due_cutoff, created_cutoff = _cutoffs(now or utcnow())
    return (Order.due_date >= due_cutoff) | (
        Order.due_date.is_null() & (Order.created_at >= created_cutoff)
    )


def is_open(order: Order, now: datetime | None = None) -> bool:
    """``open_orders`` for one loaded order."""
    due_cutoff, created_cutoff = _cutoffs(now or utcnow())
    if order.due_date is not None:
        return order.due_date >= due_cutoff
    return order.created_at >= created_cutoff


def customer_addresses(customer_id: int) -> frozenset[str]:
    """The customer's address and its contacts' addresses, normalised."""
    customer = Customer.get_by_id(customer_id)
    found = {normalise(customer.email)} if customer.email else set()
    contacts = Contact.select(Contact.email).where(Contact.customer == customer_id)
    found |= {normalise(contact.email) for contact in contacts if contact.email}
    return frozenset(found)


def order_facts(order: Order) -> OrderFacts:
    return OrderFacts(
        order_id=order.id,
        project_no=order.project_no,
        customer_addresses=customer_addresses(order.customer_id),
        open=is_open(order),
    )


def order_for_sent_message_id(message_id: str) -> OrderFacts | None:
    """The order a mail the portal sent with ``message_id`` was about."""
    order_id = order_of_sent_mail(message_id)
    order = Order.get_or_none(Order.id == order_id) if order_id else None
    return order_facts(order) if order else None


def order_for_project_no(project_no: str) -> OrderFacts | None:
    """The order numbered ``project_no`` (exactly, else ignoring case, if that is unique)."""
    order = Order.get_or_none(Order.project_no == project_no)
    if order is None:
        similar = list(Order.select().where(fn.LOWER(Order.project_no) == project_no.lower()))
        order = similar[0] if len(similar) == 1 else None
    return order_facts(order) if order else None


def sender_facts(address: str) -> SenderFacts | None:
    """The customers ``address`` belongs to (their email or a contact's) and their open orders."""
    address = normalise(address)
    if not address:
        return None
    customer_ids = {
        row.id for row in Customer.select(Customer.id).where(fn.LOWER(Customer.email) == address)
    }
    customer_ids |= {
        row.customer_id
        for row in Contact.select(Contact.customer).where(fn.LOWER(Contact.email) == address)
    }
    if not customer_ids:
        return None
    orders = (
        Order.select(Order.id)
        .where(Order.customer.in_(sorted(customer_ids)) & open_orders())
        .order_by(Order.id)
        .limit(50)
    )
    return SenderFacts(tuple(sorted(customer_ids)), tuple(row.id for row in orders))
