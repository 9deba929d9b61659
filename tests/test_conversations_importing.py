"""Mail read from a real dovecot into orders, the staff inbox and the bounce list (issue 17)."""

from __future__ import annotations

from pathlib import Path

from clamd_helpers import EICAR
from conftest import links_for
from conversation_helpers import MAILBOX_ADDRESS, OWNER_EMAIL, mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import CUSTOMER, PDF, PNG, delivery_report, mail, mail_with_attachments
from order_helpers import folder_files

from shared.conversations.messages import post_staff_message
from shared.files.folders import FOLDER_INCOMING
from shared.files.receiving import staging_path
from shared.mail_intake.imap import KEYWORD_PROCESSED
from shared.models import (
    BouncedAddress,
    MessageFile,
    MessageImage,
    Notification,
    OrderFile,
    OrderMessage,
    OutboxMail,
    ReceivedMail,
)


def only(query):
    rows = list(query)
    assert len(rows) == 1, rows
    return rows[0]


# -- matching, in the order -----------------------------------------------------------


def test_a_reply_to_a_staff_message_goes_into_its_order(mailroom) -> None:
    settings = mailroom.settings
    message = post_staff_message(
        settings, links_for(settings), mailroom.order, mailroom.owner, "Der Proof ist fertig."
    )
    sent = message.outbox_mail
    assert sent.order_id == mailroom.order.id
    mailroom.append(
        mail(subject="Re: Proof", In_Reply_To=sent.message_id, message_id="<r1@kunde.example>")
    )

    report = mailroom.read()

    assert report.actions == {"to_order": 1}, ReceivedMail.get().reason
    reply = only(OrderMessage.select().where(OrderMessage.source == OrderMessage.SOURCE_MAIL))
    assert reply.order_id == mailroom.order.id
    assert reply.body.startswith("Hallo,\nanbei die Daten.")
    assert reply.received_mail.reason == f"reply to portal mail {sent.message_id}"
    assert only(Notification.select().where(Notification.kind == "customer_message")).order_id == (
        mailroom.order.id
    )
    assert mailroom.folder("INBOX") == []
    assert [entry.message_id for entry in mailroom.folder("Processed")] == ["<r1@kunde.example>"]


def test_the_order_number_in_the_subject_finds_the_order(mailroom) -> None:
    mailroom.append(mail(subject="AW: [Auftrag A1] Druckdaten"))
    mailroom.read()
    received = only(ReceivedMail.select())
    assert (received.action, received.order_id) == ("to_order", mailroom.order.id)
    assert received.reason == "subject names order A1"


def test_a_reply_to_a_french_mail_finds_the_order_by_its_commande_reference(mailroom) -> None:
    settings = mailroom.settings
    customer = mailroom.order.customer
    customer.language = "fr"
    customer.save()
    message = post_staff_message(
        settings, links_for(settings), mailroom.order, mailroom.owner, "L'épreuve est prête."
    )
    subject = message.outbox_mail.subject
    assert subject == "[Commande A1] Message concernant votre commande A1"
    # Without In-Reply-To (some mail programs drop it): the subject alone must do.
    mailroom.append(mail(subject=f"RE : {subject}", body="Bonjour,\nc'est parfait.\n"))
    mailroom.read()
    received = only(ReceivedMail.select())
    assert (received.action, received.order_id) == ("to_order", mailroom.order.id)
    assert received.reason == "subject names order A1"


def test_a_known_sender_with_one_open_order_goes_to_the_inbox_with_it_suggested(mailroom) -> None:
    mailroom.append(mail(subject="Frage zum Liefertermin"))
    mailroom.read()
    received = only(ReceivedMail.select())
    assert (received.action, received.inbox_state) == ("to_inbox", "open")
    assert received.suggested_order_id == mailroom.order.id
    assert received.order_id is None
    assert not OrderMessage.select().exists()
    assert Path(received.held_path).read_bytes().startswith(b"From:")


