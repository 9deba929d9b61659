"""Customers, orders, staff and files for mail tests, written straight into a real SQLite file."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from conftest import links_for

from shared.accounts.customers import add_contact, upsert_customer
from shared.clock import utcnow
from shared.db import bind_database, database, write_transaction
from shared.files.folders import FOLDER_INCOMING
from shared.mail.delivery import DeliveryReport, deliver_due
from shared.models import Customer, Order, OrderFile, StaffUser
from shared.notify.sending import send_due_notifications
from shared.schema import init_database

BATCH = timedelta(seconds=121)  # just past the default notification_batch_seconds


@pytest.fixture(name="db")
def db_fixture(settings):
    """The test settings' database, migrated, with the default templates."""
    bind_database(settings.database.url)
    init_database(settings.portal.shop_name)
    yield
    database.close()


def make_staff(username: str, *, admin: bool = False, email: str | None = None, active=True):
    with write_transaction():
        return StaffUser.create(
            username=username,
            name=username.title(),
            email=f"{username}@druckerei.example" if email is None else email,
            role=StaffUser.ROLE_ADMIN if admin else StaffUser.ROLE_STAFF,
            active=active,
        )


def make_customer(customer_no: str = "K1", *, email: str | None = None, **fields) -> Customer:
    fields.setdefault("name", f"Kunde {customer_no}")
    address = f"info@{customer_no.lower()}.example" if email is None else email
    with write_transaction():
        customer, _ = upsert_customer(customer_no, email=address, **fields)
    return customer


def make_order(
    customer: Customer,
    project_no: str = "A-1",
    *,
    owner: StaffUser | None = None,
    contact: str = "",
    due: date | None = None,
    job: str = "Flyer A5",
) -> Order:
    with write_transaction():
        chosen = add_contact(customer, contact) if contact else None
        return Order.create(
            project_no=project_no,
            customer=customer,
            owner=owner,
            contact=chosen,
            due_date=due,
            job_description=job,
            folders_created=True,
        )


def make_file(
    order: Order,
    name: str = "flyer.pdf",
    *,
    folder: str = FOLDER_INCOMING,
    state: str = OrderFile.STATE_CLEAN,
    size: int = 1_258_291,
    scanned_at: datetime | None = None,
    signature: str = "",
) -> OrderFile:
    with write_transaction():
        return OrderFile.create(
            order=order,
            folder=folder,
            display_name=name,
            # Unique per folder, as intake makes it; the tests only look at display names.
            stored_name=f"{OrderFile.select().count()}-{name}" if state == "clean" else None,
            size=size,
            received_bytes=size,
            state=state,
            signature=signature,
            scanned_at=scanned_at or utcnow(),
        )


def flush(settings, after: timedelta = BATCH) -> DeliveryReport:
    """What the worker's minute does once the batch time has passed: queue, then deliver."""
    send_due_notifications(settings, links_for(settings), utcnow() + after)
    return deliver_due(settings.smtp)


def text_of(received) -> str:
    text = received.message.get_body(preferencelist=("plain",)).get_content()
    return text.replace("\r\n", "\n")


def to(mailserver, address: str) -> list:
    """The messages the SMTP server received for ``address``."""
    return [item for item in mailserver.received if address in item.rcpt_tos]
