"""The XML of a job notification (see shared/data/job-notification.xsd).

Rendered from a notification record (``notification``): the order, customer and
contact as the portal announced them with the files, and per file where and when the
agent placed it. The same record always gives the same bytes, so an XML written again
after a crash is the same file. Names and texts are carried exactly; characters XML
cannot hold at all become U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import shared

SCHEMA_VERSION = "1"
SCHEMA_PATH = Path(shared.__file__).resolve().parent / "data" / "job-notification.xsd"
_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"
# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _add(parent: ET.Element, tag: str, value: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _clean(value)
    return element


def render(record: dict) -> bytes:
    """The notification ``record`` as UTF-8 XML."""
    root = ET.Element(
        "jobNotification",
        schemaVersion=SCHEMA_VERSION,
        id=str(record["id"]),
        created=record["created"],
    )
    order = record["order"]
    order_element = ET.SubElement(root, "order")
    _add(order_element, "number", order["project_no"])
    _add(order_element, "jobDescription", order.get("job_description") or "")
    if order.get("due_date"):
        _add(order_element, "dueDate", order["due_date"])
    customer = ET.SubElement(order_element, "customer")
    _add(customer, "number", order["customer"]["customer_no"])
    _add(customer, "name", order["customer"].get("name") or "")
    contact = order.get("contact")
    if contact:
        contact_element = ET.SubElement(order_element, "contact")
        _add(contact_element, "name", contact.get("name") or "")
        _add(contact_element, "email", contact.get("email") or "")
    _add(order_element, "hotfolder", record["hotfolder"])
    files = ET.SubElement(root, "files", count=str(len(record["files"])))
    for file in record["files"]:
        element = ET.SubElement(files, "file")
        _add(element, "name", file["name"])
        _add(element, "storedName", file["stored_name"])
        _add(element, "size", file["size"])
        _add(element, "sha256", file["sha256"])
        _add(element, "uploadedAt", file["uploaded_at"])
        _add(element, "deliveredAt", file["delivered_at"])
        _add(element, "hotfolderPath", file["path"])
    ET.indent(root)
    return (_DECLARATION + ET.tostring(root, encoding="unicode") + "\n").encode()
