"""Deliver the outbox: claim due mails, send them over one SMTP connection, record the outcome.

Each mail is claimed (status SENDING, ``next_attempt_at`` = claim time) right before
it is sent and recorded right after. A row left in SENDING by a worker that stopped
in between may or may not have reached the server, so it is never resent blindly:
it becomes UNKNOWN for staff to check and retry (nothing is ever sent twice).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from shared.clock import utcnow
from shared.config import SmtpSettings
from shared.db import write_transaction
from shared.mail.addresses import normalise
from shared.mail.bounces import bounced, is_hard_bounce, record_bounce
from shared.models import MailAttachment, OutboxMail

log = logging.getLogger(__name__)

# A row is in SENDING only while its one SMTP transaction runs (seconds): older means
# the worker stopped between handing the mail to the server and recording it.
STUCK_AFTER = timedelta(minutes=15)
UNKNOWN_REASON = (
    "delivery unknown: the worker stopped while sending; check with the recipient, "
    "then retry or leave it"
)


@dataclass
class DeliveryReport:
    """What one delivery run did; ``error`` is the connection-level problem, if any."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    error: str = ""
    unknown: int = 0
    # Which rows this run claimed, for showing staff what "send now" did.
    mail_ids: list[int] = field(default_factory=list, compare=False, repr=False)


class _ConnectionLost(Exception):
    """The SMTP connection is gone; the remaining claimed mails must wait."""


