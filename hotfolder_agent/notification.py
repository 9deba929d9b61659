"""XML job notifications: one per order batch, written only after the batch's files are in place.

Delivered files of an order that finish within ``batch_window_seconds`` of the first
one share a notification (0: one per file). A ``JobNotification`` row is created and
the deliveries are tied to it before the XML is written, so a restart rewrites the
same file name instead of emitting a second notification. The XML is written to a
hidden temporary name, fsynced and renamed; consumers see it whole or not at all.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path

import shared
from hotfolder_agent.claims import holder_is_gone
from hotfolder_agent.context import AgentContext
from hotfolder_agent.fsutil import sync_directory
from hotfolder_agent.seams import pause_at
from shared.clock import utcnow
from shared.customers import customer_recipient, find_contact
from shared.db import write_transaction
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail
from shared.models import Customer, Delivery, JobNotification, MailAttachment, Order, OrderFile

log = logging.getLogger(__name__)

STEP_BEFORE_XML = "before_xml"
SCHEMA_VERSION = "1"
SCHEMA_PATH = Path(shared.__file__).resolve().parent / "data" / "job-notification.xsd"
MAIL_KIND = "job_notification"

# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _timestamp(moment: datetime) -> str:
    """UTC as xs:dateTime: ``2026-05-04T12:30:00Z``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def _add(parent: ET.Element, tag: str, value: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _clean(value)
    return element


def _pending_deliveries() -> list[Delivery]:
    return list(
        Delivery.select(Delivery, OrderFile)
        .join(OrderFile)
        .where((Delivery.state == Delivery.STATE_DONE) & Delivery.notification.is_null())
        .order_by(Delivery.done_at, Delivery.id)
    )


def due_batches(window_seconds: float, now: datetime, force: bool = False) -> list[list[Delivery]]:
    """Delivered files without a notification, grouped into the batches that are due."""
    by_order: dict[int, list[Delivery]] = defaultdict(list)
    for row in _pending_deliveries():
        by_order[row.file.order_id].append(row)
    if window_seconds == 0:
        return [[row] for rows in by_order.values() for row in rows]
    window = timedelta(seconds=window_seconds)
    return [rows for rows in by_order.values() if force or rows[0].done_at + window <= now]


def next_due(window_seconds: float) -> datetime | None:
    """When the next batch becomes due, or None if nothing waits."""
    rows = _pending_deliveries()
    if not rows:
        return None
    return min(row.done_at for row in rows) + timedelta(seconds=window_seconds)


def open_notification(ctx: AgentContext, batch: list[Delivery]) -> JobNotification | None:
    """Create the notification row and tie the batch to it (files another agent took are left)."""
    order = Order.get_by_id(batch[0].file.order_id)
    with write_transaction():
        notification = JobNotification.create(order=order, claimed_by=ctx.agent_id)
        notification.file_name = f"{order.project_no}_{notification.id:06d}.xml"
        notification.save(only=[JobNotification.file_name])
        tied = (
            Delivery.update(notification=notification)
            .where(Delivery.id.in_([row.id for row in batch]) & Delivery.notification.is_null())
            .execute()
        )
        if not tied:
            notification.delete_instance()
            return None
    return notification


def unwritten(ctx: AgentContext) -> list[JobNotification]:
    """Notifications whose XML is not written yet and that no live agent is writing."""
    return [
        notification
        for notification in JobNotification.select()
        .where(JobNotification.written_at.is_null())
        .order_by(JobNotification.id)
        if notification.claimed_by == ctx.agent_id
        or holder_is_gone(notification.claimed_by, ctx.agent_id, ctx.stale_after)
    ]


def _contact(order: Order) -> tuple[str, str] | None:
    """Name and address of the order's contact (chosen, else favorite, else the customer)."""
    recipient = customer_recipient(order.customer, order)
    if recipient is None:
        return None
    contact = find_contact(order.customer, recipient.email)
    return (contact.name if contact else order.customer.name), recipient.email


def build_xml(ctx: AgentContext, notification: JobNotification) -> bytes:
    """The notification as UTF-8 XML (see shared/data/job-notification.xsd)."""
    order = (
        Order.select(Order, Customer).join(Customer).where(Order.id == notification.order_id).get()
    )
    deliveries = list(
        Delivery.select(Delivery, OrderFile)
        .join(OrderFile)
        .where(Delivery.notification == notification)
        .order_by(Delivery.done_at, Delivery.id)
    )
    root = ET.Element(
        "jobNotification",
        schemaVersion=SCHEMA_VERSION,
        id=str(notification.id),
        created=_timestamp(notification.created_at),
    )
    order_element = ET.SubElement(root, "order")
    _add(order_element, "number", order.project_no)
    _add(order_element, "jobDescription", order.job_description)
    if order.due_date:
        due = order.due_date
        _add(order_element, "dueDate", due.isoformat() if isinstance(due, date) else due)
    customer = ET.SubElement(order_element, "customer")
    _add(customer, "number", order.customer.customer_no)
    _add(customer, "name", order.customer.name)
    contact = _contact(order)
    if contact is not None:
        contact_element = ET.SubElement(order_element, "contact")
        _add(contact_element, "name", contact[0])
        _add(contact_element, "email", contact[1])
    hotfolder = ctx.layout.hotfolder_dir(order.customer.customer_no, order.project_no)
    _add(order_element, "hotfolder", hotfolder)
    files = ET.SubElement(root, "files", count=str(len(deliveries)))
    for delivery in deliveries:
        file = delivery.file
        element = ET.SubElement(files, "file")
        _add(element, "name", file.display_name)
        _add(element, "storedName", file.stored_name)
        _add(element, "size", file.size)
        _add(element, "sha256", file.sha256)
        _add(element, "uploadedAt", _timestamp(file.received_at or file.created_at))
        _add(element, "deliveredAt", _timestamp(delivery.done_at))
        _add(element, "hotfolderPath", delivery.hotfolder_path)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _write_atomically(directory: Path, name: str, content: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    temp = directory / f".{name}.tmp"
    with temp.open("wb") as writer:
        writer.write(content)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(temp, target)  # same directory: atomic, and the name is ours alone
    sync_directory(directory)
    return target


def _mail(ctx: AgentContext, notification: JobNotification, content: bytes, count: int) -> None:
    """Queue the internal mail with the XML attached (inside the caller's transaction)."""
    order = notification.order
    subject = f"Job notification {order.project_no}: {count} file(s) in the hotfolder"
    text = (
        f"Order {order.project_no} ({order.customer.name}, {order.customer.customer_no}): "
        f"{count} file(s) delivered to the hotfolder.\n"
        f"The job notification {notification.file_name} is attached.\n"
    )
    html = f"<p>{escape(text).replace(chr(10), '<br>')}</p>"
    mail = queue_mail(
        kind=MAIL_KIND,
        sender=ctx.settings.smtp.email,
        recipients=[ctx.settings.agent.notify_email],
        mail=RenderedMail(subject=subject, text=text, html=html),
        customer=order.customer,
        order=order,
        idempotency_key=f"job-notification-{notification.id}",
    )
    MailAttachment.create(
        mail=mail,
        file_name=notification.file_name,
        content_type="application/xml",
        content=content,
    )
    notification.mail = mail


def write_notification(ctx: AgentContext, notification: JobNotification) -> Path:
    """Write the XML (again, after a crash: same name, same content) and record it."""
    pause_at(STEP_BEFORE_XML)
    content = build_xml(ctx, notification)
    path = _write_atomically(ctx.settings.agent.notification_dir, notification.file_name, content)
    count = notification.deliveries.count()
    mailed = False
    with write_transaction():
        written = (
            JobNotification.update(written_at=utcnow())
            .where((JobNotification.id == notification.id) & JobNotification.written_at.is_null())
            .execute()
        )
        if written and ctx.settings.agent.notify_email:
            _mail(ctx, notification, content, count)
            notification.save(only=[JobNotification.mail])
            mailed = True
    if mailed:
        ctx.tasks.deliver_soon()
    log.info(
        "order=%s file=%s action=notified files=%d",
        notification.order.project_no,
        notification.file_name,
        count,
    )
    return path


def flush(ctx: AgentContext, now: datetime | None = None, force: bool = False) -> list[Path]:
    """Write what is due: interrupted notifications first, then new batches."""
    now = now or utcnow()
    written = [write_notification(ctx, notification) for notification in unwritten(ctx)]
    for batch in due_batches(ctx.settings.agent.batch_window_seconds, now, force):
        notification = open_notification(ctx, batch)
        if notification is not None:
            written.append(write_notification(ctx, notification))
    return written
