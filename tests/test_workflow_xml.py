"""The extended job-notification XSD: old documents stay valid; preflight results, the approval
inside a notification and the approval file of its own, built from the portal's JSON, are valid."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from lxml import etree
from preflight_helpers import new_page, save

from shared.files.preflight import run_preflight
from shared.files.preflighting import preflight_record
from shared.models import OrderFile
from shared.orders.workflow_xml import (
    SCHEMA_PATH,
    approval_document,
    approval_element,
    preflight_element,
    serialise,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

OLD_STYLE = """<?xml version='1.0' encoding='utf-8'?>
<jobNotification schemaVersion="1" id="7" created="2026-05-04T10:12:03Z">
  <order>
    <number>A-100</number>
    <jobDescription>Flyer A5</jobDescription>
    <dueDate>2026-12-01</dueDate>
    <customer><number>K1</number><name>Muster GmbH</name></customer>
    <contact><name>Anna</name><email>anna@muster.example</email></contact>
    <hotfolder>/srv/hotfolder/K1/A-100</hotfolder>
  </order>
  <files count="1">
    <file>
      <name>Umschlag.pdf</name>
      <storedName>Umschlag.pdf</storedName>
      <size>2057</size>
      <sha256>{sha}</sha256>
      <uploadedAt>2026-05-04T10:11:00Z</uploadedAt>
      <deliveredAt>2026-05-04T10:12:03Z</deliveredAt>
      <hotfolderPath>/srv/hotfolder/K1/A-100/Umschlag.pdf</hotfolderPath>
    </file>
  </files>
</jobNotification>
""".format(sha="a" * 64)

DECIDED = {
    "order": {
        "number": "A-100",
        "job_description": "Flyer A5",
        "due_date": "2026-12-01",
        "customer": {"number": "K1", "name": "Muster GmbH"},
    },
    "proof": {
        "version": 2,
        "state": "approved",
        "file": {
            "name": "Korrektur „final“.pdf",
            "stored_name": "Korrektur final.pdf",
            "folder": "In Bearbeitung",
            "size": 123456,
            "sha256": "b" * 64,
        },
        "requested_at": "2026-05-04T11:00:00Z",
        "requested_by": "Anna Muster",
        "superseded_at": None,
        "decision": {
            "result": "approved",
            "decided_at": "2026-05-04T12:30:00Z",
            "login": "k1",
            "address": "203.0.113.7",
            "comment": "Passt \x01 so & <gut>",
            "sha256": "b" * 64,
        },
    },
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def stored(tmp_path, **page) -> OrderFile:
    """A file row (not saved) carrying the engine's real report of a generated PDF."""
    import pikepdf

    pdf = pikepdf.new()
    new_page(pdf, **page)
    report = run_preflight(save(pdf, tmp_path / "a.pdf"), "pdf")
    return OrderFile(
        id=1,
        preflight_status=report.status,
        preflight_report=json.dumps({"report": report.to_dict()}),
        preflight_at=datetime(2026, 5, 4, 10, 0, 0),
    )


def test_an_old_style_document_still_validates(schema):
    schema.assertValid(etree.fromstring(OLD_STYLE.encode()))


def test_a_notification_with_preflight_and_approval_validates(schema, tmp_path):
    root = ET.fromstring(OLD_STYLE)
    record = preflight_record(stored(tmp_path, bleed_mm=None), "de")
    assert record["status"] == "warnings"
    root.find("files/file").append(preflight_element(record))
    root.append(approval_element(DECIDED["proof"]))
    document = etree.fromstring(serialise(root))

    schema.assertValid(document)
    preflight = document.find("files/file/preflight")
    assert preflight.get("status") == "warnings"
    assert preflight.get("pageCount") == "1"
    assert preflight.get("language") == "de"
    size = preflight.find("pageSize")
    assert (size.get("trimWidthMm"), size.get("trimHeightMm"), size.get("bleedMm")) == (
        "210.0",
        "297.0",
        "0.0",
    )
    bleed = preflight.find("finding[@code='bleed_missing']")
    assert bleed.get("severity") == "warning" and bleed.get("pages") == "1"
    assert bleed.text.startswith("Kein Beschnitt auf Seite 1.")


def test_a_zip_listing_and_a_failed_preflight_validate(schema):
    record = {
        "status": "not_checked",
        "file_type": "zip",
        "page_count": None,
        "checked_at": "2026-05-04T10:00:00Z",
        "page_sizes": [],
        "findings": [
            {"code": "not_checked", "severity": "info", "params": {"type": "zip"}, "message": "…"}
        ],
        "zip": {"total_entries": 2, "total_size": 10, "entries": [{"name": "a/ä.pdf", "size": 5}]},
    }
    failed = {
        "status": "failed",
        "file_type": "pdf",
        "page_count": None,
        "findings": [{"code": "preflight_failed", "severity": "error", "params": {}}],
    }
    for element in (preflight_element(record), preflight_element(failed)):
        root = ET.fromstring(OLD_STYLE)
        root.find("files/file").append(element)
        schema.assertValid(etree.fromstring(serialise(root)))


def test_the_approval_file_validates_and_carries_every_text(schema):
    document = etree.fromstring(approval_document(DECIDED, datetime(2026, 5, 4, 12, 31)))
    schema.assertValid(document)
    assert document.tag == "proofApproval"
    assert document.get("created") == "2026-05-04T12:31:00Z"
    assert document.findtext("approval/proof/name") == "Korrektur „final“.pdf"
    assert document.find("approval/proof").get("version") == "2"
    assert document.findtext("approval/decision/comment") == "Passt \ufffd so & <gut>"
    assert document.findtext("approval/decision/address") == "203.0.113.7"


def test_an_undecided_proof_has_no_approval_file():
    pending = json.loads(json.dumps(DECIDED))
    pending["proof"]["decision"] = None
    with pytest.raises(ValueError, match="not decided"):
        approval_document(pending)


def test_the_schema_rejects_what_it_should(schema):
    root = ET.fromstring(OLD_STYLE)
    bad = preflight_element({"status": "fine", "file_type": "pdf", "findings": []})
    root.find("files/file").append(bad)
    assert not schema.validate(etree.fromstring(serialise(root)))
