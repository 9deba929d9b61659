"""One raw mail (a file of RFC822 bytes) → ``InboundMail``, plain data for matching and display.

``parse_mail`` never raises on what a sender wrote: malformed MIME, missing headers,
unknown charsets and broken encodings give a best-effort ``InboundMail`` whose
``problems`` say what was wrong. Only the staging directory failing (disk full, no
permission) raises ``OSError``, after removing what this call had written there.

Memory and time: long base64 bodies (attachments) stay in the file while the email
package parses the rest (``rawbodies``) and are decoded to disk slice by slice from
there; the email package holds only the remainder. Attachments are never held decoded
as a whole.
The mailbox's ``max_mail_bytes`` keeps larger mails from being fetched at all.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TypeVar

from shared.mail_intake import attachments as attachment_rules
from shared.mail_intake import rawbodies
from shared.mail_intake.attachments import Attachment
from shared.mail_intake.automatic import (
    DeliveryStatus,
    auto_reply_reason,
    delivery_statuses,
    is_delivery_report,
)
from shared.mail_intake.bodies import cid_references, html_to_text, sanitise_html, split_quoted
from shared.mail_intake.headers import (
    MailAddress,
    decode_bytes,
    header_addresses,
    header_date,
    header_text,
)
from shared.mail_intake.message_ids import first_message_id, message_ids
from shared.mail_intake.rawbodies import RawBase64

log = logging.getLogger(__name__)
T = TypeVar("T")

SYNTHESISED_DOMAIN = "synthesised.ptportal.invalid"
# Deeper nesting than this is no real mail program's doing; stop instead of recursing.
MAX_MIME_DEPTH = 30
# Parts the report itself consists of: the machine-readable status and the returned mail.
_REPORT_PARTS = {"message/delivery-status", "text/rfc822-headers", "message/rfc822"}
# The email package's defects that malformed mail typically shows, in staff's words.
_DEFECTS = {
    "NoBoundaryInMultipartDefect": "a multipart part declares no boundary",
    "StartBoundaryNotFoundDefect": "the multipart boundary never appears",
    "CloseBoundaryNotFoundDefect": "the closing multipart boundary is missing (cut off?)",
    "MultipartInvariantViolationDefect": "a multipart part has no subparts",
    "MissingHeaderBodySeparatorDefect": (
        "a header line without a colon: everything after it was read as body"
    ),
    "FirstHeaderLineIsContinuationDefect": "the first header line starts with a space",
    "MisplacedEnvelopeHeaderDefect": "a 'From ' envelope line among the headers",
    "InvalidBase64PaddingDefect": "broken base64 (padding)",
    "InvalidBase64CharactersDefect": "broken base64 (invalid characters)",
    "InvalidBase64LengthDefect": "broken base64 (length)",
}


@dataclass(frozen=True)
class IntakeLimits:
    """What one mail may bring (client.ini: max_attachments, max_total_attachment_bytes)."""

    max_attachments: int
    max_total_attachment_bytes: int


@dataclass(frozen=True)
class InboundMail:
    """Everything the portal needs from one received mail, as plain data."""

    message_id: str
    message_id_synthesised: bool  # the mail had none; this one is derived from its bytes
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: MailAddress | None
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    reply_to: tuple[MailAddress, ...]
    subject: str
    date: datetime | None
    auto_reply: bool
    auto_reply_reason: str
    delivery_report: bool
    delivery_statuses: tuple[DeliveryStatus, ...]
    text_body: str  # the reply itself (plain text, or the HTML as text)
    quoted_history: str  # what it quotes, for the page to fold away
    html_body: str  # sanitised: no scripts, no remote images
    attachments: tuple[Attachment, ...]
    over_limits: str  # why the attachments were not written, or ""
    problems: tuple[str, ...]
    size: int
    sha256: str

    @property
    def failed_recipients(self) -> tuple[str, ...]:
        """Recipients a delivery report says failed."""
        return tuple(status.recipient for status in self.delivery_statuses if status.failed)

    @property
    def print_attachments(self) -> tuple[Attachment, ...]:
        """Attachments that may be print data (not signature images or logos)."""
        return tuple(item for item in self.attachments if not item.inline)


@dataclass
class _Collected:
    """What the walk over the MIME tree found, before limits and staging."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_mail(source: Path, staging_dir: Path, limits: IntakeLimits) -> InboundMail:
    """Parse the mail in ``source``; stage its attachments in ``staging_dir`` unless over limits."""
    problems: list[str] = []
    size, digest, message, streamed = _parse_file(source, problems)

    message_id = first_message_id(header_text(message, "Message-ID"))
    synthesised = not message_id
    if synthesised:
        message_id = f"<{digest[:40]}@{SYNTHESISED_DOMAIN}>"
        log.info("mail %s has no Message-ID; using %s", source.name, message_id)

    sender = next(iter(header_addresses(message, "From")), None)
    if sender is None:
        problems.append("no readable From address")
    subject = header_text(message, "Subject")

    collected = _Collected()
    in_report = message.get_content_type() == "multipart/report"
    _attempt(
        problems, "read the MIME structure", lambda: _walk(message, collected, 0, in_report), None
    )
    problems.extend(collected.problems)
    problems.extend(_defects(message))

    html_raw = "\n".join(collected.htmls)
    html_body = _attempt(
        problems, "sanitise the HTML body", lambda: sanitise_html(html_raw).strip(), ""
    )
    text = "\n\n".join(collected.texts).strip()
    if not text and html_body:
        text = _attempt(problems, "convert the HTML body", lambda: html_to_text(html_body), "")
    reply, history = split_quoted(text)

    found, over_limits = _classify(
        collected.files, cid_references(html_raw), limits, problems, streamed
    )
    staged = found if over_limits else _stage_all(found, collected.files, staging_dir, streamed)

    reason = _attempt(
        problems, "check for an auto-reply", lambda: auto_reply_reason(message, subject), ""
    )
    report = _attempt(
        problems, "check for a delivery report", lambda: is_delivery_report(message, sender), False
    )
    statuses = (
        _attempt(problems, "read the delivery report", lambda: delivery_statuses(message), ())
        if report
        else ()
    )
    return InboundMail(
        message_id=message_id,
        message_id_synthesised=synthesised,
        in_reply_to=message_ids(header_text(message, "In-Reply-To")),
        references=message_ids(header_text(message, "References")),
        sender=sender,
        to=header_addresses(message, "To"),
        cc=header_addresses(message, "Cc"),
        reply_to=header_addresses(message, "Reply-To"),
        subject=subject,
        date=header_date(message),
        auto_reply=bool(reason),
        auto_reply_reason=reason,
        delivery_report=report,
        delivery_statuses=statuses,
        text_body=reply,
        quoted_history=history,
        html_body=html_body,
        attachments=tuple(staged),
        over_limits=over_limits,
        problems=tuple(dict.fromkeys(problems)),
        size=size,
        sha256=digest,
    )