def test_an_unknown_sender_goes_to_the_inbox(mailroom) -> None:
    mailroom.append(mail(subject="Angebot", sender="Fremd <fremd@irgendwo.example>"))
    mailroom.read()
    received = only(ReceivedMail.select())
    assert (received.action, received.reason) == ("to_inbox", "unknown sender")
    assert received.suggested_order_id is None


def test_a_subject_naming_another_customers_order_never_reaches_that_order(mailroom) -> None:
    mailroom.append(_named("[Auftrag B1]"))
    mailroom.read()
    received = only(ReceivedMail.select())
    assert received.action == "to_inbox"
    assert received.suggested_order_id == mailroom.other_order.id
    assert "is not an address of its customer" in received.reason
    assert not OrderMessage.select().exists()
    assert not OrderFile.select().exists()
    assert folder_files(mailroom.settings, FOLDER_INCOMING, "K2", "B1") == []


def _named(reference: str):
    message = mail_with_attachments("rate.pdf")
    del message["Subject"]
    message["Subject"] = f"{reference} geraten"
    return message


# -- attachments ------------------------------------------------------------------------------


def test_clean_attachments_land_in_eingehend_next_to_the_message(mailroom) -> None:
    message = mail_with_attachments("Flyer A5.pdf", "Rückseite.pdf")
    del message["Subject"]
    message["Subject"] = "[Auftrag A1] Daten"
    mailroom.append(message)

    mailroom.read()

    reply = only(OrderMessage.select())
    files = [link.file for link in MessageFile.select().where(MessageFile.message == reply)]
    assert sorted(file.display_name for file in files) == ["Flyer A5.pdf", "Rückseite.pdf"]
    assert {file.state for file in files} == {OrderFile.STATE_CLEAN}
    # On disk under the safe stored names uploads get.
    assert folder_files(mailroom.settings, FOLDER_INCOMING) == ["Flyer A5.pdf", "Rueckseite.pdf"]
    for file in files:
        assert file.sha256 and file.size == len(PDF)
        assert not staging_path(mailroom.settings, file).exists()


def test_an_infected_attachment_is_quarantined_and_the_sender_told_once(mailroom) -> None:
    from shared.conversations.answers import tell_senders_of_rejected_attachments

    settings = mailroom.settings
    for number in (1, 2):
        message = mail_with_attachments(f"rechnung{number}.pdf", data=EICAR)
        del message["Subject"], message["Message-ID"]
        message["Subject"] = "[Auftrag A1] Rechnung"
        message["Message-ID"] = f"<virus{number}@kunde.example>"
        mailroom.append(message)
    mailroom.read()

    rejected = list(OrderFile.select().where(OrderFile.state == OrderFile.STATE_REJECTED))
    assert len(rejected) == 2
    assert folder_files(settings, FOLDER_INCOMING) == []
    assert all("EICAR" in file.signature for file in rejected)

    assert tell_senders_of_rejected_attachments(settings, links_for(settings)) == 1
    notice = only(OutboxMail.select().where(OutboxMail.kind == "attachment-rejected"))
    assert notice.recipients == CUSTOMER
    assert notice.subject.startswith("[Auftrag A1] ")
    assert "rechnung1.pdf" in notice.text_body
    notes = [mail.note for mail in ReceivedMail.select().order_by(ReceivedMail.id)]
    assert notes[0].endswith(f"sender told: {CUSTOMER}")
    assert notes[1].endswith("was answered automatically within the hour")
    # Once per mail: a second sweep tells nobody again.
    assert tell_senders_of_rejected_attachments(settings, links_for(settings)) == 0


def test_signature_images_stay_with_the_message_and_are_no_print_data(mailroom) -> None:
    message = mail(subject="[Auftrag A1] Mit Logo")
    message.add_alternative('<p>Hallo</p><img src="cid:logo@kunde.example">', subtype="html")
    message.get_payload()[1].add_related(
        PNG, maintype="image", subtype="png", cid="<logo@kunde.example>"
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="Daten.pdf")
    mailroom.append(message)

    mailroom.read()

    image = only(MessageImage.select())
    assert (image.content_id, bytes(image.content)) == ("logo@kunde.example", PNG)
    assert [file.display_name for file in mailroom.files()] == ["Daten.pdf"]


