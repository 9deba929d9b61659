"""The hotfolder agent against a real portal: gunicorn over TLS, two directories, one CA.

Everything is real: the portal's database and storage, clamd, gunicorn with TLS from a
trustme CA, and ``python -m hotfolder_agent`` in its own directory with ``[agent]``
alone in its client.ini.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import time

import pytest
from agent_helpers import (
    AgentProcess,
    agent_dir,
    all_names,
    clean_upload,
    decided_proof,
    hotfolder_of,
    make_order,
    notifications,
    portal_copy,
    running_portal,
    visible_files,
    wait_for,
    without_file_override,
)
from lxml import etree
from print_data_helpers import print_pdf

from shared.hotfolder.status import STAGE_IN_HOTFOLDER, file_journeys
from shared.models import AgentHeartbeat, ApiToken, Delivery, MailAttachment, OrderFile, Proof
from shared.orders.workflow_xml import SCHEMA_PATH

TRICKY_CUSTOMER = "Müller & Söhne <Druck> \"Ost\" 'GmbH'"
TRICKY_FILES = [
    "Angebot & Preise <final> \"v2\" 'neu'.pdf",
    "Брошюра 東京 ٣٤ Ωμέγα.pdf",
    "plain.pdf",
]


@pytest.fixture
def portal(tmp_path, clamd):
    with running_portal(tmp_path / "portal", clamd) as host:
        yield host


@pytest.fixture
def agents():
    """Agent processes started by a test; killed afterwards if still running."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


@pytest.fixture
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def delivered(count: int):
    return lambda: Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count() == count


def test_clean_uploads_arrive_verified_each_with_one_valid_xml(portal, agents, tmp_path, schema):
    order = make_order(
        portal.settings,
        "A-2026.1",
        "K_7",
        name=TRICKY_CUSTOMER,
        job="Flyer & Poster <A5> \"4/4\" 'matt' – 東京",
        contact="anna@example.com",
        contact_name="Anna <Beispiel> & Co",
    )
    files = [
        clean_upload(portal.settings, order, name, name.encode() * 40_000) for name in TRICKY_FILES
    ]
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))

    wait_for(lambda: len(notifications(settings)) == 3, timeout=30)
    hotfolder = hotfolder_of(settings, "K_7", "A-2026.1")
    assert visible_files(hotfolder) == sorted(file.stored_name for file in files)
    for file in files:
        assert (hotfolder / file.stored_name).read_bytes() == portal_copy(portal.settings, file)
    assert [n for n in all_names(hotfolder) if n.startswith(".")] == []
    by_name = {}
    for path in notifications(settings):
        document = etree.parse(str(path))
        assert schema.validate(document), schema.error_log
        by_name[document.findtext("files/file/name")] = document
    for file in files:
        document = by_name[file.display_name]
        # Each file's preflight as the portal found it (not a PDF, so: not checked).
        assert document.find("files/file/preflight").get("status") == "not_checked"
        assert document.findtext("order/number") == "A-2026.1"
        assert document.findtext("order/customer/name") == TRICKY_CUSTOMER
        assert document.findtext("order/jobDescription").startswith("Flyer & Poster <A5>")
        assert document.findtext("order/contact/name") == "Anna <Beispiel> & Co"
        assert document.findtext("order/contact/email") == "anna@example.com"
        assert document.findtext("files/file/sha256") == file.sha256
        assert document.findtext("files/file/hotfolderPath") == str(hotfolder / file.stored_name)
        row = Delivery.get(Delivery.file == file.id)
        assert (row.state, row.hotfolder_path) == (
            Delivery.STATE_DONE,
            str(hotfolder / file.stored_name),
        )
        assert OrderFile.get_by_id(file.id).delivered_at is not None
    stages = {journey.id: journey.stage for journey in file_journeys().items}
    assert set(stages.values()) == {STAGE_IN_HOTFOLDER}, "staff see them in the hotfolder"
    wait_for(lambda: AgentHeartbeat.select().exists())
    beat = AgentHeartbeat.get()
    assert beat.token.name == "agent-agent" and beat.version and beat.host
    assert ApiToken.get(ApiToken.name == "agent-agent").last_host == "127.0.0.1"
    assert agents[0].terminate() == 0
    assert AgentHeartbeat.get().stopped_at is not None, "staff see that it stopped"
    assert "Traceback" not in agents[0].log