def open_smtp(smtp: SmtpSettings) -> smtplib.SMTP:
    """Connect to the configured server, secure the connection and log in."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    if smtp.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            smtp.server, smtp.port, timeout=smtp.timeout_seconds, context=context
        )
    else:
        client = smtplib.SMTP(smtp.server, smtp.port, timeout=smtp.timeout_seconds)
    try:
        if smtp.security == "starttls":
            client.ehlo()
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password)
    except BaseException:
        client.close()
        raise
    return client


def deliver_due(
    smtp: SmtpSettings, now: datetime | None = None, limit: int = 200
) -> DeliveryReport:
    """Send every due outbox mail (at most ``limit``) over one SMTP connection."""
    now = now or utcnow()
    report = DeliveryReport()
    report.unknown = _mark_unknown(now)
    due = _due(now, limit)
    client: smtplib.SMTP | None = None
    try:
        while due:
            row = due.pop(0)
            # One claim per mail, right before it is sent: a row in SENDING is always
            # the one mail whose SMTP transaction may have started.
            if not _claim(row, now):
                continue
            report.mail_ids.append(row.id)
            if not _deliverable(row, report):
                continue
            if client is None:
                try:
                    client = open_smtp(smtp)
                except smtplib.SMTPAuthenticationError as exc:
                    report.error = f"login as {smtp.username} failed: {_answer(exc)}"
                except (OSError, smtplib.SMTPException) as exc:
                    report.error = f"cannot connect to {smtp.server}:{smtp.port}: {_reason(exc)}"
                if client is None:
                    _wait_all([row, *due], now, smtp, report)
                    return report
            try:
                _send_one(client, row, now, smtp, report)
            except _ConnectionLost as exc:
                report.error = f"connection to {smtp.server}:{smtp.port} lost: {exc}"
                _wait_all(due, now, smtp, report)
                return report
    finally:
        if client is not None:
            _quit(client)
    return report


def _mark_unknown(now: datetime) -> int:
    """Rows a stopped worker left in SENDING: maybe sent, so never resent without staff."""
    with write_transaction():
        stuck = (
            OutboxMail.update(status=OutboxMail.STATUS_UNKNOWN, last_error=UNKNOWN_REASON)
            .where(
                OutboxMail.status == OutboxMail.STATUS_SENDING,
                OutboxMail.next_attempt_at < now - STUCK_AFTER,
            )
            .execute()
        )
    if stuck:
        log.warning("%d mails left in sending by a stopped worker: delivery unknown", stuck)
    return stuck


def _due(now: datetime, limit: int) -> list[OutboxMail]:
    """Up to ``limit`` pending rows whose time has come, oldest first."""
    return list(
        OutboxMail.select()
        .where(
            OutboxMail.status == OutboxMail.STATUS_PENDING,
            OutboxMail.next_attempt_at <= now,
        )
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(limit)
    )


def _claim(row: OutboxMail, now: datetime) -> bool:
    """Mark ``row`` SENDING with the claim time; False if another worker got it first."""
    with write_transaction():
        # The conditions make the claim exact even where the select did not lock
        # (PostgreSQL): a row another worker took or already deferred updates nothing.
        taken = (
            OutboxMail.update(status=OutboxMail.STATUS_SENDING, next_attempt_at=now)
            .where(
                OutboxMail.id == row.id,
                OutboxMail.status == OutboxMail.STATUS_PENDING,
                OutboxMail.next_attempt_at <= now,
            )
            .execute()
        )
    if taken:
        row.status = OutboxMail.STATUS_SENDING
    return bool(taken)


def _deliverable(row: OutboxMail, report: DeliveryReport) -> bool:
    """False (and the row failed) when every recipient is on the bounce list."""
    recipients = _recipients(row)
    if recipients and len(bounced(recipients)) < len({normalise(a) for a in recipients}):
        return True
    _fail(row, "not sent: every recipient is on the bounce list", report)
    return False


def build_message(row: OutboxMail) -> EmailMessage:
    """The MIME message for an outbox row: text and HTML alternatives, UTF-8, attachments."""
    message = EmailMessage()
    message["From"] = row.sender
    message["To"] = ", ".join(_recipients(row))
    if row.reply_to:
        message["Reply-To"] = row.reply_to
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC))
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"
    # quoted-printable keeps the body 7-bit, so servers without 8BITMIME take it too.
    message.set_content(row.text_body, charset="utf-8", cte="quoted-printable")
    message.add_alternative(row.html_body, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in _attachments(row):
        maintype, _slash, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            bytes(attachment.content),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.file_name,
        )
    return message


def _attachments(row: OutboxMail) -> list[MailAttachment]:
    if row.id is None:
        return []
    return list(
        MailAttachment.select().where(MailAttachment.mail == row.id).order_by(MailAttachment.id)
    )


def _send_one(
    client: smtplib.SMTP, row: OutboxMail, now: datetime, smtp: SmtpSettings, report: DeliveryReport
) -> None:
    """Send one claimed row and record the outcome; raise _ConnectionLost if the link died."""
    try:
        message = build_message(row)
    except (ValueError, TypeError) as exc:
        _fail(row, f"cannot build the message: {exc}", report)
        return
    envelope_to = [parseaddr(address)[1] or address for address in _recipients(row)]
    skipped = bounced(envelope_to)
    envelope_to = [address for address in envelope_to if normalise(address) not in skipped]
    envelope_from = parseaddr(row.sender)[1] or row.sender
    try:
        refused = client.send_message(message, from_addr=envelope_from, to_addrs=envelope_to)
    except smtplib.SMTPRecipientsRefused as exc:
        _record_hard_bounces(exc.recipients)
        answers = _refusals(exc.recipients)
        if all(code >= 500 for code, _ in exc.recipients.values()):
            _fail(row, f"all recipients refused: {answers}", report)
        else:
            _retry(row, f"recipients refused for now: {answers}", now, smtp, report)
        return
    except smtplib.SMTPServerDisconnected as exc:
        _retry(row, f"connection lost: {_reason(exc)}", now, smtp, report)
        raise _ConnectionLost(_reason(exc)) from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            _fail(row, _answer(exc), report)
            return
        _retry(row, _answer(exc), now, smtp, report)
        if exc.smtp_code == 421:
            # 421 means the server is closing the connection.
            raise _ConnectionLost(_answer(exc)) from exc
        return
    except smtplib.SMTPNotSupportedError as exc:
        # e.g. a non-ASCII address to a server without SMTPUTF8: retrying won't help.
        _fail(row, str(exc), report)
        return
    except smtplib.SMTPException as exc:
        _retry(row, _reason(exc), now, smtp, report)
        return
    except OSError as exc:
        _retry(row, f"connection lost: {_reason(exc)}", now, smtp, report)
        raise _ConnectionLost(_reason(exc)) from exc

    _record_hard_bounces(refused)
    not_sent = _refusals(refused)
    if skipped:
        not_sent = "; ".join(
            filter(None, [not_sent, *(f"{a}: on the bounce list" for a in skipped)])
        )
    with write_transaction():
        OutboxMail.update(
            status=OutboxMail.STATUS_SENT,
            sent_at=now,
            attempts=OutboxMail.attempts + 1,
            last_error="",
            refused_recipients=not_sent,
        ).where(OutboxMail.id == row.id).execute()
    report.sent += 1
    if refused:
        log.warning("mail %s sent, but refused for %s", row.message_id, _refusals(refused))
    else:
        log.info("mail %s sent", row.message_id)


def _fail(row: OutboxMail, reason: str, report: DeliveryReport) -> None:
    """Mark the row FAILED for good; staff see it with the reason."""
    with write_transaction():
        OutboxMail.update(
            status=OutboxMail.STATUS_FAILED,
            attempts=OutboxMail.attempts + 1,
            last_error=reason,
        ).where(OutboxMail.id == row.id).execute()
    report.failed += 1
    log.warning("mail %s failed: %s", row.message_id, reason)


def _retry(
    row: OutboxMail, reason: str, now: datetime, smtp: SmtpSettings, report: DeliveryReport
) -> None:
    """A temporary failure of this mail: try again later, or give up after max_attempts."""
    attempts = row.attempts + 1
    if attempts >= smtp.max_attempts:
        _fail(row, f"gave up after {attempts} attempts: {reason}", report)
        return
    _defer(row, attempts, reason, now, smtp)
    report.deferred += 1
    log.warning("mail %s deferred (attempt %d): %s", row.message_id, attempts, reason)


def _wait_all(
    rows: list[OutboxMail], now: datetime, smtp: SmtpSettings, report: DeliveryReport
) -> None:
    """Put rows that were not tried back to pending; the server's problem never fails them."""
    reason = report.error or "not sent: delivery run aborted"
    while rows:
        row = rows.pop(0)
        _defer(row, row.attempts + 1, reason, now, smtp)
        report.deferred += 1
        log.warning("mail %s deferred: %s", row.message_id, reason)


