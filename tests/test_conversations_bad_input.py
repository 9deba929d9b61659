"""The issue's bad input, each through dovecot, the importer and clamd to a defined state."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from clamd_helpers import EICAR
from conftest import links_for
from conversation_helpers import mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import CUSTOMER, mail, mail_with_attachments, raw, write_big_mail
from order_helpers import folder_files

from shared.conversations.answers import tell_senders_of_rejected_attachments
from shared.conversations.messages import post_staff_message
from shared.files.folders import FOLDER_INCOMING
from shared.models import OrderFile, OrderMessage, OutboxMail, ReceivedMail


def _to_order(message, subject: str = "[Auftrag A1] Daten"):
    del message["Subject"]
    message["Subject"] = subject
    return message


def _files_outside(root: Path, settings) -> list[str]:
    """Files below ``root`` that are not in an order folder, staging or quarantine."""
    allowed = (
        settings.storage.order_root,
        settings.storage.staging_root,
        settings.storage.quarantine_root,
        root / "data" / "ptportal.db",
    )
    found = []
    for path in root.rglob("*"):
        inside = any(path.is_relative_to(place) for place in allowed)
        if path.is_file() and not inside and not path.name.startswith(("ptportal.db", "client")):
            found.append(str(path.relative_to(root)))
    return found


def test_malformed_mime_is_imported_with_the_problems_noted(mailroom) -> None:
    mailroom.append(
        raw(
            f"From: Anna <{CUSTOMER}>",
            "Subject: [Auftrag A1] kaputt",
            "Message-ID: <broken@kunde.example>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed",
            "",
            "--X",
            "Content-Type: text/plain",
            "",
            "Hallo",
            "--X--",
            "",
        )
    )
    mailroom.read()
    received = ReceivedMail.get()
    assert received.action == "to_order"
    assert "without a usable boundary" in received.note
    assert "Hallo" in OrderMessage.get().body


def test_a_mail_without_message_id_is_imported_once(mailroom) -> None:
    message = mail(subject="[Auftrag A1] ohne ID", message_id=None)
    mailroom.append(message)
    mailroom.read()
    mailroom.append(message)  # the very same bytes delivered once more
    report = mailroom.read()
    assert (report.imported, report.skipped) == (0, 1)
    received = ReceivedMail.get()
    assert received.message_id.endswith("@synthesised.ptportal.invalid>")
    assert OrderMessage.select().count() == 1
    assert mailroom.folder("INBOX") == []


def test_a_100_mb_mail_goes_to_the_inbox_with_a_note_unfetched(mailroom, tmp_path) -> None:
    big = write_big_mail(tmp_path / "big.eml", 100 * 1024 * 1024)
    mailroom.dovecot.append_file(mailroom.user, "INBOX", big)
    big.unlink()

    mailroom.read()

    received = ReceivedMail.get()
    assert (received.action, received.inbox_state) == ("to_inbox", "open")
    assert received.reason == "mail too large to fetch"
    assert "over the limit of 52428800" in received.note
    assert "moved to 'Processed'" in received.note
    assert received.subject == "[Auftrag 4711] grosse Datei"
    assert received.sender == CUSTOMER
    # No order 4711: the known sender's one open order is suggested.
    assert received.suggested_order_id == mailroom.order.id
    assert not OrderFile.select().exists()
    assert [entry.subject for entry in mailroom.folder("Processed")] == [received.subject]
    assert _files_outside(tmp_path, mailroom.settings) == []


def test_hostile_file_names_end_up_as_plain_names_in_eingehend(mailroom, tmp_path) -> None:
    mailroom.append(_to_order(mail_with_attachments("../../x.pdf", "..\\..\\win.pdf")))
    mailroom.append(
        raw(
            f"From: Anna <{CUSTOMER}>",
            "Subject: [Auftrag A1] roh",
            "Message-ID: <crlf@kunde.example>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="B"',
            "",
            "--B",
            "Content-Type: text/plain",
            "",
            "Text",
            "--B",
            'Content-Type: application/pdf; name="=?utf-8?q?a=0D=0Ab=2Epdf?="',
            "Content-Transfer-Encoding: base64",
            "",
            "JVBERi0xLjQK",
            "--B--",
            "",
        )
    )
    mailroom.read()
    names = sorted(file.display_name for file in mailroom.files())
    assert names == ["ab.pdf", "win.pdf", "x.pdf"]
    assert folder_files(mailroom.settings, FOLDER_INCOMING) == ["ab.pdf", "win.pdf", "x.pdf"]
    assert _files_outside(tmp_path, mailroom.settings) == []
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path.parent / "x.pdf").exists()


def _zip_bomb() -> bytes:
    """A small zip whose members unpack far beyond clamd's test limit (5 MB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(4):
            archive.writestr(f"layer{number}.bin", bytes(16 * 1024 * 1024))
    return buffer.getvalue()


def test_a_zip_bomb_is_held_for_staff_and_never_placed(mailroom) -> None:
    bomb = _zip_bomb()
    assert len(bomb) < 200_000
    message = _to_order(mail(subject="x"))
    message.add_attachment(bomb, maintype="application", subtype="zip", filename="daten.zip")
    mailroom.append(message)

    mailroom.read()

    (file,) = mailroom.files()
    assert file.state == OrderFile.STATE_TOO_LARGE
    assert folder_files(mailroom.settings, FOLDER_INCOMING) == []


def test_a_reply_loop_between_two_auto_responders_sends_nothing(mailroom) -> None:
    settings = mailroom.settings
    links = links_for(settings)
    first = post_staff_message(settings, links, mailroom.order, mailroom.owner, "Proof anbei.")
    previous = first.outbox_mail.message_id
    # The customer's auto-responder answers our mail, and keeps answering whatever comes;
    # a careless one (no Auto-Submitted) attaches the file that set off the virus scan.
    for number in range(4):
        automatic = mail(
            subject=f"Abwesenheitsnotiz: Re: [Auftrag A1] Proof ({number})",
            message_id=f"<ooo{number}@kunde.example>",
            In_Reply_To=previous,
            Auto_Submitted="auto-replied",
        )
        careless = _to_order(
            mail_with_attachments("virus.pdf", data=EICAR), f"Re: [Auftrag A1] Proof ({number})"
        )
        del careless["Message-ID"]
        careless["Message-ID"] = f"<careless{number}@kunde.example>"
        mailroom.append(automatic)
        mailroom.append(careless)
        mailroom.read()
        tell_senders_of_rejected_attachments(settings, links)

    mails = list(OutboxMail.select().order_by(OutboxMail.id))
    assert [row.kind for row in mails] == ["message", "attachment-rejected"]
    automatic_rows = ReceivedMail.select().where(ReceivedMail.auto_reply == True)  # noqa: E712
    assert {row.action for row in automatic_rows} == {"record_only"}
    assert automatic_rows.count() == 4