def test_over_the_attachment_limits_the_mail_goes_to_the_inbox_with_a_note(mailroom) -> None:
    message = mail_with_attachments("a.pdf", "b.pdf")
    del message["Subject"]
    message["Subject"] = "[Auftrag A1] zwei Dateien"
    mailroom.append(message)

    mailroom.read(mailroom.mailbox(max_attachments=1))

    received = only(ReceivedMail.select())
    assert received.action == "to_inbox"
    assert received.suggested_order_id == mailroom.order.id
    assert "2 attachments, more than the limit of 1" in received.reason
    assert "attachments not taken" in received.note
    assert not OrderFile.select().exists()


# -- loops and noise ------------------------------------------------------------------------------


def test_an_auto_reply_is_recorded_for_staff_and_answered_by_nobody(mailroom) -> None:
    mailroom.append(
        mail(subject="Abwesenheitsnotiz: [Auftrag A1] Proof", Auto_Submitted="auto-replied")
    )
    mailroom.read()
    received = only(ReceivedMail.select())
    assert (received.action, received.auto_reply) == ("record_only", True)
    note = only(OrderMessage.select())
    assert (note.internal, note.source) == (True, OrderMessage.SOURCE_AUTO_REPLY)
    assert not Notification.select().where(Notification.kind == "customer_message").exists()
    assert not OutboxMail.select().exists()


def test_a_delivery_report_puts_only_permanent_failures_on_the_bounce_list(mailroom) -> None:
    mailroom.append(delivery_report("nobody@kunde.example", "5.1.1"))
    report = delivery_report("policy@kunde.example", "5.7.1").replace(b"<dsn1@", b"<dsn2@")
    mailroom.append(report)
    mailroom.read()
    assert [row.email for row in BouncedAddress.select()] == ["nobody@kunde.example"]
    first, second = ReceivedMail.select().order_by(ReceivedMail.id)
    assert first.action == second.action == "bounce"
    assert first.note == "on the bounce list: nobody@kunde.example"
    assert second.note.startswith("not a permanent failure: policy@kunde.example (5.7.1")
    assert first.inbox_state == ""


# -- exactly once ---------------------------------------------------------------------------------


def test_each_mail_is_imported_once_even_when_it_comes_again(mailroom) -> None:
    mailroom.append(mail(subject="[Auftrag A1] eins", message_id="<same@kunde.example>"))
    mailroom.read()
    # The same mail once more (a second delivery), and a mail left unmarked by a crash.
    mailroom.append(mail(subject="[Auftrag A1] eins", message_id="<same@kunde.example>"))
    report = mailroom.read()
    assert (report.imported, report.skipped) == (0, 1)
    assert OrderMessage.select().count() == 1
    assert len(mailroom.folder("Processed")) == 2


def test_without_a_processed_folder_mail_is_flagged_and_not_read_again(mailroom) -> None:
    flagging = mailroom.mailbox(processed_folder="")
    mailroom.append(mail(subject="[Auftrag A1] eins"))
    mailroom.read(flagging)
    assert mailroom.read(flagging).imported == 0
    (entry,) = mailroom.folder("INBOX")
    assert KEYWORD_PROCESSED in entry.flags
    assert OrderMessage.select().count() == 1


def test_the_staff_message_mail_has_owner_sender_reply_to_and_reference(mailroom) -> None:
    settings = mailroom.settings
    message = post_staff_message(
        settings, links_for(settings), mailroom.order, mailroom.owner, "Bitte freigeben."
    )
    sent = message.outbox_mail
    assert sent.sender == f"Olga Owner <{OWNER_EMAIL}>"
    assert sent.recipients == CUSTOMER
    assert sent.reply_to == MAILBOX_ADDRESS
    assert sent.subject.startswith("[Auftrag A1] ")
    assert "Bitte freigeben." in sent.text_body
    assert message.mail_outcome == f"mailed to {CUSTOMER}"
    assert sent.message_id.endswith(".message@druckerei.example>")