def test_the_agent_host_knows_nothing_but_the_portal_url_and_its_token(portal, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(settings.source)
    assert parser.sections() == ["agent"]
    text = settings.source.read_text()
    assert "database" not in text and "order_root" not in text
    assert not (tmp_path / "agent" / "data").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a second owner for the storage")
def test_the_agent_works_without_read_access_to_the_portals_storage(portal, agents, tmp_path):
    order = make_order(portal.settings, "A1")
    file = clean_upload(portal.settings, order, "Innenteil.pdf", os.urandom(300_000))
    storage = portal.settings.storage.order_root.parent
    nobody = 65534
    for directory, _dirs, names in os.walk(storage):
        os.chown(directory, nobody, nobody)
        os.chmod(directory, 0o700)
        for name in names:
            os.chown(os.path.join(directory, name), nobody, nobody)
    probe = subprocess.run(
        [sys.executable, "-c", f"import os; os.listdir({str(storage)!r})"],
        preexec_fn=without_file_override,
        capture_output=True,
        text=True,
    )
    assert "PermissionError" in probe.stderr, "an agent process cannot read the storage"

    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings, obey_permissions=True))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: visible_files(hotfolder) == ["Innenteil.pdf"], timeout=30)
    assert (hotfolder / "Innenteil.pdf").read_bytes() == portal_copy(portal.settings, file)
    assert agents[0].terminate() == 0


def test_an_existing_name_in_the_hotfolder_is_never_overwritten(portal, agents, tmp_path):
    order = make_order(portal.settings, "A1")
    settings = agent_dir(tmp_path / "agent", portal)
    hotfolder = hotfolder_of(settings, "K1", "A1")
    hotfolder.mkdir(parents=True)
    (hotfolder / "Flyer.pdf").write_bytes(b"staff's own file")
    (hotfolder / "flyer (2).PDF").write_bytes(b"and another, differing only in case")
    file = clean_upload(portal.settings, order, "Flyer.pdf", b"%PDF customer")
    agents.append(AgentProcess(settings))
    wait_for(delivered(1), timeout=30)
    assert (hotfolder / "Flyer.pdf").read_bytes() == b"staff's own file"
    assert (hotfolder / "Flyer (3).pdf").read_bytes() == portal_copy(portal.settings, file)
    assert Delivery.get().hotfolder_path == str(hotfolder / "Flyer (3).pdf")
    assert agents[0].terminate() == 0


def test_files_within_the_window_share_one_notification_per_order(portal, agents, tmp_path, schema):
    first, second = make_order(portal.settings, "A1"), make_order(portal.settings, "A2", "K2")
    files = [clean_upload(portal.settings, first, f"{n}.pdf", b"%d" % n * 1000) for n in range(3)]
    files.append(clean_upload(portal.settings, second, "x.pdf", b"x" * 1000))
    settings = agent_dir(tmp_path / "agent", portal, batch_window_seconds="1.5")
    agents.append(AgentProcess(settings))
    wait_for(delivered(4), timeout=30)
    wait_for(lambda: len(notifications(settings)) == 2, timeout=10)
    counts = sorted(
        etree.parse(str(path)).find("files").get("count") for path in notifications(settings)
    )
    assert counts == ["1", "3"]
    for path in notifications(settings):
        assert schema.validate(etree.parse(str(path))), schema.error_log
    records = settings.state_dir / "deliveries"
    wait_for(lambda: not list(records.glob("*.json")), timeout=5)  # records go when done
    assert agents[0].terminate() == 0
    time.sleep(0.2)
    assert len(notifications(settings)) == 2