def _defer(row: OutboxMail, attempts: int, reason: str, now: datetime, smtp: SmtpSettings) -> None:
    """Store the row as pending again, due after the backoff for ``attempts``."""
    with write_transaction():
        # Only from the state this worker knows: a pending row that another worker
        # claimed meanwhile must not be put back (it would be sent twice).
        OutboxMail.update(
            status=OutboxMail.STATUS_PENDING,
            attempts=attempts,
            next_attempt_at=now + backoff(smtp, attempts),
            last_error=reason,
        ).where(OutboxMail.id == row.id, OutboxMail.status == row.status).execute()
    row.status = OutboxMail.STATUS_PENDING


def _record_hard_bounces(refused: dict[str, tuple[int, bytes]]) -> None:
    """Put addresses the server called unknown on the bounce list."""
    hard = {
        address: answer
        for address, answer in refused.items()
        if is_hard_bounce(answer[0], _text(answer[1]))
    }
    if not hard:
        return
    with write_transaction():
        for address, (code, answer) in hard.items():
            record_bounce(address, f"{code} {_text(answer)}")


def backoff(smtp: SmtpSettings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling, capped at retry_max."""
    # The exponent is capped so a long outage cannot build an absurdly large number.
    exponent = min(max(attempts - 1, 0), 32)
    seconds = min(smtp.retry_first_seconds * 2**exponent, smtp.retry_max_seconds)
    return timedelta(seconds=seconds)


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye politely, but never let a dead connection raise."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _recipients(row: OutboxMail) -> list[str]:
    return [address.strip() for address in row.recipient_list if address.strip()]


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    """``{"a@x": (550, b"no such user")}`` as ``a@x: 550 no such user``."""
    return "; ".join(
        f"{address}: {code} {_text(answer)}" for address, (code, answer) in refused.items()
    )


def _answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(exc)
    return str(exc) or type(exc).__name__


def _text(answer: bytes | str) -> str:
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", errors="replace")
    return " ".join(answer.split())