def _parse_file(
    source: Path, problems: list[str]
) -> tuple[int, str, Message, dict[int, RawBase64]]:
    """Size, SHA-256 and parsed message of the mail in ``source``, its long base64 bodies
    left in the file (``rawbodies``): ``id(part)`` → where each such body is."""
    with source.open("rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            data = None
        try:
            size = len(data) if data is not None else 0
            digest = hashlib.sha256(data if data is not None else b"").hexdigest()
            skeleton, runs = rawbodies.elide(data, source) if data is not None else (b"", {})
            try:
                if runs:
                    message = BytesParser(policy=default_policy).parsebytes(skeleton)
                else:
                    handle.seek(0)
                    message = BytesParser(policy=default_policy).parse(handle)
            except Exception as exc:  # the parser is lenient; this is for the truly unexpected
                log.warning("cannot parse %s: %s", source, exc)
                message = Message(policy=default_policy)
                problems.append(f"the mail could not be parsed: {exc}")
                runs = {}
        finally:
            if data is not None:
                data.close()
    streamed = _attempt(
        problems, "read a large attachment", lambda: rawbodies.restore(message, runs), {}
    )
    return size, digest, message, streamed


def _attempt(problems: list[str], doing: str, work: Callable[[], T], fallback: T) -> T:
    """``work()``, or ``fallback`` with a problem noted: one bad part never stops the import."""
    try:
        return work()
    except Exception as exc:
        problems.append(f"cannot {doing}: {type(exc).__name__}: {exc}")
        return fallback


def _walk(part: Message, found: _Collected, depth: int, in_report: bool) -> None:
    """Sort the MIME tree's leaves into text bodies, HTML bodies and files."""
    if depth > MAX_MIME_DEPTH:
        found.problems.append(f"MIME parts nested deeper than {MAX_MIME_DEPTH}: the rest ignored")
        return
    content_type = part.get_content_type()
    if in_report and content_type in _REPORT_PARTS:
        return
    if content_type in {"message/rfc822", "message/global"}:
        found.files.append(part)  # a forwarded mail is kept as one .eml attachment
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                _walk(child, found, depth + 1, in_report)
        return
    disposition = _attempt(found.problems, "read a disposition", part.get_content_disposition, None)
    file_name = _attempt(found.problems, "read a file name", part.get_filename, None)
    is_body = disposition != "attachment" and not file_name
    if part.get_content_maintype() == "multipart":
        # A multipart without (a matching) boundary arrives as one text blob.
        found.problems.append(f"{content_type} without a usable boundary: shown as text")
        found.texts.append(_text_of(part, found.problems))
    elif is_body and content_type == "text/plain":
        found.texts.append(_text_of(part, found.problems))
    elif is_body and content_type == "text/html":
        found.htmls.append(_text_of(part, found.problems))
    else:
        found.files.append(part)


def _text_of(part: Message, problems: list[str]) -> str:
    """A text part decoded with its declared charset, falling back to UTF-8 / Windows-1252."""
    data = _attempt(problems, "decode a text part", lambda: part.get_payload(decode=True), b"")
    if not isinstance(data, bytes):
        return ""
    charset = str(part.get_param("charset", "") or "")
    return decode_bytes(data, charset).replace("\r\n", "\n")


def _classify(
    files: list[Message],
    referenced: set[str],
    limits: IntakeLimits,
    problems: list[str],
    streamed: dict[int, RawBase64],
) -> tuple[list[Attachment], str]:
    """Attachment records (not yet written) and the over-limits reason, if any."""
    records = []
    for index, part in enumerate(files, start=1):
        content_type = part.get_content_type()
        name = _attempt(problems, "read a file name", part.get_filename, None)
        if not name and content_type in {"message/rfc822", "message/global"}:
            name = f"message-{index}.eml"
        content_id = _attempt(
            problems, "read a Content-ID", lambda p=part: header_text(p, "Content-ID"), ""
        ).strip("<> ")
        size = _attempt(problems, "decode an attachment", lambda p=part: _size_of(p, streamed), 0)
        disposition = _attempt(problems, "read a disposition", part.get_content_disposition, None)
        records.append(
            Attachment(
                index=index,
                file_name=attachment_rules.safe_attachment_name(name, index),
                content_type=content_type,
                size=size,
                inline=attachment_rules.is_inline_image(
                    content_type, disposition or "", content_id, size, referenced
                ),
                content_id=content_id,
            )
        )
    print_data = [item for item in records if not item.inline]
    total = sum(item.size for item in records)
    if len(print_data) > limits.max_attachments:
        return records, (
            f"{len(print_data)} attachments, more than the limit of {limits.max_attachments}"
        )
    if total > limits.max_total_attachment_bytes:
        return records, (
            f"attachments of {total} bytes, more than the limit of "
            f"{limits.max_total_attachment_bytes}"
        )
    return records, ""


def _size_of(part: Message, streamed: dict[int, RawBase64]) -> int:
    if id(part) in streamed:
        return streamed[id(part)].size
    if part.get_content_maintype() == "message":
        return len(_message_bytes(part))
    return attachment_rules.decoded_size(part)


def _message_bytes(part: Message) -> bytes:
    """A forwarded mail's bytes, as the sender's program wrote them where possible."""
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    if isinstance(inner, Message):
        return inner.as_bytes(policy=default_policy.clone(linesep="\r\n"))
    return str(inner or "").encode("utf-8", "surrogateescape")


def _stage_all(
    records: list[Attachment],
    parts: list[Message],
    staging_dir: Path,
    streamed: dict[int, RawBase64],
) -> list[Attachment]:
    """Write every attachment to ``staging_dir``; on a disk error remove them all again."""
    written: list[Path] = []
    staged = []
    try:
        for record, part in zip(records, parts, strict=True):
            if id(part) in streamed:
                chunks: Iterable[bytes] = streamed[id(part)].chunks()
            elif part.get_content_maintype() == "message":
                chunks = [_message_bytes(part)]
            else:
                chunks = attachment_rules.decoded_chunks(part)
            path, size, sha256 = attachment_rules.stage(chunks, staging_dir, record.file_name)
            written.append(path)
            staged.append(replace(record, path=path, size=size, sha256=sha256))
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return staged


def _defects(message: Message) -> Iterator[str]:
    """The email package's complaints about the MIME structure, as readable lines."""
    try:
        parts = list(message.walk())
    except Exception as exc:
        yield f"cannot walk the MIME tree: {exc}"
        return
    for part in parts:
        for defect in getattr(part, "defects", ()):
            name = type(defect).__name__
            yield _DEFECTS.get(name) or f"{name}: {defect}".rstrip(": ")