def test_the_job_notification_carries_the_files_preflight(portal, agents, tmp_path, schema):
    order = make_order(portal.settings, "A-77")
    clean_upload(portal.settings, order, "Flyer.pdf", print_pdf(bleed_mm=None))
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    wait_for(lambda: len(notifications(settings)) == 1, timeout=30)
    document = etree.parse(str(notifications(settings)[0]))
    assert schema.validate(document), schema.error_log
    preflight = document.find("files/file/preflight")
    assert (preflight.get("status"), preflight.get("fileType")) == ("warnings", "pdf")
    assert (preflight.get("pageCount"), preflight.get("language")) == ("1", "de")
    size = preflight.find("pageSize")
    assert (size.get("trimWidthMm"), size.get("trimHeightMm"), size.get("bleedMm")) == (
        "210.0",
        "297.0",
        "0.0",
    )
    finding = preflight.find("finding[@code='bleed_missing']")
    assert finding.get("severity") == "warning"
    assert finding.text.startswith("Kein Beschnitt auf Seite 1.")


def test_each_decided_proof_is_placed_once_as_an_approval_file(portal, agents, tmp_path, schema):
    order = make_order(portal.settings, "A-88")
    rejected = decided_proof(order, 1, "rejected")
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    first = settings.notification_dir / "A-88_proof-1.xml"
    wait_for(first.exists, timeout=30)
    document = etree.parse(str(first))
    assert schema.validate(document), schema.error_log
    assert document.getroot().tag == "proofApproval"
    assert document.findtext("approval/decision/result") == "rejected"
    assert document.findtext("approval/decision/comment") == "Logo größer."
    assert document.findtext("approval/proof/sha256") == rejected.sha256
    wait_for(lambda: Proof.get_by_id(rejected.id).approval_placed_at is not None)
    written = first.stat().st_mtime_ns

    approved = decided_proof(order, 2, "approved")  # the next version, decided later
    second = settings.notification_dir / "A-88_proof-2.xml"
    wait_for(second.exists, timeout=10)
    assert etree.parse(str(second)).findtext("approval/decision/result") == "approved"
    wait_for(lambda: Proof.get_by_id(approved.id).approval_placed_at is not None)
    time.sleep(2.5)  # two more heartbeats: nothing is written again
    assert first.stat().st_mtime_ns == written
    assert sorted(p.name for p in settings.notification_dir.iterdir()) == [
        "A-88_proof-1.xml",
        "A-88_proof-2.xml",
    ]
    assert agents[0].terminate() == 0


def test_customers_without_hotfolder_keep_their_files_in_the_portal_only(portal, agents, tmp_path):
    order = make_order(portal.settings, "A1", "K9", create_hotfolder=False)
    clean_upload(portal.settings, order, "Nur im Portal.pdf", b"x" * 100)
    served = make_order(portal.settings, "B1", "K1")
    clean_upload(portal.settings, served, "ok.pdf", b"y" * 100)
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    wait_for(delivered(1), timeout=30)
    time.sleep(1)
    assert not hotfolder_of(settings, "K9", "A1").exists()
    assert Delivery.select().count() == 1
    assert agents[0].terminate() == 0


def test_the_job_notification_goes_to_the_internal_address_with_the_xml_attached(
    tmp_path, clamd, agents
):
    with running_portal(
        tmp_path / "portal",
        clamd,
        notifications={"job_notification_email": "avor@druckerei.example"},
    ) as portal:
        order = make_order(portal.settings, "A1")
        clean_upload(portal.settings, order, "Innenteil.pdf", b"%PDF" * 100)
        settings = agent_dir(tmp_path / "agent", portal)
        agents.append(AgentProcess(settings))
        wait_for(lambda: MailAttachment.select().exists(), timeout=30)
        attachment = MailAttachment.get()
        [xml] = notifications(settings)
        assert attachment.file_name == xml.name
        assert bytes(attachment.content) == xml.read_bytes()
        assert attachment.mail.recipients == "avor@druckerei.example"
        assert agents[0].terminate() == 0


def test_orders_get_their_hotfolder_with_drop_folders(portal, agents, tmp_path):
    make_order(portal.settings, "A1")
    make_order(portal.settings, "B7", "K2")
    make_order(portal.settings, "C3", "K3", create_hotfolder=False)
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    for customer_no, project_no in (("K1", "A1"), ("K2", "B7")):
        drop = hotfolder_of(settings, customer_no, project_no) / "_to_customer"
        wait_for(lambda drop=drop: (drop / "Final").is_dir() and (drop / "In Bearbeitung").is_dir())
    assert not hotfolder_of(settings, "K3", "C3").exists()
    assert agents[0].terminate() == 0
