"""The hotfolder agents' API (/api/v1/agent) against the real app, SQLite, clamd and tokens.

Scopes (agent tokens reach only these endpoints, workflow tokens none of them), leases
(one agent per file, run out for a silent agent, kept by heartbeats, never lost on the
way), the long poll, Range downloads, confirmations, problems, notifications, tus for
staff files, the OpenAPI document, and the tokens page.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from datetime import timedelta

import pytest
from agent_helpers import decided_proof, make_order, scanned_and_checked
from conftest import csrf_from
from file_helpers import received
from print_data_helpers import print_pdf

from shared.accounts.api_tokens import SCOPE_AGENT, create_token, revoke_token
from shared.accounts.staff import create_staff
from shared.clock import utcnow
from shared.db import write_transaction
from shared.files.intake import make_scanner, scan_received
from shared.files.preflighting import preflight_file
from shared.hotfolder.deliveries import PREFLIGHT_WAIT
from shared.models import (
    AgentError,
    AgentHeartbeat,
    ApiToken,
    Delivery,
    JobNotification,
    MailAttachment,
    Notification,
    OrderFile,
    OutboundTransfer,
    Proof,
)

PASSWORD = "Kaffee-Druckmaschine-Montag-42"


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    return {
        "clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        "notifications": {"job_notification_email": "avor@druckerei.example"},
    }


@pytest.fixture
def agent_token(app) -> str:
    return create_token("hotfolder-1", SCOPE_AGENT)


class Agent:
    """An agent as the portal sees it: its token and id."""

    def __init__(self, client, token: str, agent_id: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.agent_id = agent_id

    def post(self, path: str, body: dict | None = None, **headers):
        body = {"agent_id": self.agent_id, **(body or {})}
        return self.client.post(f"/api/v1/agent{path}", json=body, headers=self.headers | headers)

    def get(self, path: str, **headers):
        return self.client.get(f"/api/v1/agent{path}", headers=self.headers | headers)

    def lease(self, **body) -> dict:
        response = self.post("/leases", {"max_files": 10, "heartbeat_seconds": 1} | body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def confirm(self, file: OrderFile, path: str = "", sha256: str = "") -> dict:
        item = {
            "file_id": file.id,
            "path": path or f"/hot/{file.stored_name}",
            "placed_at": "2026-05-04T10:00:00Z",
            "sha256": sha256 or file.sha256,
        }
        response = self.post("/deliveries", {"deliveries": [item]})
        assert response.status_code == 200, response.get_json()
        [outcome] = response.get_json()["deliveries"]
        return outcome


@pytest.fixture
def agent(client, agent_token) -> Agent:
    return Agent(client, agent_token, "host-a-1")


@pytest.fixture
def other(client, agent_token) -> Agent:
    return Agent(client, agent_token, "host-b-2")


def clean(settings, order, name: str, data: bytes) -> OrderFile:
    return scanned_and_checked(settings, received(settings, order, name, data).id)


@pytest.fixture
def files(app, settings) -> list[OrderFile]:
    order = make_order(settings, "A-100")
    return [clean(settings, order, f"Seite {n}.pdf", f"%PDF-{n}".encode() * 5000) for n in range(3)]


def ids(answer: dict) -> list[int]:
    return sorted(entry["id"] for entry in answer["files"])


# --- who may call -----------------------------------------------------------------------------


AGENT_CALLS = [
    ("get", "/api/v1/agent/files"),
    ("post", "/api/v1/agent/files/content"),
    ("post", "/api/v1/agent/leases"),
    ("post", "/api/v1/agent/leases/release"),
    ("get", "/api/v1/agent/files/1/content"),
    ("post", "/api/v1/agent/deliveries"),
    ("post", "/api/v1/agent/heartbeat"),
    ("post", "/api/v1/agent/errors"),
    ("post", "/api/v1/agent/errors/resolved"),
    ("post", "/api/v1/agent/notifications"),
    ("get", "/api/v1/agent/orders"),
    ("post", "/api/v1/agent/orders/A-100/uploads"),
    ("head", "/api/v1/agent/uploads/abc"),
    ("patch", "/api/v1/agent/uploads/abc"),
    ("delete", "/api/v1/agent/uploads/abc"),
]


@pytest.mark.parametrize(("method", "path"), AGENT_CALLS)
def test_agent_endpoints_refuse_missing_revoked_and_workflow_tokens(client, method, path):
    call = getattr(client, method)
    assert call(path).status_code == 401
    assert call(path, headers={"Authorization": "Bearer pta_wrong"}).status_code == 401
    workflow = create_token("erp")
    response = call(path, headers={"Authorization": f"Bearer {workflow}"})
    assert response.status_code == 403
    if method != "head":
        assert "not an agent token" in response.get_json()["error"]
    revoked = create_token("old-agent", SCOPE_AGENT)
    revoke_token("old-agent")
    assert call(path, headers={"Authorization": f"Bearer {revoked}"}).status_code == 401


def test_an_agent_token_reaches_no_workflow_endpoint(client, agent_token):
    headers = {"Authorization": f"Bearer {agent_token}"}
    response = client.post("/api/v1/customers", json={"customer_no": "K1"}, headers=headers)
    assert response.status_code == 403
    assert "/api/v1/agent/" in response.get_json()["error"]
    assert client.get("/api/v1/orders/A-1", headers=headers).status_code == 403


def test_tokens_record_last_use_and_last_host(agent, files):
    agent.lease()
    token = ApiToken.get(ApiToken.name == "hotfolder-1")
    assert token.scope == "agent" and token.last_used_at is not None
    assert token.last_host == "127.0.0.1"


# --- leases ---------------------------------------------------------------------------------------


def test_two_agents_never_hold_the_same_file(agent, other, files):
    first = agent.lease(max_files=2)
    second = other.lease(max_files=10)
    assert len(first["files"]) == 2 and len(second["files"]) == 1
    assert not set(ids(first)) & set(ids(second))
    assert other.lease(holding=ids(second))["files"] == [], "nothing left"
    assert agent.lease(holding=ids(first))["files"] == []
    entry = first["files"][0]
    assert entry["order"]["project_no"] == "A-100"
    assert entry["order"]["customer"] == {"customer_no": "K1", "name": "Kunde GmbH"}
    assert entry["order"]["contact"] == {"name": "Kunde GmbH", "email": "k1@example.com"}
    file = OrderFile.get_by_id(entry["id"])
    assert (entry["size"], entry["sha256"], entry["stored_name"]) == (
        file.size,
        file.sha256,
        file.stored_name,
    )
    assert entry["content_url"] == f"/api/v1/agent/files/{file.id}/content"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["uploaded_at"])


def test_the_lease_of_a_silent_agent_runs_out_and_another_takes_the_file(agent, other, files):
    taken = ids(agent.lease(max_files=3))
    assert other.lease()["files"] == []
    with write_transaction():
        Delivery.update(lease_until=utcnow() - timedelta(seconds=1)).execute()
    assert ids(other.lease()) == taken
    assert {row.claimed_by for row in Delivery.select()} == {"host-b-2"}
    assert {row.attempts for row in Delivery.select()} == {2}


def test_heartbeats_keep_the_leases_and_show_the_agent(agent, other, files):
    agent.lease(max_files=3)
    with write_transaction():
        Delivery.update(lease_until=utcnow() + timedelta(seconds=1)).execute()
    beat = {
        "host": "workflow-01",
        "pid": 4242,
        "version": "0.1.0",
        "watch_mode": "native",
        "queue_length": 3,
        "heartbeat_seconds": 30,
    }
    response = agent.post("/heartbeat", beat)
    assert response.get_json()["leases"] == 3
    assert min(row.lease_until for row in Delivery.select()) > utcnow() + timedelta(seconds=80)
    with write_transaction():
        Delivery.update(lease_until=utcnow() - timedelta(seconds=1)).execute()
    row = AgentHeartbeat.get(AgentHeartbeat.agent_id == "host-a-1")
    assert (row.host, row.queue_length, row.heartbeat_seconds) == ("workflow-01", 3, 30)
    assert row.token.name == "hotfolder-1" and row.address == "127.0.0.1"
    stopped = agent.post("/heartbeat", beat | {"stopped": True, "release": [files[0].id]})
    assert stopped.status_code == 200
    assert AgentHeartbeat.get().stopped_at is not None
    assert ids(other.lease()) == [files[0].id], "released: free for others at once"


def test_a_lease_whose_answer_was_lost_comes_back_unless_the_agent_holds_it(agent, files):
    first = ids(agent.lease(max_files=2))
    assert ids(agent.lease(max_files=10, holding=first)) == [files[2].id]
    again = agent.lease(max_files=10, holding=[files[2].id])
    assert ids(again) == first, "lost on the way: handed out again"


def test_after_a_restart_an_agent_learns_what_became_of_its_files(agent, other, settings, files):
    first, second, third = files
    assert ids(agent.lease(file_ids=[first.id], max_files=1)) == [first.id]
    assert agent.confirm(first, "/hot/A-100/Seite 0.pdf")["outcome"] == "confirmed"
    assert ids(other.lease(file_ids=[second.id], max_files=1)) == [second.id]
    with write_transaction():
        OrderFile.update(state=OrderFile.STATE_DELETED).where(OrderFile.id == third.id).execute()
    answer = agent.lease(file_ids=[first.id, second.id, third.id, 999], max_files=1)
    refused = {entry["file_id"]: entry for entry in answer["refused"]}
    assert answer["files"] == []
    assert refused[first.id] == {
        "file_id": first.id,
        "reason": "delivered",
        "path": "/hot/A-100/Seite 0.pdf",
        "mine": True,
    }
    assert refused[second.id]["reason"] == "leased" and not refused[second.id]["mine"]
    assert refused[third.id]["reason"] == "gone" and refused[999]["reason"] == "gone"


def test_a_waiting_lease_request_is_answered_as_soon_as_a_file_turns_clean(agent, app, settings):
    order = make_order(settings, "A-200")
    staged = received(settings, order, "spaet.pdf", b"late" * 1000)
    answers = []
    started = time.monotonic()

    def wait_for_work():
        with app.app_context():
            answers.append((agent.lease(wait=10), time.monotonic()))

    waiting = threading.Thread(target=wait_for_work)
    waiting.start()
    time.sleep(0.5)
    scanned_and_checked(settings, staged.id)
    cleaned = time.monotonic()
    waiting.join(timeout=15)
    [(answer, answered)] = answers
    assert ids(answer) == [staged.id]
    assert answered - started > 0.5, "it waited"
    assert answered - cleaned < 0.5, "and answered within half a second of the file"


def test_a_clean_file_waits_for_its_preflight_and_is_leased_with_the_result(agent, settings):
    order = make_order(settings, "A-300")
    staged = received(settings, order, "Flyer.pdf", print_pdf(bleed_mm=None))
    scan_received(settings, make_scanner(settings), staged.id)
    assert agent.lease()["files"] == [], "not before the preflight"
    preflight_file(settings, staged.id)
    [leased] = agent.lease()["files"]
    assert leased["id"] == staged.id
    preflight = leased["preflight"]
    assert preflight["status"] == "warnings" and preflight["file_type"] == "pdf"
    assert preflight["page_count"] == 1
    [no_bleed] = [f for f in preflight["findings"] if f["code"] == "bleed_missing"]
    # The sentence the job notification carries, in the staff's language (de).
    assert no_bleed["message"].startswith("Kein Beschnitt auf Seite 1.")


def test_a_file_whose_preflight_does_not_end_is_leased_after_the_wait(agent, settings):
    order = make_order(settings, "A-301")
    staged = received(settings, order, "Flyer.pdf", print_pdf())
    scan_received(settings, make_scanner(settings), staged.id)
    assert agent.lease()["files"] == []
    with write_transaction():  # the worker was down all that time
        OrderFile.update(scanned_at=utcnow() - PREFLIGHT_WAIT - timedelta(seconds=1)).where(
            OrderFile.id == staged.id
        ).execute()
    [leased] = agent.lease()["files"]
    assert leased["id"] == staged.id and leased["preflight"] is None


def test_decided_proofs_are_handed_out_until_an_agent_placed_their_approval_file(agent, settings):
    order = make_order(settings, "A-400")
    without_hotfolder = make_order(settings, "A-401", "K9", create_hotfolder=False)
    first = decided_proof(order, 1, "rejected")
    second = decided_proof(order, 2, "approved")
    decided_proof(without_hotfolder)
    with write_transaction():  # asked for, not decided: nothing for the workflow yet
        Proof.create(order=order, version=3, file_name="Proof 3.pdf", file_size=1, sha256="0")
    answer = agent.get("/approvals").get_json()["approvals"]
    assert [(a["id"], a["file_name"]) for a in answer] == [
        (first.id, "A-400_proof-1.xml"),
        (second.id, "A-400_proof-2.xml"),
    ]
    decision = answer[1]["record"]["proof"]["decision"]
    assert (decision["result"], decision["login"], decision["comment"]) == (
        "approved",
        "k1",
        "Passt so.",
    )
    assert answer[1]["record"]["order"]["number"] == "A-400"
    placed = agent.post("/approvals/placed", {"proof_ids": [first.id]})
    assert placed.get_json() == {"placed": 1}
    assert agent.post("/approvals/placed", {"proof_ids": [first.id]}).get_json() == {"placed": 0}
    assert [a["id"] for a in agent.get("/approvals").get_json()["approvals"]] == [second.id]
    assert Proof.get_by_id(first.id).approval_placed_at is not None


def test_a_waiting_lease_request_ends_empty_after_its_wait(agent, app):
    started = time.monotonic()
    answer = agent.lease(wait=0.3)
    assert answer["files"] == [] and 0.3 <= time.monotonic() - started < 2


# --- downloads ------------------------------------------------------------------------------------


def test_downloads_continue_with_range_and_carry_the_checksum(agent, files):
    file = files[0]
    whole = agent.get(f"/files/{file.id}/content")
    assert whole.status_code == 200
    assert hashlib.sha256(whole.data).hexdigest() == file.sha256
    digest = base64.b64encode(bytes.fromhex(file.sha256)).decode()
    assert whole.headers["Repr-Digest"] == f"sha-256=:{digest}:"
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = agent.get(f"/files/{file.id}/content", Range="bytes=1000-")
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000-{file.size - 1}/{file.size}"
    assert part.data == whole.data[1000:]
    assert (
        agent.get(f"/files/{file.id}/content", Range=f"bytes={file.size + 5}-").status_code == 416
    )


def test_several_small_files_come_in_one_answer_in_the_order_asked(agent, files, settings):
    order = make_order(settings, "A-400", "K4", create_hotfolder=False)
    portal_only = clean(settings, order, "portal.pdf", b"y" * 100)
    asked = [files[2].id, 999, files[0].id, portal_only.id]
    response = agent.post("/files/content", {"file_ids": asked})
    assert response.status_code == 200
    assert response.mimetype == "application/x-ptportal-files"
    body = response.data
    assert int(response.headers["Content-Length"]) == len(body)
    expected = b""
    for file_id in asked:
        file = next((f for f in files if f.id == file_id), None)
        if file is None:
            expected += f"{file_id} -\n".encode()
        else:
            data = agent.get(f"/files/{file.id}/content").data
            expected += f"{file.id} {len(data)}\n".encode() + data
    assert body == expected
    too_many = agent.post("/files/content", {"file_ids": list(range(1, 66))})
    assert too_many.status_code == 400 and too_many.get_json()["field"] == "file_ids"


def test_only_clean_uploads_for_a_hotfolder_are_handed_out(agent, settings, app):
    order = make_order(settings, "A-300")
    waiting = received(settings, order, "ungescannt.pdf", b"x" * 100)
    assert agent.get(f"/files/{waiting.id}/content").status_code == 404
    without = make_order(settings, "A-301", "K2", create_hotfolder=False)
    portal_only = clean(settings, without, "portal.pdf", b"y" * 100)
    assert agent.get(f"/files/{portal_only.id}/content").status_code == 404
    assert agent.lease()["files"] == []
    assert agent.get("/files").get_json()["files"] == []


# --- confirmations --------------------------------------------------------------------------------


def test_a_confirmed_file_is_in_the_hotfolder_once_and_may_be_confirmed_again(agent, files):
    file = files[0]
    agent.lease(file_ids=[file.id], max_files=1)
    first = agent.confirm(file, "/hot/K1/A-100/Seite 0.pdf")
    again = agent.confirm(file, "/hot/K1/A-100/Seite 0.pdf")
    assert first["outcome"] == again["outcome"] == "confirmed"
    row = Delivery.get(Delivery.file == file.id)
    assert (row.state, row.hotfolder_path) == (Delivery.STATE_DONE, "/hot/K1/A-100/Seite 0.pdf")
    assert row.placed_at.isoformat() == "2026-05-04T10:00:00"
    assert OrderFile.get_by_id(file.id).delivered_at is not None
    assert Notification.select().where(Notification.kind == "files_delivered").count() == 1
    assert agent.confirm(file, "/elsewhere/x.pdf")["outcome"] == "delivered"
    assert file.id not in ids(agent.lease())


def test_confirmations_of_another_agents_file_or_a_wrong_checksum_are_refused(agent, other, files):
    first, second = files[0], files[1]
    other.lease(file_ids=[first.id], max_files=1)
    refused = agent.confirm(first)
    assert refused["outcome"] == "leased" and "another agent" in refused["message"]
    agent.lease(file_ids=[second.id], max_files=1)
    wrong = agent.confirm(second, sha256="0" * 64)
    assert wrong["outcome"] == "gone" and "SHA-256" in wrong["message"]
    assert Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count() == 0
    with write_transaction():
        Delivery.update(lease_until=utcnow() - timedelta(seconds=1)).execute()
    assert agent.confirm(first)["outcome"] == "confirmed", "a lease run out is nobody's"


def test_bodies_are_checked_field_by_field(agent):
    response = agent.post("/deliveries", {"deliveries": [{"file_id": "x"}]})
    assert response.status_code == 400 and response.get_json()["field"] == "file_id"
    response = agent.post("/leases", {"max_files": 1000})
    assert response.status_code == 400 and response.get_json()["field"] == "max_files"
    response = agent.client.post("/api/v1/agent/heartbeat", data="not json", headers=agent.headers)
    assert response.status_code == 400


# --- problems and notifications -----------------------------------------------------------------


def test_problems_are_recorded_once_counted_and_closed(agent, files, staff):
    file = files[0]
    agent.lease(file_ids=[file.id], max_files=1)
    problem = {
        "action": "deliver",
        "path": "/hot/K1/A-100",
        "reason": "No space left on device (errno 28)",
        "file_id": file.id,
    }
    assert agent.post("/errors", problem).status_code == 201
    assert agent.post("/errors", problem).status_code == 200
    row = AgentError.get()
    assert (row.occurrences, row.order.project_no, row.file_id) == (2, "A-100", file.id)
    page = staff.get("/staff/hotfolder/").text
    assert "No space left on device" in page and 'data-stage="delivery_failed"' in page
    agent.post("/errors/resolved", {"paths": ["/hot/K1/A-100"], "file_ids": [file.id]})
    assert AgentError.get().resolved_at is not None
    assert Delivery.get(Delivery.file == file.id).error == ""


def test_a_notification_is_recorded_and_mailed_once(agent, files):
    file = files[0]
    agent.lease(file_ids=[file.id], max_files=1)
    agent.confirm(file)
    written = {"file_name": "A-100_000001.xml", "file_ids": [file.id], "xml": "<jobNotification/>"}
    unknown = {"file_name": "A-100_000099.xml", "file_ids": [99], "xml": "<jobNotification/>"}
    answer = agent.post("/notifications", {"notifications": [written, unknown]}).get_json()
    assert answer["notifications"][0]["mailed"] is True
    assert "does not exist" in answer["notifications"][1]["error"]
    again = agent.post("/notifications", {"notifications": [written]})
    assert again.status_code == 201
    assert JobNotification.select().count() == 1
    [attachment] = MailAttachment.select()
    assert attachment.file_name == "A-100_000001.xml"
    assert bytes(attachment.content) == b"<jobNotification/>"
    assert attachment.mail.recipients == "avor@druckerei.example"
    assert Delivery.get(Delivery.file == file.id).notification_id is not None


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


TUS = {"Tus-Resumable": "1.0.0"}


def test_an_agent_uploads_a_staff_file_that_is_scanned_like_any_upload(
    agent, other, client, files, settings
):
    data = b"%PDF-1.7 proof " * 2000
    created = agent.client.post(
        "/api/v1/agent/orders/A-100/uploads",
        headers=agent.headers
        | TUS
        | {
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(
                filename="Proof.pdf",
                folder="Final",
                customer_no="K1",
                source="/hot/K1/A-100/_to_customer/Final/Proof.pdf",
                agent_id="host-a-1",
            ),
        },
    )
    assert created.status_code == 201, created.get_json()
    location = created.headers["Location"]
    assert location.startswith("/api/v1/agent/uploads/")
    half = len(data) // 2
    patch = {"Content-Type": "application/offset+octet-stream"}
    first = client.patch(
        location, data=data[:half], headers=agent.headers | TUS | patch | {"Upload-Offset": "0"}
    )
    assert first.status_code == 204
    stranger = create_token("other-agent", SCOPE_AGENT)
    assert (
        client.head(location, headers={"Authorization": f"Bearer {stranger}"} | TUS).status_code
        == 404
    )
    head = client.head(location, headers=agent.headers | TUS)
    assert head.headers["Upload-Offset"] == str(half)
    rest = client.patch(
        location,
        data=data[half:],
        headers=agent.headers | TUS | patch | {"Upload-Offset": str(half)},
    )
    assert rest.status_code == 204
    transfer = OutboundTransfer.get()
    assert transfer.state == OutboundTransfer.STATE_SENT and transfer.token.name == "hotfolder-1"
    file = OrderFile.get_by_id(transfer.file_id)
    assert (file.folder, file.state, file.display_name) == ("Final", "clean", "Proof.pdf")
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.events[0].detail == "/hot/K1/A-100/_to_customer/Final/Proof.pdf"


def test_a_staff_file_chunk_and_a_batch_of_notifications_may_be_larger_than_a_form(
    agent, client, files
):
    # The portal takes forms of up to 1 MiB; a tus chunk may be [portal] upload_chunk_bytes
    # (the agent sends up to 16 MiB) and a batch of notifications 16 MiB.
    data = b"%PDF-1.7 proof " * 150_000
    assert len(data) > 2 * 1024 * 1024
    created = agent.client.post(
        "/api/v1/agent/orders/A-100/uploads",
        headers=agent.headers
        | TUS
        | {
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="Proof.pdf", folder="Final", customer_no="K1"),
        },
    )
    assert created.status_code == 201, created.get_json()
    patch = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    sent = client.patch(created.headers["Location"], data=data, headers=agent.headers | TUS | patch)
    assert sent.status_code == 204, sent.get_data(as_text=True)[:300]
    assert sent.headers["Upload-Offset"] == str(len(data))

    xml = "<jobNotification>" + "<!-- Seite -->" * 100_000 + "</jobNotification>"
    written = {"file_name": "A-100_000099.xml", "file_ids": [99], "xml": xml}
    answer = agent.post("/notifications", {"notifications": [written]})
    assert answer.status_code == 201, answer.get_data(as_text=True)[:300]
    assert "does not exist" in answer.get_json()["notifications"][0]["error"]


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({"folder": "Eingehend"}, 403),
        ({"folder": "Final", "customer_no": "K9"}, 404),
        ({"folder": "Final", "filename": "../x.pdf"}, 400),
    ],
)
def test_agent_uploads_go_only_into_the_staff_folders_of_the_named_customers_order(
    agent, files, values, status
):
    values = {"filename": "x.pdf"} | values
    response = agent.client.post(
        "/api/v1/agent/orders/A-100/uploads",
        headers=agent.headers
        | TUS
        | {"Upload-Length": "10", "Upload-Metadata": metadata(**values)},
    )
    assert response.status_code == status, response.get_json()
    assert OutboundTransfer.select().count() == 0


# --- the OpenAPI document and the tokens page ----------------------------------------------------


def test_the_openapi_document_lists_every_agent_endpoint(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if path.startswith("/agent/")
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("agent_api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            path = path.replace("{upload_key}", "{key}")
            routes |= {(path, m.lower()) for m in rule.methods - {"OPTIONS"}}
    # Flask answers HEAD for every GET route by itself.
    routes -= {(path, "head") for path, method in set(routes) if method == "get"}
    assert documented == routes
    for path, method in documented:
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"agentToken": []}]
        assert {"401", "403"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["agentToken"]["scheme"] == "bearer"


@pytest.fixture
def staff(app, settings):
    create_staff(settings, "chef", "Chef", "", True, PASSWORD)
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"username": "chef", "password": PASSWORD, "csrf_token": token}
    assert browser.post("/staff/login", data=form).status_code == 302
    return browser


def test_staff_create_an_agent_token_once_see_its_last_use_and_revoke_it(staff, client):
    page = staff.get("/staff/tokens/").text
    assert 'name="scope" value="agent"' in page
    created = staff.post(
        "/staff/tokens/",
        data={"name": "workflow-server", "scope": "agent", "csrf_token": csrf_from(page)},
    )
    token = re.search(r"<code>(pta_[\w-]+)</code>", created.text).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/agent/files", headers=headers).status_code == 200
    assert client.get("/api/v1/orders/x", headers=headers).status_code == 403
    listing = staff.get("/staff/tokens/").text
    assert token not in listing, "shown once"
    row = re.search(r'<tr id="token-(\d+)" data-scope="agent">(.*?)</tr>', listing, re.S)
    assert "Hotfolder agent" in row.group(2) and "127.0.0.1" in row.group(2)
    revoked = staff.post(
        f"/staff/tokens/{row.group(1)}/revoke", data={"csrf_token": csrf_from(listing)}
    )
    assert revoked.status_code == 302
    assert client.get("/api/v1/agent/files", headers=headers).status_code == 401


def test_the_hotfolder_page_shows_the_agents_token_host_and_queue(staff, agent, files):
    agent.post(
        "/heartbeat",
        {
            "host": "workflow-01",
            "pid": 7,
            "version": "0.1.0",
            "queue_length": 5,
            "heartbeat_seconds": 30,
        },
    )
    html = staff.get("/staff/hotfolder/").text
    row = re.search(r'<tr class="agent" data-agent="host-a-1">(.*?)</tr>', html, re.S).group(1)
    assert "workflow-01 (PID 7)" in row and "hotfolder-1" in row and ">5<" in row
    assert "running" in row
