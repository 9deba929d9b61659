"""The workflow's XML of preflight results and proof approvals (job-notification.xsd).

Built from the JSON records the portal hands out (``shared.files.preflighting.
preflight_record``, ``shared.orders.proofs.approval_record``), so the hotfolder agent,
which holds no database connection, builds exactly what it fetched. Nothing here reads
the database.

For the agent:

- ``preflight_element(record)``: append to a job notification's ``<file>`` element, after
  ``<hotfolderPath>`` (optional there: readers of the first version are unaffected);
- ``approval_element(record["proof"])``: append to ``<jobNotification>`` after ``<files>``,
  when the newest proof is decided;
- ``approval_document(record, created)``: the approval file of its own (root
  ``<proofApproval>``) to place next to the job once ``record["proof"]["decision"]`` is set.

Texts are carried exactly; characters XML cannot hold at all become U+FFFD.
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
    order_element = ET.SubElement(root, "order")
    _add(order_element, "number", order["number"])
    _add(order_element, "jobDescription", order.get("job_description") or "")
    if order.get("due_date"):
        _add(order_element, "dueDate", order["due_date"])
    customer = ET.SubElement(order_element, "customer")
    _add(customer, "number", order["customer"]["number"])
    _add(customer, "name", order["customer"]["name"])
    root.append(approval_element(record["proof"]))
    return serialise(root)


def serialise(root: ET.Element) -> bytes:
    """``root`` as an indented UTF-8 document with its declaration."""
    ET.indent(root)
    return (_DECLARATION + ET.tostring(root, encoding="unicode") + "\n").encode()
