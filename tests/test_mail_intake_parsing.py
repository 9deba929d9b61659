"""Parsing received mail: each message goes into a real dovecot and comes back via the client."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from dovecot_helpers import Dovecot, dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import (
    CUSTOMER,
    DATE,
    LIMITS,
    PDF,
    PNG,
    big_attachment_bytes,
    delivery_report,
    html_mail_with_logo,
    mail,
    mail_with_attachments,
    raw,
    round_trip,
    write_big_mail,
)

from shared.mail_intake.attachments import INLINE_IMAGE_MAX_BYTES
from shared.mail_intake.headers import MailAddress
from shared.mail_intake.parsing import SYNTHESISED_DOMAIN, IntakeLimits, parse_mail

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here


@pytest.fixture
def parse(dovecot: Dovecot, imap_user: str, tmp_path: Path):
    """Round-trip a message through dovecot and the IMAP client, then parse it."""

    def run(message: bytes | EmailMessage, limits: IntakeLimits = LIMITS):
        return round_trip(dovecot, imap_user, message, tmp_path, limits)

    return run


def files_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


# -- headers ------------------------------------------------------------------------------


def test_encoded_words_and_odd_charsets_in_headers(parse) -> None:
    parsed = parse(
        raw(
            b"From: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <J.Mueller@Kunde.example>",
            b'To: "M\xc3\xbcller, Anna" <anna@kunde.example>, b@kunde.example',
            b"Cc: =?x-unknown?q?Fran=E7oise?= <f@client.example>,",
            b" =?ks_c_5601-1987?b?sPi1vw==?= <k@x.example>",
            b"Subject: =?windows-1252?q?Gr=FC=DFe_=96_Preis_80_=80?= und \xe4rger",
            b"Reply-To: =?iso-8859-1?q?B=FCro?= <buero@kunde.example>",
            f"Date: {DATE}".encode(),
            b"Message-ID: <enc@kunde.example>",
            b"In-Reply-To: <portal-7@druckerei.example>",
            b"References: <portal-1@druckerei.example>\r\n <portal-7@druckerei.example>",
            b"",
            b"Text",
            b"",
        )
    )
    assert parsed.sender == MailAddress("J.Mueller@Kunde.example", "Jürgen Müller")
    assert parsed.to == (
        MailAddress("anna@kunde.example", "Müller, Anna"),
        MailAddress("b@kunde.example", ""),
    )
    assert parsed.cc == (
        MailAddress("f@client.example", "Françoise"),
        MailAddress("k@x.example", "공동"),
    )
    assert parsed.reply_to == (MailAddress("buero@kunde.example", "Büro"),)
    assert parsed.subject == "Grüße – Preis 80 € und ärger"
    assert parsed.in_reply_to == ("<portal-7@druckerei.example>",)
    assert parsed.references == ("<portal-1@druckerei.example>", "<portal-7@druckerei.example>")
    assert parsed.date is not None and parsed.date.isoformat() == "2026-05-04T10:00:00+00:00"
    assert parsed.message_id == "<enc@kunde.example>"
    assert not parsed.message_id_synthesised


def test_a_mail_without_message_id_gets_a_stable_synthesised_one(parse, tmp_path: Path) -> None:
    message = mail(message_id=None)
    parsed = parse(message)
    expected = hashlib.sha256(message.as_bytes().replace(b"\n", b"\r\n")).hexdigest()

    assert parsed.message_id_synthesised
    assert parsed.message_id == f"<{expected[:40]}@{SYNTHESISED_DOMAIN}>"
    again = tmp_path / "again.eml"
    again.write_bytes(message.as_bytes().replace(b"\n", b"\r\n"))
    assert parse_mail(again, tmp_path / "s2", LIMITS).message_id == parsed.message_id


# -- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("iso-8859-1", "Grüße aus Köln".encode("latin-1"), "Grüße aus Köln"),
        ("windows-1252", "„Preis“ 80 € – fertig".encode("cp1252"), "„Preis“ 80 € – fertig"),
        # Latin-1 label, Windows bytes (€ is 0x80): as Outlook sends it.
        ("iso-8859-1", "Preis 80 €".encode("cp1252"), "Preis 80 €"),
        ("x-no-such-charset", "Grüße".encode(), "Grüße"),
        ("", "Grüße".encode("cp1252"), "Grüße"),
    ],
    ids=["latin-1", "windows-1252", "latin-1-label-with-euro", "unknown-charset", "8bit"],
)  # fmt: skip
def test_body_charsets(parse, charset: str, body: bytes, expected: str) -> None:
    content_type = f"text/plain; charset={charset}" if charset else "text/plain"
    parsed = parse(
        raw(
            f"From: {CUSTOMER}",
            "Subject: Zeichensatz",
            "MIME-Version: 1.0",
            f"Content-Type: {content_type}",
            "Content-Transfer-Encoding: 8bit",
            "",
        )
        + b"\r\n"
        + body
        + b"\r\n"
    )
    assert parsed.text_body == expected
    assert parsed.problems == ()


def test_html_is_sanitised_and_the_logo_stays_inline(parse, tmp_path: Path) -> None:
    parsed = parse(html_mail_with_logo())

    assert parsed.text_body == "Text version"
    assert parsed.html_body == (
        '<p>Sehr geehrte Damen und Herren,</p><img><img src="cid:logo@kunde.example" alt="Logo">'
    )
    logo, flyer = parsed.attachments
    assert (logo.content_type, logo.inline, logo.content_id, logo.size) == (
        "image/png",
        True,
        "logo@kunde.example",
        len(PNG),
    )
    assert (flyer.file_name, flyer.content_type, flyer.inline, flyer.size) == (
        "Flyer A5.pdf",
        "application/pdf",
        False,
        len(PDF),
    )
    assert parsed.print_attachments == (flyer,)
    assert logo.path is not None and logo.path.read_bytes() == PNG
    assert flyer.path == tmp_path / "staging" / "Flyer A5.pdf"
    assert flyer.path.read_bytes() == PDF


def test_an_html_only_mail_gets_a_text_body(parse) -> None:
    message = mail(subject="Nur HTML")
    message.set_content(
        "<p>Hallo,</p><p>die Daten<br>kommen morgen.</p><script>x()</script>", subtype="html"
    )
    parsed = parse(message)
    assert parsed.text_body == "Hallo,\n\ndie Daten\nkommen morgen."
    assert parsed.html_body == "<p>Hallo,</p><p>die Daten<br>kommen morgen.</p>"


def test_the_quoted_history_is_split_off(parse) -> None:
    parsed = parse(
        mail(
            subject="AW: [Auftrag 4711] Druckdaten",
            body=(
                "Guten Tag,\n\nanbei die korrigierte Datei.\n\n"
                "Am 03.05.2026 um 10:00 schrieb Druckerei <auftraege@druckerei.example>:\n"
                "> Bitte laden Sie die Daten hoch.\n> Danke\n"
            ),
        )
    )
    assert parsed.text_body == "Guten Tag,\n\nanbei die korrigierte Datei."
    assert parsed.quoted_history == (
        "Am 03.05.2026 um 10:00 schrieb Druckerei <auftraege@druckerei.example>:\n"
        "> Bitte laden Sie die Daten hoch.\n> Danke"
    )


# -- attachments --------------------------------------------------------------------------


def test_file_names_cannot_leave_the_staging_directory(parse, tmp_path: Path) -> None:
    message = mail_with_attachments("../../x.pdf", "..\\..\\windows.pdf", "", "..")
    parsed = parse(message)

    assert [item.file_name for item in parsed.attachments] == [
        "x.pdf",
        "windows.pdf",
        "attachment-3",
        "attachment-4",
    ]
    staging = tmp_path / "staging"
    assert all(item.path is not None and item.path.parent == staging for item in parsed.attachments)
    assert files_under(staging) == sorted(["x.pdf", "windows.pdf", "attachment-3", "attachment-4"])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1.eml", "staging"]


def test_a_cr_lf_name_in_a_raw_header_is_cleaned(parse) -> None:
    parsed = parse(
        raw(
            f"From: {CUSTOMER}",
            "Subject: roh",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="B"',
            "",
            "--B",
            "Content-Type: text/plain",
            "",
            "Text",
            "--B",
            'Content-Type: application/pdf; name="=?utf-8?q?a=0D=0A=00b=2Epdf?="',
            "Content-Transfer-Encoding: base64",
            "",
            "JVBERi0xLjQK",
            "--B",
            "Content-Type: application/pdf",
            "Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%0D%0Apasswd",
            "Content-Transfer-Encoding: base64",
            "",
            "JVBERi0xLjQK",
            "--B--",
            "",
        )
    )
    assert [(item.file_name, item.size) for item in parsed.attachments] == [
        ("ab.pdf", 9),
        ("etcpasswd", 9),
    ]


def test_inline_rule(parse) -> None:
    message = mail(subject="Bilder")
    message.set_content("siehe Anhang")
    big_image = b"\x89PNG" + bytes(INLINE_IMAGE_MAX_BYTES)
    message.add_attachment(PNG, maintype="image", subtype="png", disposition="inline")
    message.add_attachment(
        big_image, maintype="image", subtype="png", disposition="inline", filename="foto.png"
    )
    message.add_attachment(
        PDF, maintype="application", subtype="pdf", disposition="inline", filename="apple.pdf"
    )
    message.add_attachment(PNG, maintype="image", subtype="png", filename="motiv.png")
    parsed = parse(message)

    assert [(item.file_name, item.inline) for item in parsed.attachments] == [
        ("attachment-1", True),  # a small inline image: a signature or logo
        ("foto.png", False),  # too large for a logo: print data
        ("apple.pdf", False),  # Apple Mail marks PDFs inline: still print data
        ("motiv.png", False),  # a small image sent as attachment: print data
    ]


def test_over_the_attachment_count_nothing_is_written(parse, tmp_path: Path) -> None:
    parsed = parse(
        html_mail_with_logo(),
        limits=IntakeLimits(max_attachments=0, max_total_attachment_bytes=10**9),
    )
    assert parsed.over_limits == "1 attachments, more than the limit of 0"
    assert [(item.file_name, item.path) for item in parsed.attachments] == [
        ("attachment-1", None),
        ("Flyer A5.pdf", None),
    ]
    assert not (tmp_path / "staging").exists()


def test_over_the_total_size_nothing_is_written(parse, tmp_path: Path) -> None:
    parsed = parse(
        mail_with_attachments("a.pdf", "b.pdf"),
        limits=IntakeLimits(max_attachments=5, max_total_attachment_bytes=len(PDF) * 2 - 1),
    )
    assert parsed.over_limits == (
        f"attachments of {len(PDF) * 2} bytes, more than the limit of {len(PDF) * 2 - 1}"
    )
    assert all(item.path is None for item in parsed.attachments)
    assert not (tmp_path / "staging").exists()


def test_a_forwarded_mail_is_one_eml_attachment(parse) -> None:
    message = mail(subject="WG: Original")
    message.add_attachment(mail(subject="Original", message_id="<inner@x.example>"))
    parsed = parse(message)
    (forwarded,) = parsed.attachments
    assert (forwarded.file_name, forwarded.content_type) == ("message-1.eml", "message/rfc822")
    assert forwarded.path is not None
    assert b"Message-ID: <inner@x.example>" in forwarded.path.read_bytes()


def test_a_100_mb_mail_is_parsed_with_its_attachment_on_disk(tmp_path: Path) -> None:
    source = write_big_mail(tmp_path / "big.eml", 100 * 1024 * 1024)
    parsed = parse_mail(source, tmp_path / "staging", LIMITS)

    (attachment,) = parsed.attachments
    assert attachment.file_name == "gross.pdf"
    assert attachment.path is not None
    assert attachment.size == attachment.path.stat().st_size
    assert attachment.size == big_attachment_bytes(100 * 1024 * 1024)
    assert parsed.size == source.stat().st_size
    assert parsed.problems == ()


# -- malformed mail -----------------------------------------------------------------------


def test_a_multipart_without_boundary_becomes_text(parse) -> None:
    parsed = parse(
        raw(
            f"From: {CUSTOMER}",
            "Subject: kaputt",
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
    assert parsed.text_body == "--X\nContent-Type: text/plain\n\nHallo\n--X--"
    assert parsed.attachments == ()
    assert parsed.problems == (
        "multipart/mixed without a usable boundary: shown as text",
        "a multipart part declares no boundary",
        "a multipart part has no subparts",
    )


def test_garbage_headers_and_a_missing_closing_boundary(parse) -> None:
    parsed = parse(
        raw(
            b"From: \xe4rger <" + CUSTOMER.encode() + b">",
            b"Subject: =?utf-8?q?unvollst=C3=A4ndig",
            b"X-Junk: \x01\x02\xff\xfe",
            b"Date: gestern",
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="B"',
            b"",
            b"--B",
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            b"Hallo",
            b"--B",
            b'Content-Type: application/pdf; name="abgeschnitten.pdf"',
            b"Content-Transfer-Encoding: base64",
            b"",
            b"JVBERi0xLjQK!!*",
            b"",
        )
    )
    assert parsed.sender == MailAddress(CUSTOMER, "ärger")
    assert parsed.subject == "=?utf-8?q?unvollst=C3=A4ndig"
    assert parsed.date is None
    assert parsed.text_body == "Hallo"
    assert [(item.file_name, item.size) for item in parsed.attachments] == [
        ("abgeschnitten.pdf", 9)
    ]
    assert "the closing multipart boundary is missing (cut off?)" in parsed.problems


NO_COLON = "a header line without a colon: everything after it was read as body"
NO_START = "the multipart boundary never appears"
NESTED = b"".join(
    b"Content-Type: multipart/mixed; boundary=B%d\r\n\r\n--B%d\r\n" % (depth, depth)
    for depth in range(60)
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "no readable From address"),
        (b"\x00\xff\xfe\r\n\r\n\r\n", "no readable From address"),
        (b"no headers at all, just text\r\n", NO_COLON),
        (b'Content-Type: multipart/mixed; boundary="' + b"x" * 2000 + b'"\r\n\r\n', NO_START),
        (NESTED, "MIME parts nested deeper than 30: the rest ignored"),
    ],
    ids=["empty", "binary", "no-headers", "long-boundary", "nested-60-deep"],
)  # fmt: skip
def test_nonsense_never_raises(tmp_path: Path, content: bytes, problem: str) -> None:
    source = tmp_path / "bad.eml"
    source.write_bytes(content)
    parsed = parse_mail(source, tmp_path / "staging", LIMITS)
    assert parsed.message_id_synthesised
    assert parsed.size == len(content)
    assert problem in parsed.problems


# -- mail that no person wrote ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Auto-Submitted", "auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted", "auto-generated; owner=x@y.example", "Auto-Submitted: auto-generated"),
        ("X-Autoreply", "yes", "X-Autoreply header"),
        ("X-Autorespond", "1", "X-Autorespond header"),
        ("Precedence", "bulk", "Precedence: bulk"),
        ("Precedence", "junk", "Precedence: junk"),
        ("Precedence", "auto_reply", "Precedence: auto_reply"),
        ("Precedence", "list", "Precedence: list"),
    ],
)
def test_auto_reply_headers(parse, name: str, value: str, reason: str) -> None:
    message = mail(subject="Re: Druckdaten")
    message[name] = value
    parsed = parse(message)
    assert (parsed.auto_reply, parsed.auto_reply_reason) == (True, reason)
    assert not parsed.delivery_report


@pytest.mark.parametrize(
    "subject",
    [
        "Abwesenheitsnotiz: [Auftrag 4711] Druckdaten",
        "Automatische Antwort: Druckdaten",
        "Out of Office: proofs",
        "Automatic reply: proofs",
        "Réponse automatique : épreuves",
        "Absence : épreuves",
        "Absent",
    ],
)
def test_out_of_office_subjects(parse, subject: str) -> None:
    parsed = parse(mail(subject=subject))
    assert (parsed.auto_reply, parsed.auto_reply_reason) == (
        True,
        f"out-of-office subject: {subject}",
    )


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ({"Auto-Submitted": "no"}, "Re: Druckdaten"),
        ({"Precedence": "first-class"}, "Re: Druckdaten"),
        ({}, "Absence of bleed in the PDF"),
        ({}, "AW: Abwesend bis Montag? Dann schicke ich es heute"),
    ],
)
def test_people_are_not_auto_replies(parse, headers: dict[str, str], subject: str) -> None:
    message = mail(subject=subject)
    for name, value in headers.items():
        message[name] = value
    parsed = parse(message)
    assert (parsed.auto_reply, parsed.auto_reply_reason) == (False, "")


def test_a_delivery_report_names_the_failed_recipient(parse, tmp_path: Path) -> None:
    parsed = parse(delivery_report("Nobody@Kunde.example", "5.1.1"))

    assert parsed.delivery_report
    assert parsed.failed_recipients == ("Nobody@Kunde.example",)
    failed, delayed = parsed.delivery_statuses
    assert (failed.action, failed.status, failed.smtp_code) == ("failed", "5.1.1", 550)
    assert failed.diagnostic == (
        "smtp; 550 5.1.1 <Nobody@Kunde.example>: Recipient address rejected"
    )
    assert (delayed.recipient, delayed.action, delayed.failed) == (
        "slow@other.example",
        "delayed",
        False,
    )
    assert parsed.text_body == "This is the mail system. Your message could not be delivered."
    assert parsed.attachments == ()  # the returned mail is ours, not something to stage
    assert not (tmp_path / "staging").exists()


def test_a_bounce_without_report_part_uses_x_failed_recipients(parse) -> None:
    parsed = parse(
        mail(
            subject="Mail delivery failed: returning message to sender",
            sender="Mail Delivery System <Mailer-Daemon@mx.kunde.example>",
            X_Failed_Recipients="gone@kunde.example, also-gone@kunde.example",
        )
    )
    assert parsed.delivery_report
    assert parsed.failed_recipients == ("gone@kunde.example", "also-gone@kunde.example")
