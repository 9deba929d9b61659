"""The staff inbox: filters, assigning to an order or a customer, discarding (issue 17 §9)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conversation_helpers import mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import CUSTOMER, mail, mail_with_attachments
from order_helpers import folder_files

from shared.conversations import inbox
from shared.errors import Conflict
from shared.files.folders import FOLDER_INCOMING
from shared.files.intake import make_scanner, scan_received
from shared.models import Contact, MessageFile, OrderFile, OrderMessage, ReceivedMail

STRANGER = "Fremd <fremd@irgendwo.example>"


def _fill(mailroom) -> None:
    """One mail per filter: unknown sender, known sender (suggested), a stranger with files."""
    mailroom.append(mail(subject="Angebot?", sender=STRANGER, message_id="<s1@x.example>"))
    mailroom.append(mail(subject="Liefertermin?", message_id="<k1@kunde.example>"))
    with_files = mail_with_attachments("Plakat.pdf")
    del with_files["From"], with_files["Message-ID"]
    with_files["From"] = "Kollege <kollege@kunde.example>"
    with_files["Message-ID"] = "<k2@kunde.example>"
    mailroom.append(with_files)
    mailroom.read()


def test_filters_and_counts(mailroom) -> None:
    _fill(mailroom)
    assert inbox.inbox_counts() == {"unassigned": 2, "suggested": 1, "assigned": 0, "discarded": 0}
    assert [row.subject for row in inbox.inbox_page("suggested").items] == ["Liefertermin?"]
    assert {row.subject for row in inbox.inbox_page("unassigned").items} == {"Angebot?", "Dateien"}


def test_assigning_to_an_order_makes_a_message_and_scans_the_files(mailroom) -> None:
    _fill(mailroom)
    received = ReceivedMail.get(ReceivedMail.message_id == "<k2@kunde.example>")
    held = Path(received.held_path)
    assert held.is_file()
    scanned: list[int] = []

    message = inbox.assign_to_order(
        mailroom.settings, received, mailroom.order, mailroom.owner, on_file=scanned.append
    )

    assert (message.order_id, message.internal) == (mailroom.order.id, False)
    assert message.sender == "Kollege <kollege@kunde.example>"
    (link,) = MessageFile.select().where(MessageFile.message == message)
    assert scanned == [link.file_id]
    scan_received(mailroom.settings, make_scanner(mailroom.settings), link.file_id)
    assert OrderFile.get_by_id(link.file_id).state == OrderFile.STATE_CLEAN
    assert folder_files(mailroom.settings, FOLDER_INCOMING) == ["Plakat.pdf"]
    received = ReceivedMail.get_by_id(received.id)
    assert (received.inbox_state, received.order_id) == ("assigned", mailroom.order.id)
    assert received.handled_by_id == mailroom.owner.id and received.handled_at
    assert not held.exists()
    with pytest.raises(Conflict):
        inbox.assign_to_order(mailroom.settings, received, mailroom.order, mailroom.owner)
    assert OrderMessage.select().count() == 1


def test_assigning_to_a_customer_may_add_the_sender_as_contact(mailroom) -> None:
    _fill(mailroom)
    received = ReceivedMail.get(ReceivedMail.message_id == "<s1@x.example>")
    customer = mailroom.order.customer
    inbox.assign_to_customer(received, customer, mailroom.owner, add_sender=True)
    received = ReceivedMail.get_by_id(received.id)
    assert (received.inbox_state, received.customer_id) == ("assigned", customer.id)
    contact = Contact.get(Contact.email == "fremd@irgendwo.example")
    assert (contact.customer_id, contact.name) == (customer.id, "Fremd")
    assert not OrderMessage.select().exists()


def test_discarding_is_recorded_for_the_audit_log_and_can_be_undone(mailroom, caplog) -> None:
    _fill(mailroom)
    received = ReceivedMail.get(ReceivedMail.message_id == "<s1@x.example>")
    with caplog.at_level(logging.INFO, logger="shared.conversations.inbox"):
        inbox.discard(received, mailroom.owner)
    assert "staff inbox: olga discarded mail <s1@x.example> from fremd@irgendwo.example" in (
        caplog.text
    )
    assert inbox.inbox_counts()["discarded"] == 1
    with pytest.raises(Conflict):
        inbox.discard(received, mailroom.owner)
    # Staff may still assign a discarded mail (as an internal note here).
    message = inbox.assign_to_order(
        mailroom.settings, received, mailroom.order, mailroom.owner, internal=True
    )
    assert message.internal is True
    assert CUSTOMER not in message.sender
