"""The workflow's XML documents (shared/data/job-notification.xsd): job notifications with
their files' preflight results, and proof approvals.

Built from the JSON records the portal hands out (the agent's file answers with
``shared.files.preflighting.preflight_record``, ``shared.orders.proofs.approval_record``),
so the hotfolder agent, which holds no database connection, builds exactly what it
fetched. Nothing here reads the database.

- ``job_notification_document(record)``: a job notification; a file's ``preflight``
  becomes ``<preflight>`` after its ``<hotfolderPath>`` (optional there: readers of the
  first version are unaffected);
- ``approval_element(record["proof"])``: ``<approval>`` of a decided proof;
- ``approval_document(record, created)``: the approval file of its own (root
  ``<proofApproval>``) the agent places next to the jobs once ``record["proof"]["decision"]``
  is set.

The same record always gives the same bytes, so a document written again after a crash
is the same file. Texts are carried exactly; characters XML cannot hold at all become
U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import shared

SCHEMA_VERSION = "1"
SCHEMA_PATH = Path(shared.__file__).resolve().parent / "data" / "job-notification.xsd"
_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"
# The XSD's PreflightStatus and Severity.
PREFLIGHT_STATUSES = ("ok", "warnings", "errors", "failed", "not_checked")
SEVERITIES = ("info", "warning", "error")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _add(parent: ET.Element, tag: str, value: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _clean(value)
    return element


def _decimal(value: float) -> str:
    return f"{float(value):.1f}"


def preflight_element(record: dict[str, Any]) -> ET.Element:
    """``<preflight>`` of one file from its ``preflight_record``."""
    attributes = {"status": record["status"], "fileType": record["file_type"] or "unknown"}
    if record.get("page_count") is not None:
        attributes["pageCount"] = str(record["page_count"])
    if record.get("checked_at"):
        attributes["checkedAt"] = record["checked_at"]
    listing = record.get("zip")
    if listing:
        attributes["zipEntries"] = str(listing["total_entries"])
    if record.get("language"):
        attributes["language"] = record["language"]
    element = ET.Element("preflight", attributes)
    for group in record.get("page_sizes", []):
        ET.SubElement(
            element,
            "pageSize",
            pages=_clean(group["pages"]),
            count=str(group["count"]),
            trimWidthMm=_decimal(group["trim_mm"][0]),
            trimHeightMm=_decimal(group["trim_mm"][1]),
            bleedMm=_decimal(min(group["bleed_mm"])),
        )
    for finding in record.get("findings", []):
        attributes = {"code": finding["code"], "severity": finding["severity"]}
        pages = (finding.get("params") or {}).get("pages")
        if pages:
            attributes["pages"] = _clean(pages)
        child = ET.SubElement(element, "finding", attributes)
        child.text = _clean(finding.get("message", ""))
    for entry in (listing or {}).get("entries", []):
        ET.SubElement(element, "zipEntry", name=_clean(entry["name"]), size=str(entry["size"]))
    return element


def checked_preflight(record: object) -> dict[str, Any]:
    """``record`` if it is a preflight record a ``<preflight>`` can be made of; ValueError
    says what is wrong (the agent gets it from another host)."""
    if not isinstance(record, dict):
        raise ValueError("the preflight is not an object")
    if record.get("status") not in PREFLIGHT_STATUSES:
        raise ValueError(f"unknown preflight status {record.get('status')!r}")
    findings = record.get("findings", [])
    if not isinstance(findings, list) or any(
        not isinstance(finding, dict) or finding.get("severity") not in SEVERITIES
        for finding in findings
    ):
        raise ValueError("the preflight findings are not a list of findings")
    try:
        preflight_element(record)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the preflight cannot be written: {exc!r}") from None
    return record


def approval_element(proof: dict[str, Any]) -> ET.Element:
    """``<approval>`` from a decided ``proof_record``; ValueError while undecided."""
    decision = proof.get("decision")
    if not decision:
        raise ValueError(f"proof version {proof['version']} is not decided")
    element = ET.Element("approval")
    proof_element = ET.SubElement(element, "proof", version=str(proof["version"]))
    file = proof["file"]
    _add(proof_element, "name", file["name"])
    if file.get("stored_name"):
        _add(proof_element, "storedName", file["stored_name"])
    _add(proof_element, "folder", file["folder"])
    _add(proof_element, "size", file["size"])
    _add(proof_element, "sha256", file["sha256"])
    _add(proof_element, "requestedAt", proof["requested_at"])
    _add(proof_element, "requestedBy", proof.get("requested_by") or "")
    decision_element = ET.SubElement(element, "decision")
    _add(decision_element, "result", decision["result"])
    _add(decision_element, "decidedAt", decision["decided_at"])
    _add(decision_element, "login", decision["login"])
    _add(decision_element, "address", decision.get("address") or "")
    _add(decision_element, "comment", decision.get("comment") or "")
    _add(decision_element, "sha256", decision["sha256"])
    return element


def _order_element(parent: ET.Element, order: dict, number: str, customer_no: str) -> ET.Element:
    """``<order>`` with number, job description, due date and customer (the records of the
    agent's files and of approvals name the numbers differently)."""
    element = ET.SubElement(parent, "order")
    _add(element, "number", number)
    _add(element, "jobDescription", order.get("job_description") or "")
    if order.get("due_date"):
        _add(element, "dueDate", order["due_date"])
    customer = ET.SubElement(element, "customer")
    _add(customer, "number", customer_no)
    _add(customer, "name", order["customer"].get("name") or "")
    return element


def job_notification_document(record: dict[str, Any]) -> bytes:
    """A job notification from the agent's ``record``: the order, customer and contact as
    the portal announced them with the files, and per file where and when the agent
    placed it (and its preflight, where the portal had one)."""
    root = ET.Element(
        "jobNotification",
        schemaVersion=SCHEMA_VERSION,
        id=str(record["id"]),
        created=record["created"],
    )
    order = record["order"]
    order_element = _order_element(
        root, order, order["project_no"], order["customer"]["customer_no"]
    )
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
        if file.get("preflight"):
            element.append(preflight_element(file["preflight"]))
    return serialise(root)


def approval_document(record: dict[str, Any], created: datetime | None = None) -> bytes:
    """The approval file (``<proofApproval>``) from an ``approval_record``, UTF-8."""
    from shared.clock import utcnow

    moment = created or utcnow()
    root = ET.Element(
        "proofApproval",
        schemaVersion=SCHEMA_VERSION,
        created=f"{moment:%Y-%m-%dT%H:%M:%S}Z",
    )
    order = record["order"]
    _order_element(root, order, order["number"], order["customer"]["number"])
    root.append(approval_element(record["proof"]))
    return serialise(root)


def serialise(root: ET.Element) -> bytes:
    """``root`` as an indented UTF-8 document with its declaration."""
    ET.indent(root)
    return (_DECLARATION + ET.tostring(root, encoding="unicode") + "\n").encode()
