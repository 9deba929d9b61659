"""Import one mailbox's mail into orders, the staff inbox or the bounce list, each mail once.

How a mail is imported exactly once (issue 17 §6); the code follows the numbers:

1. List the folder's unprocessed messages (UIDVALIDITY, UID, Message-ID).
2. A message whose UIDVALIDITY+UID, or whose Message-ID, the database holds already was
   imported before (a crash between 6 and 7, or the same mail in another mailbox or
   delivered twice): only step 7 is repeated.
3. Fetch it into a work file (BODY.PEEK: not even \\Seen yet). A mail over
   ``max_mail_bytes`` is not fetched: its headers go to the staff inbox with a note.
4. Parse it; its attachments are written into the mail's work directory.
5. Decide where it belongs (``shared.mail_intake.matching``, with the look-ups of
   ``lookups``); over the attachment limits it goes to the staff inbox with a note.
6. One transaction records it: the ``ReceivedMail`` row (unique per UIDVALIDITY+UID and
   per Message-ID), the order's message, an ``OrderFile`` per attachment (hard-linked
   into the upload staging area under a key derived from the mail, so a second attempt
   after a crash reuses the same name), signature images, the bounce list, the
   notification. The raw mail of a staff inbox item is linked into the held directory
   the same way. Another reader's row for the same mail (IntegrityError) keeps nothing.
7. Only after the commit: move the message to the processed folder (or flag it), hand
   its files to the virus scan and remove the work files.

A crash before 6 commits leaves no row, and the next attempt replaces the links it left.
A crash between 6 and 7 leaves the row, so step 2 only marks the mail. Either way no
message and no file exists twice, and nothing is written outside the staging area until
the scan places a clean file into ``Eingehend``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from peewee import IntegrityError

from shared.clock import utcnow
from shared.config import MailboxSettings, Settings
from shared.conversations import lookups
from shared.conversations.messages import excerpt
from shared.db import write_transaction
from shared.events import CUSTOMER_MESSAGE, notify
from shared.files.folders import FOLDER_INCOMING
from shared.files.receiving import staging_path
from shared.mail.bounces import is_hard_bounce, record_bounce
from shared.mail_intake import matching
from shared.mail_intake.attachments import Attachment
from shared.mail_intake.headers import (
    MailAddress,
    header_addresses,
    header_date,
    header_text,
)
from shared.mail_intake.imap import MailboxConnection, MessageRef
from shared.mail_intake.matching import Decision
from shared.mail_intake.message_ids import message_ids
from shared.mail_intake.parsing import InboundMail, IntakeLimits, parse_mail
from shared.models import (
    FileEvent,
    MailboxState,
    MessageFile,
    MessageImage,
    Order,
    OrderFile,
    OrderMessage,
    ReceivedMail,
)
from shared.seams import pause_at

log = logging.getLogger(__name__)

WORK_DIR = "mail-work"
HELD_DIR = "mail-held"
EVENT_FROM_MAIL = "from_mail"
# Signature images kept per mail; a mail with more is no ordinary signature.
MAX_INLINE_IMAGES = 20
# Longer Message-IDs (the header allows almost anything) are kept as their hash.
MAX_MESSAGE_ID = 990
TOO_LARGE_DOMAIN = "too-large.ptportal.invalid"
# Known UIDs and Message-IDs are looked up this many at a time.
LOOKUP_BATCH = 500

FileHandler = Callable[[int], None]


@dataclass
class PassReport:
    """What one pass over a mailbox did."""

    imported: int = 0
    skipped: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def count(self, action: str) -> None:
        self.imported += 1
        self.actions[action] = self.actions.get(action, 0) + 1


@dataclass
class _Recorded:
    row: ReceivedMail | None
    file_ids: list[int]
    links: list[Path]


def storable_message_id(message_id: str) -> str:
    """``message_id`` as stored and compared (very long ones by their hash)."""
    if len(message_id) <= MAX_MESSAGE_ID:
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    return f"<{digest}@long-id.ptportal.invalid>"


def held_dir(settings: Settings) -> Path:
    """Where the raw mail of staff inbox items waits for staff."""
    return settings.storage.staging_root / HELD_DIR


def decide(mail: InboundMail) -> Decision:
    """Where ``mail`` belongs: the matching rules, then the attachment limits."""
    decision = matching.decide(
        mail,
        lookups.order_for_sent_message_id,
        lookups.order_for_project_no,
        lookups.sender_facts,
    )
    if decision.action == matching.TO_ORDER and mail.over_limits:
        return matching.to_inbox(
            f"{decision.reason}, but {mail.over_limits}", suggested_order_id=decision.order_id
        )
    return decision


class MailImporter:
    """Reads one mailbox's unprocessed mail into the database (see the module docstring).

    ``on_file`` is called with the id of every file a committed mail brought, for the
    virus scan (the worker enqueues it; the sweep catches any it misses).
    """

    def __init__(
        self, settings: Settings, mailbox: MailboxSettings, on_file: FileHandler | None = None
    ) -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.on_file = on_file or (lambda _file_id: None)
        self.work = settings.storage.staging_root / WORK_DIR / mailbox.name
        self.limits = IntakeLimits(mailbox.max_attachments, mailbox.max_total_attachment_bytes)

    def clean_work(self) -> None:
        """Remove what an interrupted import left in the work directory."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)

    def import_pending(
        self, connection: MailboxConnection, stop: threading.Event | None = None
    ) -> PassReport:
        """Steps 1–7 for every unprocessed message, oldest first, until ``stop`` is set."""
        report = PassReport()
        refs = connection.unprocessed()  # 1
        known_uids, known_ids = self._known(refs)
        for ref in refs:
            if stop is not None and stop.is_set():
                break
            if ref.uid in known_uids or storable_message_id(ref.message_id) in known_ids:  # 2
                connection.mark_processed(ref)
                report.skipped += 1
                continue
            action = self.import_one(connection, ref)
            if action:
                report.count(action)
            else:
                report.skipped += 1
        if report.imported:
            _note_imported(self.mailbox.name, report.imported)
        return report

    def import_one(self, connection: MailboxConnection, ref: MessageRef) -> str:
        """Import one message (steps 3–7); returns the action taken, "" for a duplicate."""
        source = self.work / f"{ref.uidvalidity}-{ref.uid}.eml"
        attachments = self.work / f"{ref.uidvalidity}-{ref.uid}"
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            fetched = connection.fetch_to_file(ref, source)  # 3
            pause_at("fetched")
            if fetched.path is None:
                headers = connection.fetch_headers(ref)
                recorded = self._record_unfetched(ref, headers, fetched.skipped)
            else:
                mail = parse_mail(source, attachments, self.limits)  # 4
                recorded = self._record(ref, source, mail, decide(mail))  # 5, 6
            pause_at("committed")
            connection.mark_processed(ref)  # 7
        finally:
            source.unlink(missing_ok=True)
            shutil.rmtree(attachments, ignore_errors=True)
        for file_id in recorded.file_ids:
            self.on_file(file_id)
        return recorded.row.action if recorded.row is not None else ""

    # -- step 2 ------------------------------------------------------------------------------

    def _known(self, refs: list[MessageRef]) -> tuple[set[int], set[str]]:
        """UIDs (of this UIDVALIDITY) and Message-IDs of ``refs`` already recorded."""
        uids: set[int] = set()
        ids: set[str] = set()
        for start in range(0, len(refs), LOOKUP_BATCH):
            batch = refs[start : start + LOOKUP_BATCH]
            by_uid = ReceivedMail.select(ReceivedMail.uid).where(
                (ReceivedMail.mailbox == self.mailbox.name)
                & (ReceivedMail.uidvalidity == batch[0].uidvalidity)
                & ReceivedMail.uid.in_([ref.uid for ref in batch])
            )
            uids |= {row.uid for row in by_uid}
            wanted = [storable_message_id(ref.message_id) for ref in batch if ref.message_id]
            if wanted:
                by_id = ReceivedMail.select(ReceivedMail.message_id).where(
                    ReceivedMail.message_id.in_(wanted)
                )
                ids |= {row.message_id for row in by_id}
        return uids, ids

    # -- step 6 ------------------------------------------------------------------------------

    def _record(
        self, ref: MessageRef, source: Path, mail: InboundMail, decision: Decision
    ) -> _Recorded:
        links: list[Path] = []
        try:
            with write_transaction():
                row = self._mail_row(ref, mail, decision)
                file_ids = self._act(row, ref, source, mail, decision, links)
                pause_at("staged")
        except IntegrityError:
            self._drop_links_unless_same_mail(ref, links)
            log.info(
                "mailbox %s: UID %d (%s) was imported already",
                self.mailbox.name,
                ref.uid,
                mail.message_id,
            )
            return _Recorded(None, [], [])
        except BaseException:
            self._drop_links_unless_same_mail(ref, links)
            raise
        log.info(
            "mailbox %s: UID %d from %s → %s (%s)",
            self.mailbox.name,
            ref.uid,
            mail.sender.address if mail.sender else "(no sender)",
            decision.action,
            decision.reason,
        )
        return _Recorded(row, file_ids, links)

    def _mail_row(self, ref: MessageRef, mail: InboundMail, decision: Decision) -> ReceivedMail:
        order_id = decision.order_id
        inbox = decision.action == matching.TO_INBOX
        notes = [*mail.problems]
        if mail.over_limits:
            notes.append(f"attachments not taken: {mail.over_limits}")
        return ReceivedMail.create(
            mailbox=self.mailbox.name,
            uidvalidity=ref.uidvalidity,
            uid=ref.uid,
            message_id=storable_message_id(mail.message_id),
            sender=(mail.sender.address if mail.sender else "")[:1000],
            sender_name=mail.sender.display_name if mail.sender else "",
            subject=mail.subject,
            sent_at=_naive_utc(mail.date),
            size=mail.size,
            sha256=mail.sha256,
            action=decision.action,
            reason=decision.reason,
            note="\n".join(notes),
            auto_reply=mail.auto_reply,
            text_body=mail.text_body,
            quoted_history=mail.quoted_history,
            html_body=mail.html_body,
            attachment_list=_attachment_list(mail.attachments),
            order=order_id,
            suggested_order=decision.suggested_order_id,
            inbox_state=ReceivedMail.INBOX_OPEN if inbox else "",
        )

    def _act(
        self,
        row: ReceivedMail,
        ref: MessageRef,
        source: Path,
        mail: InboundMail,
        decision: Decision,
        links: list[Path],
    ) -> list[int]:
        """What the decision means for the database (and the links it needs)."""
        if decision.action == matching.TO_ORDER:
            order = Order.get_by_id(decision.order_id)
            message = _message(order, row, mail)
            _keep_images(row, mail)
            files = place_attachments(self.settings, message, row, mail.print_attachments, links)
            names = [file.display_name for file in files]
            notify(
                CUSTOMER_MESSAGE,
                order=order,
                detail=f"{message.sender}: {excerpt(mail.text_body or mail.subject)}"
                + (f" [{', '.join(names)}]" if names else ""),
            )
            return [file.id for file in files]
        if decision.action == matching.RECORD_ONLY and decision.order_id:
            OrderMessage.create(
                order=decision.order_id,
                author=OrderMessage.AUTHOR_CUSTOMER,
                source=OrderMessage.SOURCE_AUTO_REPLY,
                internal=True,
                sender=_sender_text(mail),
                body=mail.text_body or mail.subject,
                received_mail=row,
            )
        elif decision.action == matching.TO_INBOX:
            _keep_images(row, mail)
            held = held_dir(self.settings) / f"{self.mailbox.name}-{ref.uidvalidity}-{ref.uid}.eml"
            _link(source, held, links)
            row.held_path = str(held)
            row.save()
        elif decision.action == matching.BOUNCE:
            row.note = "\n".join(part for part in (row.note, _record_bounces(mail)) if part)
            row.save()
        return []

    def _drop_links_unless_same_mail(self, ref: MessageRef, links: list[Path]) -> None:
        """Remove this attempt's links, unless another reader recorded this very message:
        its links have the same names and the same bytes."""
        same = ReceivedMail.select().where(
            (ReceivedMail.mailbox == self.mailbox.name)
            & (ReceivedMail.uidvalidity == ref.uidvalidity)
            & (ReceivedMail.uid == ref.uid)
        )
        if links and not same.exists():
            for path in links:
                path.unlink(missing_ok=True)

    # -- a mail too large to fetch ------------------------------------------------------------

    def _record_unfetched(self, ref: MessageRef, headers: bytes, why: str) -> _Recorded:
        """Step 6 for a mail over ``max_mail_bytes``: its headers go to the staff inbox."""
        message = BytesHeaderParser(policy=default_policy).parsebytes(headers)
        sender = next(iter(header_addresses(message, "From")), None)
        subject = header_text(message, "Subject")
        message_id = ref.message_id or (
            f"<{self.mailbox.name}.{ref.uidvalidity}.{ref.uid}@{TOO_LARGE_DOMAIN}>"
        )
        probe = _headers_only(message, message_id, sender, subject)
        suggested = decide(probe)
        where = (
            f"moved to {self.mailbox.processed_folder!r}"
            if self.mailbox.processed_folder
            else "left in the mailbox, flagged"
        )
        try:
            with write_transaction():
                row = ReceivedMail.create(
                    mailbox=self.mailbox.name,
                    uidvalidity=ref.uidvalidity,
                    uid=ref.uid,
                    message_id=storable_message_id(message_id),
                    sender=sender.address[:1000] if sender else "",
                    sender_name=sender.display_name if sender else "",
                    subject=subject,
                    sent_at=_naive_utc(header_date(message)),
                    size=ref.size,
                    action=matching.TO_INBOX,
                    reason="mail too large to fetch",
                    note=f"{why}: not imported; {where} on the mail server",
                    suggested_order=suggested.order_id or suggested.suggested_order_id,
                    inbox_state=ReceivedMail.INBOX_OPEN,
                )
        except IntegrityError:
            return _Recorded(None, [], [])
        log.info("mailbox %s: UID %d too large (%s): staff inbox", self.mailbox.name, ref.uid, why)
        return _Recorded(row, [], [])


