"""The worker step that turns pending notifications into mails, a burst at a time.

Pending notifications of one event for one customer and order form a batch;
once its oldest is ``notification_batch_seconds`` old, the batch becomes one
mail per addressee listing every event in it (as ProjectSend's digester does).
Events whose cause has gone meanwhile (a deleted file) drop out; an empty or
switched-off batch sends nothing. Marking the batch done and queueing its mails
happen in one transaction, so a crash or a second worker never mails it twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import fn

from shared.accounts.logins import customer_may_upload
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.events import (
    FILE_FINAL,
    LINK_REQUESTED,
    LOGIN_CREATED,
    PROOF_DECIDED,
    UPLOAD_RECEIVED,
    UPLOAD_REQUEST,
)
from shared.links import PortalLinks
from shared.mail.templates import TemplateProblem, template_context
from shared.models import Customer, Notification, NotificationRule, Order, OrderFile, OutboxMail
from shared.notify.compose import language_for, order_values, queue_for, render_for
from shared.notify.recipients import resolve
from shared.notify.rules import extra_staff_of, rule_for

log = logging.getLogger(__name__)

# Per language, how one event is listed in the mail.
_LABELS = {
    "de": {
        "ticket": "Ticket",
        "sent_to": "Link verschickt an",
        "version": "Version",
        "approved": "freigegeben",
        "rejected": "abgelehnt",
        "comment": "Anmerkung",
    },
    "en": {
        "ticket": "Ticket",
        "sent_to": "Link sent to",
        "version": "version",
        "approved": "approved",
        "rejected": "rejected",
        "comment": "Comment",
    },
    "fr": {
        "ticket": "Ticket",
        "sent_to": "Lien envoyé à",
        "version": "version",
        "approved": "bon à tirer donné",
        "rejected": "refusée",
        "comment": "Commentaire",
    },
}


@dataclass(frozen=True)
class BatchKey:
    kind: str
    customer_id: int | None
    order_id: int | None


def due_batches(settings: Settings, now: datetime) -> list[BatchKey]:
    """Batches whose oldest pending notification has waited the batch time."""
    cutoff = now - timedelta(seconds=settings.notifications.notification_batch_seconds)
    query = (
        Notification.select(Notification.kind, Notification.customer, Notification.order)
        .where(Notification.processed_at.is_null())
        .group_by(Notification.kind, Notification.customer, Notification.order)
        .having(fn.MIN(Notification.created_at) <= cutoff)
    )
    return [BatchKey(row.kind, row.customer_id, row.order_id) for row in query]


def send_due_notifications(
    settings: Settings, links: PortalLinks, now: datetime | None = None
) -> int:
    """Queue the mails of every due batch; returns how many mails were queued."""
    now = now or utcnow()
    queued = 0
    for key in due_batches(settings, now):
        with write_transaction():
            queued += _process(settings, links, key, now)
    return queued


def _null_or(field, value):
    return field.is_null() if value is None else field == value


def _process(settings: Settings, links: PortalLinks, key: BatchKey, now: datetime) -> int:
    """Mark one batch done and queue its mails; returns how many were queued."""
    items = list(
        Notification.select()
        .where(
            Notification.processed_at.is_null(),
            Notification.kind == key.kind,
            _null_or(Notification.customer, key.customer_id),
            _null_or(Notification.order, key.order_id),
            Notification.created_at <= now,
        )
        .order_by(Notification.created_at, Notification.id)
    )
    if not items:
        return 0  # another worker took this batch
    customer = Customer.get_by_id(key.customer_id) if key.customer_id else None
    order = Order.get_by_id(key.order_id) if key.order_id else None
    rule = rule_for(key.kind, customer)
    live = [item for item in items if _still_relevant(settings, item)]
    queued = []
    if not rule.active:
        outcome = "event switched off"
    elif not live:
        outcome = "nothing left to send"
    else:
        try:
            queued = _mail_batch(settings, links, rule, customer, order, live)
            outcome = "mailed to " + ", ".join(m.recipients for m in queued) if queued else ""
            outcome = outcome or "no usable recipient"
        except TemplateProblem as exc:
            # Marked done anyway: retrying every minute would not repair the template.
            log.error("notification %s not mailed: %s", key.kind, exc)
            outcome = str(exc)
    Notification.update(processed_at=now, outcome=outcome[:1000]).where(
        Notification.id.in_([item.id for item in items])
    ).execute()
    return len(queued)


def _still_relevant(settings: Settings, item: Notification) -> bool:
    """Whether the event still means something now that the batch goes out."""
    if item.kind == UPLOAD_REQUEST:
        mode = settings.workflow.portal_reminder_email_automatically
        wanted = (mode == 1 and item.ticket_id is None) or (mode == 2 and item.ticket_id)
        # Only customers who can upload are asked to, and only into an open order.
        if item.order_id is not None and not item.order.is_open:
            return False
        return bool(wanted and item.customer_id and customer_may_upload(item.customer))
    if item.kind in (UPLOAD_RECEIVED, FILE_FINAL):
        return item.file_id is not None and item.file.state == OrderFile.STATE_CLEAN
    return True


def _proof_line(item: Notification, labels: dict[str, str]) -> str:
    """``- Umschlag.pdf (Version 2): freigegeben`` and the comment on the next line."""
    try:
        detail = json.loads(item.detail)
    except ValueError:
        return f"- {item.detail}"
    line = (
        f"- {detail.get('file', '')} ({labels['version']} {detail.get('version', '')}): "
        f"{labels.get(detail.get('decision', ''), detail.get('decision', ''))}"
    )
    if detail.get("comment"):
        line += f"\n  {labels['comment']}: {detail['comment']}"
    return line


def _describe(item: Notification, language: str) -> str:
    labels = _LABELS.get(language, _LABELS["de"])
    if item.kind == PROOF_DECIDED:
        return _proof_line(item, labels)
    if item.file_id is not None:
        file = item.file
        line = f"- {file.display_name} ({_size(file.size, language)})"
        if file.signature:
            line += f": {file.signature}"
        return line
    if item.ticket_id is not None:
        ticket = item.ticket
        title = f": {ticket.title}" if ticket.title else ""
        return f"- {labels['ticket']} {ticket.ticket_no}{title}"
    if item.kind in (LOGIN_CREATED, LINK_REQUESTED) and item.detail:
        return f"- {labels['sent_to']} {item.detail}"
    if item.kind == UPLOAD_REQUEST:
        return ""
    return f"- {item.detail}" if item.detail else ""


def _size(size: int, language: str) -> str:
    value, unit = float(size), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    text = f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
    return text.replace(".", ",") if language in ("de", "fr") else text


def _mail_batch(
    settings: Settings,
    links: PortalLinks,
    rule: NotificationRule,
    customer: Customer | None,
    order: Order | None,
    items: list[Notification],
) -> list[OutboxMail]:
    """One mail per addressee of ``rule``, each listing every item."""
    addressees = resolve(rule, customer, order, extra_staff_of(rule))
    first_ticket = next((item.ticket for item in items if item.ticket_id), None)
    # Everything is rendered before anything is queued: a broken template queues nothing.
    mails = []
    for addressee in addressees:
        language = language_for(settings, addressee, customer)
        lines = [line for line in (_describe(item, language) for item in items) if line]
        values = order_values(links, order, customer, language, addressee.customer_side)
        values.update(event_list="\n".join(lines), event_count=str(len(items)))
        if first_ticket is not None:
            values.update(ticket_no=first_ticket.ticket_no, ticket_title=first_ticket.title)
        context = template_context(**values)
        mails.append(
            (addressee, render_for(addressee, rule.template_name, language, context, order))
        )
    queued = []
    for addressee, mail in mails:
        row = queue_for(
            settings,
            addressee,
            mail,
            kind=f"notify-{rule.kind}",
            customer=customer,
            order=order,
            idempotency_key=f"notify:{items[0].id}:{addressee.email.lower()}",
        )
        if row is not None:
            queued.append(row)
    return queued
