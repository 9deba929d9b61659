"""Mails as customers, mail programs, auto-responders and mailer daemons send them.

Built with ``email.message.EmailMessage`` where the standard library can express the case;
raw bytes where the point is that it is broken or unusual (8-bit headers, missing
boundaries, CR/LF in file names).
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from dovecot_helpers import Dovecot

from shared.mail_intake.imap import open_mailbox
from shared.mail_intake.parsing import InboundMail, IntakeLimits, parse_mail

CUSTOMER = "Anna.Muster@Kunde.example"
# A 1x1 PNG: small enough to be a signature image.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DATE = format_datetime(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
LIMITS = IntakeLimits(max_attachments=20, max_total_attachment_bytes=150 * 1024 * 1024)


def mail(
    subject: str = "Druckdaten",
    sender: str = f"Anna Muster <{CUSTOMER}>",
    body: str = "Hallo,\nanbei die Daten.\n",
    message_id: str | None = "<m1@kunde.example>",
    **headers: str,
) -> EmailMessage:
    """A plain text mail; ``headers`` are added as given (``In_Reply_To`` → In-Reply-To)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "auftraege@druckerei.example"
    message["Subject"] = subject
    message["Date"] = DATE
    if message_id:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def html_mail_with_logo() -> EmailMessage:
    """HTML with a script, an event handler, a remote image and a cid: logo, plus a PDF."""
    message = mail(subject="Layout")
    message.set_content("Text version\n")
    message.add_alternative(
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>"
        '<p onclick="steal()">Sehr geehrte Damen und Herren,</p>'
        '<img src="https://tracker.example/pixel.gif?u=anna">'
        '<img src="cid:logo@kunde.example" alt="Logo">'
        "</body></html>",
        subtype="html",
    )
    html_part = message.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<logo@kunde.example>")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="Flyer A5.pdf")
    return message


def mail_with_attachments(*names: str, data: bytes = PDF) -> EmailMessage:
    message = mail(subject="Dateien")
    for name in names:
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message


def raw(*lines: str | bytes) -> bytes:
    """A message from raw lines, joined with CRLF."""
    return b"\r\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)


def delivery_report(failed: str = "nobody@kunde.example", status: str = "5.1.1") -> bytes:
    """A DSN (RFC 3464) from MAILER-DAEMON: one failed and one delayed recipient."""
    return raw(
        "From: Mail Delivery System <MAILER-DAEMON@mx.druckerei.example>",
        "To: auftraege@druckerei.example",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {DATE}",
        "Message-ID: <dsn1@mx.druckerei.example>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"',
        "",
        "--R",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system. Your message could not be delivered.",
        "--R",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.druckerei.example",
        "",
        f"Final-Recipient: rfc822; {failed}",
        "Action: failed",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; 550 {status} <{failed}>: Recipient address rejected",
        "",
        "Final-Recipient: rfc822; slow@other.example",
        "Action: delayed",
        "Status: 4.4.1",
        "",
        "--R",
        "Content-Type: message/rfc822",
        "",
        "From: auftraege@druckerei.example",
        f"To: {failed}",
        "Subject: [Auftrag 4711] Ihre Druckdaten",
        "Message-ID: <portal-1@druckerei.example>",
        "",
        "Bitte laden Sie die Daten hoch.",
        "--R--",
        "",
    )


BIG_LINE_BYTES = 57  # 57 bytes → one 76-character base64 line
BIG_BLOCK_LINES = 1024


def big_attachment_bytes(size_bytes: int) -> int:
    """The decoded size of the attachment ``write_big_mail(path, size_bytes)`` writes."""
    block_chars = BIG_BLOCK_LINES * (76 + 2)
    return -(-size_bytes // block_chars) * BIG_BLOCK_LINES * BIG_LINE_BYTES


def write_big_mail(path: Path, size_bytes: int) -> Path:
    """A mail with a base64 attachment of about ``size_bytes``, written block by block to disk.

    One random block is encoded once and written again and again, so neither the mail nor
    its attachment is ever in memory.
    """
    line_bytes = BIG_LINE_BYTES
    with path.open("wb") as out:
        out.write(
            raw(
                f"From: Anna Muster <{CUSTOMER}>",
                "To: auftraege@druckerei.example",
                "Subject: [Auftrag 4711] grosse Datei",
                f"Date: {DATE}",
                "Message-ID: <big@kunde.example>",
                "MIME-Version: 1.0",
                'Content-Type: multipart/mixed; boundary="BIG"',
                "",
                "--BIG",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "Die Datei.",
                "--BIG",
                'Content-Type: application/pdf; name="gross.pdf"',
                'Content-Disposition: attachment; filename="gross.pdf"',
                "Content-Transfer-Encoding: base64",
                "",
                "",
            )
        )
        block = os.urandom(line_bytes * BIG_BLOCK_LINES)
        encoded = b"".join(
            base64.b64encode(block[i : i + line_bytes]) + b"\r\n"
            for i in range(0, len(block), line_bytes)
        )
        written = 0
        while written < size_bytes:
            out.write(encoded)
            written += len(encoded)
        out.write(b"--BIG--\r\n")
    return path


def round_trip(
    dovecot: Dovecot,
    user: str,
    message: bytes | EmailMessage,
    directory: Path,
    limits: IntakeLimits = LIMITS,
) -> InboundMail:
    """APPEND ``message``, read it back through the IMAP client, and parse it."""
    dovecot.append(user, "INBOX", message)
    with open_mailbox(dovecot.settings(user)) as mailbox:
        ref = mailbox.unprocessed()[-1]
        fetched = mailbox.fetch_to_file(ref, directory / f"{ref.uid}.eml")
    assert fetched.path is not None, fetched.skipped
    return parse_mail(fetched.path, directory / "staging", limits)