def place_attachments(
    settings: Settings,
    message: OrderMessage,
    row: ReceivedMail,
    attachments: Iterable[Attachment],
    links: list[Path],
) -> list[OrderFile]:
    """An ``OrderFile`` in the order's Eingehend per staged attachment, waiting for its scan.

    Inside the caller's transaction. Each file's bytes are hard-linked from the mail's
    work directory into the staging area under a key derived from the mail and the
    attachment's position, so a repeated attempt uses (and replaces) the same name.
    """
    files = []
    now = utcnow()
    for attachment in attachments:
        if attachment.path is None:
            continue
        if attachment.size == 0:
            row.note = "\n".join(
                part
                for part in (row.note, f"empty attachment {attachment.file_name} left out")
                if part
            )
            row.save()
            continue
        file = OrderFile.create(
            order=message.order_id,
            folder=FOLDER_INCOMING,
            display_name=attachment.file_name,
            size=attachment.size,
            received_bytes=attachment.size,
            sha256=attachment.sha256,
            state=OrderFile.STATE_SCANNING,
            upload_key=_upload_key(row, attachment),
            received_at=now,
        )
        _link(attachment.path, staging_path(settings, file), links)
        MessageFile.create(message=message, file=file)
        FileEvent.create(file=file, kind=EVENT_FROM_MAIL, detail=f"{row.sender} {row.message_id}")
        files.append(file)
    return files


