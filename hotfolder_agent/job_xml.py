"""The XML of job notifications (see shared/data/job-notification.xsd), built for many at once.

``documents`` reads what a set of notifications needs with a few queries (their
orders and customers, all their deliveries, each order's contact) and renders
each one; names and texts are carried exactly, characters XML cannot hold at all
become U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import shared
from hotfolder_agent.context import AgentContext
from shared.accounts.customers import find_contact
from shared.models import Customer, Delivery, JobNotification, Order, OrderFile
from shared.notify.recipients import customer_address

SCHEMA_VERSION = "1"
SCHEMA_PATH = Path(shared.__file__).resolve().parent / "data" / "job-notification.xsd"
_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"
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


def _contact(order: Order) -> tuple[str, str] | None:
    """Name and address of the order's contact (chosen, else favorite, else the customer)."""
    recipient = customer_address(order.customer, order)
    if recipient is None:
        return None
    contact = find_contact(order.customer, recipient.email)
    return (contact.name if contact else order.customer.name), recipient.email


@dataclass(frozen=True)
class Document:
    """A notification with its XML, and how many files it lists."""

    notification: JobNotification
    content: bytes
    count: int


def documents(ctx: AgentContext, notifications: list[JobNotification]) -> list[Document]:
    """The XML of each notification, from two queries for all of them (and one per order)."""
    ids = [notification.id for notification in notifications]
    orders = {
        order.id: order
        for order in Order.select(Order, Customer)
        .join(Customer)
        .where(Order.id.in_({notification.order_id for notification in notifications}))
    }
    deliveries: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in (
        Delivery.select(Delivery, OrderFile)
        .join(OrderFile)
        .where(Delivery.notification.in_(ids))
        .order_by(Delivery.done_at, Delivery.id)
    ):
        deliveries[delivery.notification_id].append(delivery)
    contacts = {order_id: _contact(order) for order_id, order in orders.items()}
    built = []
    for notification in notifications:
        order = orders[notification.order_id]
        notification.order = order  # for the log line and the mail, without another query
        rows = deliveries[notification.id]
        content = _xml(ctx, notification, order, contacts[order.id], rows)
        built.append(Document(notification, content, len(rows)))
    return built


def build_xml(ctx: AgentContext, notification: JobNotification) -> bytes:
    """The notification as UTF-8 XML (see shared/data/job-notification.xsd)."""
    return documents(ctx, [notification])[0].content


def _xml(
    ctx: AgentContext,
    notification: JobNotification,
    order: Order,
    contact: tuple[str, str] | None,
    deliveries: list[Delivery],
) -> bytes:
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
    # Serialised as text, then encoded once: the same bytes as encoding="utf-8", faster.
    return (_DECLARATION + ET.tostring(root, encoding="unicode") + "\n").encode()
