"""Writing in an order's conversation: customers with files, staff with and without mail."""

from __future__ import annotations

import io

import pytest
from conftest import links_for
from conversation_helpers import OWNER_EMAIL, mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import CUSTOMER

from shared.accounts.customers import upsert_customer
from shared.accounts.logins import create_login
from shared.clock import utcnow
from shared.conversations.messages import (
    conversation,
    post_customer_message,
    post_staff_message,
)
from shared.db import write_transaction
from shared.errors import Invalid
from shared.events import CUSTOMER_MESSAGE, STAFF_MESSAGE
from shared.files.access import NotAllowed
from shared.files.receiving import append_chunk, start_upload
from shared.mail.bounces import record_bounce
from shared.models import Customer, Notification, Order, OutboxMail, PortalLogin
from shared.notify.rules import save_rule
from shared.notify.sending import send_due_notifications

PDF = b"%PDF-1.7\n" + bytes(range(256))


def _login(customer: Customer, state: str = PortalLogin.STATE_ACTIVE) -> PortalLogin:
    with write_transaction():
        upsert_customer(customer.customer_no, portal_enabled=True)
        return create_login(Customer.get_by_id(customer.id), state=state)


def _upload(settings, order, login, name: str = "Daten.pdf"):
    file = start_upload(settings, order, name, len(PDF), login=login)
    append_chunk(settings, file, 0, io.BytesIO(PDF), len(PDF))
    return file


def test_a_customer_message_links_own_uploads_and_notifies_the_owner(mailroom) -> None:
    settings = mailroom.settings
    login = _login(mailroom.order.customer)
    other_login = _login(mailroom.other_order.customer)
    order, other = Order.get_by_id(mailroom.order.id), Order.get_by_id(mailroom.other_order.id)
    mine = _upload(settings, order, login)
    foreign = _upload(settings, other, other_login, "fremd.pdf")

    message = post_customer_message(
        order, login, "  Hier die Daten.\r\n", [mine.upload_key, foreign.upload_key]
    )

    (entry,) = conversation(order, for_customer=True)
    assert entry.message.id == message.id
    assert entry.message.body == "Hier die Daten."
    assert [file.id for file in entry.files] == [mine.id]
    event = Notification.get(Notification.kind == CUSTOMER_MESSAGE)
    assert event.detail == "Kunde Eins: Hier die Daten. [Daten.pdf]"
    queued = send_due_notifications(settings, links_for(settings), now=utcnow().replace(year=2100))
    assert queued == 1
    mail = OutboxMail.get(OutboxMail.kind == f"notify-{CUSTOMER_MESSAGE}")
    assert mail.recipients == OWNER_EMAIL
    assert "Hier die Daten." in mail.text_body
    # The same upload cannot be linked to a second message.
    with pytest.raises(Invalid):
        post_customer_message(order, login, "", [mine.upload_key])


def test_an_inactive_login_cannot_write(mailroom) -> None:
    login = _login(mailroom.order.customer, PortalLogin.STATE_INACTIVE)
    with pytest.raises(NotAllowed):
        post_customer_message(Order.get_by_id(mailroom.order.id), login, "Hallo")


def test_internal_notes_are_never_shown_to_customers_and_never_mailed(mailroom) -> None:
    settings = mailroom.settings
    post_staff_message(
        settings, links_for(settings), mailroom.order, mailroom.owner, "Intern", internal=True
    )
    post_staff_message(settings, links_for(settings), mailroom.order, mailroom.owner, "Extern")
    assert [e.message.body for e in conversation(mailroom.order, for_customer=True)] == ["Extern"]
    assert [e.message.body for e in conversation(mailroom.order, for_customer=False)] == [
        "Intern",
        "Extern",
    ]
    assert OutboxMail.select().count() == 1


def test_the_staff_message_rule_decides_who_gets_the_mail(mailroom) -> None:
    settings = mailroom.settings
    links = links_for(settings)
    customer = mailroom.order.customer
    with write_transaction():
        save_rule(
            STAFF_MESSAGE,
            customer,
            active=False,
            roles=["customer"],
            extra_staff=[],
            extra_addresses="",
            template_name="Nachricht zum Auftrag",
        )
    off = post_staff_message(settings, links, mailroom.order, mailroom.owner, "Aus")
    assert off.outbox_mail_id is None
    assert off.mail_outcome == "not mailed: the event is switched off"
    done = Notification.get(Notification.kind == STAFF_MESSAGE)
    assert done.processed_at is not None  # mailed (or not) by its cause, never batched again

    # Every address of the customer on the bounce list: the chain escalates to the owner.
    with write_transaction():
        save_rule(
            STAFF_MESSAGE,
            customer,
            active=True,
            roles=["customer"],
            extra_staff=[],
            extra_addresses="",
            template_name="Nachricht zum Auftrag",
        )
        record_bounce(CUSTOMER, "test")
        record_bounce("k1@kunde.example", "test")
    escalated = post_staff_message(settings, links, mailroom.order, mailroom.owner, "Hallo?")
    assert escalated.outbox_mail.recipients == OWNER_EMAIL
    assert "escalated" in escalated.outbox_mail.recipient_reason