def _upload_key(row: ReceivedMail, attachment: Attachment) -> str:
    """The same key for the same attachment of the same message, unguessable without it."""
    seed = f"{row.mailbox}\0{row.uidvalidity}\0{row.uid}\0{attachment.index}\0{row.sha256}"
    return "mail-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _link(source: Path, target: Path, links: list[Path]) -> None:
    """Hard-link ``source`` to ``target``, replacing what an interrupted attempt left there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        target.unlink()
        os.link(source, target)
    links.append(target)


def _message(order: Order, row: ReceivedMail, mail: InboundMail) -> OrderMessage:
    return OrderMessage.create(
        order=order,
        author=OrderMessage.AUTHOR_CUSTOMER,
        source=OrderMessage.SOURCE_MAIL,
        sender=_sender_text(mail),
        body=mail.text_body,
        received_mail=row,
    )


def _sender_text(mail: InboundMail) -> str:
    if mail.sender is None:
        return ""
    name, address = mail.sender.display_name, mail.sender.address
    return f"{name} <{address}>" if name else address


def _keep_images(row: ReceivedMail, mail: InboundMail) -> None:
    """Signature images and logos stay with the mail (shown with it, never print data)."""
    inline = [item for item in mail.attachments if item.inline and item.path is not None]
    for item in inline[:MAX_INLINE_IMAGES]:
        MessageImage.create(
            received_mail=row,
            content_id=item.content_id,
            file_name=item.file_name,
            content_type=item.content_type,
            content=item.path.read_bytes(),
        )
    if len(inline) > MAX_INLINE_IMAGES:
        row.note = "\n".join(
            part
            for part in (row.note, f"{len(inline) - MAX_INLINE_IMAGES} inline images left out")
            if part
        )
        row.save()


def _record_bounces(mail: InboundMail) -> str:
    """Put the report's permanently failed recipients on the bounce list; say what was done."""
    hard, other = [], []
    for status in mail.delivery_statuses:
        if not status.failed:
            continue
        # A report without an SMTP code: its enhanced status (5.x.x) stands for a 550.
        code = status.smtp_code or (450 if status.status.startswith("4") else 550)
        answer = " ".join(part for part in (status.status, status.diagnostic) if part)
        if is_hard_bounce(code, answer):
            record_bounce(status.recipient, f"delivery report {mail.message_id}: {answer or code}")
            hard.append(status.recipient)
        else:
            other.append(f"{status.recipient} ({answer or code})")
    parts = []
    if hard:
        parts.append("on the bounce list: " + ", ".join(hard))
    if other:
        parts.append("not a permanent failure: " + ", ".join(other))
    return "; ".join(parts)


