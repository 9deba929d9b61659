"""Long base64 bodies decoded from the mail file give what the email package would give."""

from __future__ import annotations

import base64
import os
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from mail_intake_helpers import LIMITS, raw

from shared.mail_intake import rawbodies
from shared.mail_intake.parsing import parse_mail

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

BLOB = b"%PDF-1.7\n" + os.urandom(300_000)


def _mail(linesep: str = "\r\n") -> bytes:
    message = EmailMessage()
    message["From"] = "Anna <anna@kunde.example>"
    message["Subject"] = "[Auftrag A1] Daten"
    message.set_content("Hallo\n\nzweiter Absatz\n")
    message.add_attachment(BLOB, maintype="application", subtype="pdf", filename="a.pdf")
    message.add_attachment(
        ("Zeile;" * 30 + "\n").encode() * 3000, maintype="text", subtype="csv", filename="t.csv"
    )
    inner = EmailMessage()
    inner["Subject"] = "weitergeleitet"
    inner.set_content("innen")
    inner.add_attachment(BLOB[:100_000], maintype="image", subtype="png", filename="i.png")
    message.add_attachment(inner)
    return message.as_bytes(policy=default_policy.clone(linesep=linesep))


def _staged(source: Path, tmp_path: Path, name: str) -> dict[str, bytes]:
    parsed = parse_mail(source, tmp_path / name, LIMITS)
    assert parsed.problems == ()
    return {item.file_name: item.path.read_bytes() for item in parsed.attachments}


@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
def test_attachments_are_the_same_with_and_without_elision(tmp_path, monkeypatch, linesep):
    source = tmp_path / "mail.eml"
    source.write_bytes(_mail(linesep))
    fast = _staged(source, tmp_path, "fast")
    monkeypatch.setattr(rawbodies, "MIN_RUN_BYTES", 10**12)  # nothing elided: email package only
    slow = _staged(source, tmp_path, "slow")
    assert fast == slow
    assert fast["a.pdf"] == BLOB
    assert set(fast) == {"a.pdf", "t.csv", "message-3.eml"}


def test_only_binary_bodies_are_streamed_the_rest_is_given_back(tmp_path):
    source = tmp_path / "mail.eml"
    data = _mail()
    source.write_bytes(data)
    skeleton, runs = rawbodies.elide(data, source)
    assert len(runs) == 3  # the PDF, the CSV and the forwarded mail's image
    assert len(skeleton) < 10_000
    message = message_from_bytes(skeleton, policy=default_policy)
    streamed = rawbodies.restore(message, runs)
    (run,) = streamed.values()
    assert b"".join(run.chunks()) == BLOB and run.size == len(BLOB)
    # Only the streamed body keeps its marker; the others have their text back.
    streamed_marker = next(marker for marker, found in runs.items() if found == run)
    assert "ptportal-elided-" not in message.as_string().replace(streamed_marker, "")


def test_a_body_with_a_foreign_byte_is_not_elided(tmp_path):
    encoded = base64.encodebytes(os.urandom(200_000)).replace(b"\n", b"\r\n")
    broken = encoded[:100_000] + b"#" + encoded[100_000:]
    data = raw(
        "From: a@b.example",
        "MIME-Version: 1.0",
        "Content-Type: application/pdf",
        "Content-Transfer-Encoding: base64",
        "",
        broken.decode(),
    )
    source = tmp_path / "mail.eml"
    source.write_bytes(data)
    assert rawbodies.elide(data, source) == (data, {})


def test_a_truncated_tail_is_rescued_like_the_email_package_does(tmp_path):
    encoded = base64.b64encode(os.urandom(120_000)).decode()
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    cut = "\r\n".join(lines)[:-2]  # the last quad is incomplete
    source = tmp_path / "mail.eml"
    source.write_bytes(
        raw(
            "From: a@b.example",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="B"',
            "",
            "--B",
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment; filename=x.bin",
            "Content-Transfer-Encoding: base64",
            "",
            cut,
            "--B--",
            "",
        )
    )
    fast = parse_mail(source, tmp_path / "fast", LIMITS).attachments[0]
    expected = base64.b64decode(cut.replace("\r\n", "") + "=" * (-len(cut.replace("\r\n", "")) % 4))
    assert fast.path.read_bytes() == expected
