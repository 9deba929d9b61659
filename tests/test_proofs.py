"""Proof approval (Druckfreigabe): staff ask on the order page, the customer gets a mail, sees
the pages and approves or rejects; the decision is recorded with time, login, address and the
file's SHA-256, staff are told, and the workflow reads it (API, approval XML)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from conftest import links_for
from lxml import etree
from order_helpers import PDF, upload
from portal_helpers import SignedIn, customer_with_order, signed_in_customer
from print_data_helpers import StaffSession, print_pdf, signed_in_staff

from shared.accounts.logins import set_login_state
from shared.clock import utcnow
from shared.db import write_transaction
from shared.events import PROOF_DECIDED
from shared.files.folders import FOLDER_IN_PROGRESS
from shared.models import Notification, Order, OrderFile, OutboxMail, PortalLogin, Proof
from shared.notify.sending import send_due_notifications
from shared.orders.proofs import approval_record
from shared.orders.workflow_xml import SCHEMA_PATH

GERMAN = {"Accept-Language": "de"}
LINK = re.compile(r"http://portal\.test/orders/A1/proofs/(\d+)")


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    return {"clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}}


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


@pytest.fixture
def staff(app, settings, customer) -> StaffSession:
    session = signed_in_staff(app, settings)
    with write_transaction():
        Order.update(owner=session.user).where(Order.project_no == "A1").execute()
    return session


def place_proof(staff: StaffSession, name: str = "Korrektur.pdf", pages: int = 2) -> OrderFile:
    data = print_pdf(pages=pages)
    file = upload(staff.client, staff.headers, "A1", name, data, folder=FOLDER_IN_PROGRESS)
    file = OrderFile.get_by_id(file.id)
    assert file.preflight_status == OrderFile.PREFLIGHT_OK
    return file


def ask(staff: StaffSession, file: OrderFile):
    return staff.post("/staff/orders/A1/proofs", file_id=str(file.id))


def decide(client, customer: SignedIn, version: int, decision: str, comment: str = "", **headers):
    form = {"csrf_token": customer.csrf_token, "decision": decision, "comment": comment}
    return client.post(f"/orders/A1/proofs/{version}", data=form, headers=headers)


def test_staff_ask_the_customer_approves_and_everything_is_recorded(
    app, client, customer, staff, settings, mailserver
):
    proof_file = place_proof(staff)
    page = staff.client.get("/staff/orders/A1").text
    assert f'<option value="{proof_file.id}">Korrektur.pdf</option>' in page

    response = ask(staff, proof_file)
    assert response.status_code == 302
    proof = Proof.get()
    assert (proof.version, proof.file_id, proof.sha256) == (1, proof_file.id, proof_file.sha256)

    mail = mailserver.received[-1]
    assert mail.message["To"] == "k1@example.com"
    # The customer signed in with an English browser: their mails are English (issue 16).
    assert mail.message["Subject"] == "[Order A1] Please approve your print job"
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    assert LINK.search(text).group(1) == "1"
    assert "- Korrektur.pdf (version 1)" in text

    order_page = client.get("/orders/A1", headers=GERMAN).text
    assert 'id="proof"' in order_page and "wartet auf Freigabe" in order_page
    approval_page = client.get("/orders/A1/proofs/1", headers=GERMAN).text
    for number in (1, 2):
        assert f'src="/orders/A1/files/{proof_file.id}/pages/{number}.png"' in approval_page
    assert client.get(f"/orders/A1/files/{proof_file.id}/pages/2.png").status_code == 200

    before = utcnow()
    response = decide(client, customer, 1, "approved", "Passt so.")
    assert response.status_code == 302

    proof = Proof.get_by_id(proof.id)
    assert proof.decision == Proof.DECISION_APPROVED
    assert before <= proof.decided_at <= utcnow()
    assert proof.decided_by_username == "k1"
    assert proof.decided_from == "127.0.0.1"
    assert proof.decision_sha256 == proof_file.sha256
    assert proof.decision_comment == "Passt so."
    event = Notification.get(Notification.kind == PROOF_DECIDED)
    assert event.file_id == proof_file.id

    later = utcnow() + timedelta(seconds=settings.notifications.notification_batch_seconds + 1)
    send_due_notifications(settings, links_for(settings), later)
    told = OutboxMail.get(OutboxMail.kind == f"notify-{PROOF_DECIDED}")
    assert told.recipients == "anna@testdruck.example"
    assert "- Korrektur.pdf (Version 1): freigegeben" in told.text_body
    assert "Anmerkung: Passt so." in told.text_body

    staff_page = staff.client.get("/staff/orders/A1").text
    row = re.search(r'<tr id="proof-1".*?</tr>', staff_page, re.S).group(0)
    assert 'data-state="approved"' in row
    assert "127.0.0.1" in row and proof_file.sha256 in row


def test_a_rejection_needs_a_comment(client, customer, staff):
    ask(staff, place_proof(staff))
    response = decide(client, customer, 1, "rejected", "   ", **GERMAN)
    assert response.status_code == 400
    assert "Bitte schreiben Sie uns, was geändert werden soll." in response.text
    assert Proof.get().decision == ""

    response = decide(client, customer, 1, "rejected", "Logo bitte größer.")
    assert response.status_code == 302
    proof = Proof.get()
    assert (proof.decision, proof.decision_comment) == ("rejected", "Logo bitte größer.")
    assert decide(client, customer, 1, "approved").status_code == 409, "decided already"
    assert decide(client, customer, 1, "maybe").status_code == 400


def test_a_new_version_supersedes_the_old_one(client, customer, staff):
    ask(staff, place_proof(staff, "Korrektur 1.pdf"))
    ask(staff, place_proof(staff, "Korrektur 2.pdf"))
    first, second = Proof.select().order_by(Proof.version)
    assert first.superseded_at is not None and second.superseded_at is None

    response = decide(client, customer, 1, "approved", **GERMAN)
    assert response.status_code == 409
    assert "wurde durch Version 2 ersetzt" in response.text
    assert Proof.get_by_id(first.id).decision == ""
    assert 'data-state="superseded"' in client.get("/orders/A1/proofs/1").text

    assert decide(client, customer, 2, "approved").status_code == 302
    response = decide(client, customer, 2, "rejected", "doch nicht")
    assert response.status_code == 409
    assert "You have already decided on this proof." in response.text
    assert Proof.get_by_id(second.id).decision == "approved"


def test_an_approved_proof_is_superseded_by_a_new_version(client, customer, staff):
    ask(staff, place_proof(staff, "a.pdf"))
    assert decide(client, customer, 1, "approved").status_code == 302
    ask(staff, place_proof(staff, "b.pdf"))
    assert approval_record(Order.get())["proof"]["state"] == "pending"
    assert approval_record(Order.get())["proof"]["version"] == 2


def test_only_the_orders_customer_sees_and_decides(app, api, client, customer, staff, mailserver):
    ask(staff, place_proof(staff))
    customer_with_order(api, "K2", "B1")
    other = app.test_client()
    intruder = signed_in_customer(other, api, mailserver, "K3", "C1")
    assert other.get("/orders/A1/proofs/1").status_code == 404
    assert decide(other, intruder, 1, "approved").status_code == 404
    assert Proof.get().decision == ""
    assert client.get("/orders/A1/proofs/7").status_code == 404
    form = {"decision": "approved"}
    assert client.post("/orders/A1/proofs/1", data=form).status_code == 400, "CSRF"
    assert customer_cannot_ask(client, customer)


def customer_cannot_ask(client, customer: SignedIn) -> bool:
    response = client.post(
        "/staff/orders/A1/proofs", data={"csrf_token": customer.csrf_token, "file_id": "1"}
    )
    return response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_only_scanned_files_of_in_bearbeitung_with_a_preview_can_be_proofs(client, customer, staff):
    incoming = upload(client, customer.headers, "A1", "kunde.pdf", print_pdf())
    broken = upload(staff.client, staff.headers, "A1", "kaputt.pdf", PDF, folder=FOLDER_IN_PROGRESS)
    page = staff.client.get("/staff/orders/A1").text
    assert 'id="proof-file"' not in page
    for file in (incoming, broken):
        response = ask(staff, file)
        assert response.status_code == 302
    assert Proof.select().count() == 0
    flashed = staff.client.get("/staff/orders/A1").text
    assert "This file cannot be a proof" in flashed


def test_the_workflow_reads_the_decision_as_json_and_as_approval_xml(api, client, customer, staff):
    assert api.get("/orders/A1/approval").status_code == 404
    proof_file = place_proof(staff)
    ask(staff, proof_file)
    pending = api.get("/orders/A1/approval")
    assert pending.json["proof"]["state"] == "pending"
    assert pending.json["proof"]["decision"] is None
    assert api.get("/orders/A1/approval?format=xml").status_code == 409

    decide(client, customer, 1, "approved", "OK für Druck <sofort> & gern")
    record = api.get("/orders/A1/approval").json
    assert record["order"]["number"] == "A1"
    assert record["proof"]["file"]["sha256"] == proof_file.sha256
    decision = record["proof"]["decision"]
    assert (decision["result"], decision["login"], decision["address"]) == (
        "approved",
        "k1",
        "127.0.0.1",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", decision["decided_at"])

    response = api.get("/orders/A1/approval?format=xml")
    assert response.mimetype == "application/xml"
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    document = etree.fromstring(response.data)
    schema.assertValid(document)
    assert document.tag == "proofApproval"
    assert document.findtext("approval/decision/comment") == "OK für Druck <sofort> & gern"
    assert document.findtext("approval/proof/sha256") == proof_file.sha256


def test_staff_are_told_in_words_when_the_customer_cannot_be_asked(
    client, customer, staff, settings
):
    proof_file = place_proof(staff)
    with write_transaction():
        set_login_state(settings, PortalLogin.get(), PortalLogin.STATE_INACTIVE)
    assert ask(staff, proof_file).status_code == 302
    page = staff.client.get("/staff/orders/A1").text
    assert "cannot be asked for approval: they cannot sign in to the portal." in page
    assert Proof.select().count() == 0
    assert OutboxMail.select().where(OutboxMail.kind == "proof-request").count() == 0