def _attachment_list(attachments: Iterable[Attachment]) -> str:
    return "\n".join(
        f"{item.file_name}\t{item.size}:{'inline' if item.inline else ''}" for item in attachments
    )


def _naive_utc(moment: datetime | None) -> datetime | None:
    """A Date header's time as stored: naive UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _headers_only(
    headers: Message, message_id: str, sender: MailAddress | None, subject: str
) -> InboundMail:
    """An InboundMail of headers alone, to suggest an order for a mail too large to fetch."""
    return InboundMail(
        message_id=message_id,
        message_id_synthesised=False,
        in_reply_to=message_ids(header_text(headers, "In-Reply-To")),
        references=message_ids(header_text(headers, "References")),
        sender=sender,
        to=(),
        cc=(),
        reply_to=(),
        subject=subject,
        date=None,
        auto_reply=False,
        auto_reply_reason="",
        delivery_report=False,
        delivery_statuses=(),
        text_body="",
        quoted_history="",
        html_body="",
        attachments=(),
        over_limits="",
        problems=(),
        size=0,
        sha256="",
    )


def _note_imported(name: str, count: int) -> None:
    now = utcnow()
    with write_transaction():
        state, _created = MailboxState.get_or_create(name=name)
        MailboxState.update(imported=MailboxState.imported + count, imported_at=now).where(
            MailboxState.id == state.id
        ).execute()
