"""Faults and hostile answers: the agent against a portal that breaks, lies or goes away.

A real portal that is down, then up (gunicorn over TLS), and a hostile one: an HTTPS
server in this process answering the agent endpoints from a script — wrong checksums,
bodies shorter or longer than announced, ranges that do not fit, names that climb out of
the hotfolder, server errors, bodies that stall. Whatever it says, the agent writes
nothing outside the customer's hotfolder, keeps no corrupt file and reports the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from agent_helpers import (
    AgentProcess,
    agent_dir,
    all_names,
    clean_upload,
    hotfolder_of,
    make_order,
    notifications,
    portal_copy,
    portal_host,
    serve,
    stop_serving,
    visible_files,
    wait_for,
)
from conftest import write_ini

from shared.config import load_agent_settings
from shared.db import database
from shared.models import AgentError, Delivery

# --- a hostile portal -------------------------------------------------------------------------


def approval(version: int = 3) -> dict:
    """An approval record as the portal hands it out."""
    return {
        "order": {
            "number": "A1",
            "job_description": "Flyer",
            "due_date": None,
            "customer": {"number": "K1", "name": "Kunde"},
        },
        "proof": {
            "version": version,
            "state": "approved",
            "file": {
                "name": "Proof.pdf",
                "stored_name": "Proof.pdf",
                "folder": "In Bearbeitung",
                "size": 10,
                "sha256": "a" * 64,
            },
            "requested_at": "2026-05-04T09:00:00Z",
            "requested_by": "Anna",
            "superseded_at": None,
            "decision": {
                "result": "approved",
                "decided_at": "2026-05-04T10:00:00Z",
                "login": "k1",
                "address": "203.0.113.5",
                "comment": "",
                "sha256": "a" * 64,
            },
        },
    }


def announced(file_id: int, data: bytes, **changes) -> dict:
    """A file entry as the portal announces it (``changes`` replace fields)."""
    entry = {
        "id": file_id,
        "folder": "Eingehend",
        "name": f"Datei {file_id}.pdf",
        "stored_name": f"Datei {file_id}.pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "uploaded_at": "2026-05-04T10:00:00Z",
        "order": {
            "project_no": "A1",
            "job_description": "Flyer",
            "due_date": None,
            "customer": {"customer_no": "K1", "name": "Kunde"},
            "contact": None,
        },
        "content_url": f"/api/v1/agent/files/{file_id}/content",
    }
    order = changes.pop("order", {})
    entry["order"] = entry["order"] | order
    return entry | changes


class HostilePortal:
    """The agent endpoints over HTTPS, answered from ``files`` and per-file behaviours."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        certificate = directory / "hostile.pem"
        self.ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(certificate)
        )
        self.files: list[dict] = []
        self.contents: dict[int, Callable] = {}
        self.leased = False
        self.errors: list[dict] = []
        self.confirmed: list[dict] = []
        self.requests: list[str] = []
        self.lease_status = 200
        self.bundle: Callable | None = None  # answers POST /files/content
        self.approvals: list[dict] = []  # answers GET /approvals
        self.approvals_placed: list[int] = []
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _json(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.removeprefix("/api/v1/agent")
                portal.requests.append(f"POST {path}")
                if path == "/leases":
                    if portal.lease_status != 200:
                        portal.lease_status, status = 200, portal.lease_status
                        return self._json({"error": "try later"}, status)
                    if not portal.leased:
                        portal.leased = True
                        return self._json({"files": portal.files, "refused": []})
                    time.sleep(min(body.get("wait", 0), 1.0))
                    return self._json({"files": [], "refused": []})
                if path == "/deliveries":
                    portal.confirmed += body["deliveries"]
                    outcomes = [
                        {"file_id": d["file_id"], "outcome": "confirmed", "path": d["path"]}
                        for d in body["deliveries"]
                    ]
                    return self._json({"deliveries": outcomes})
                if path == "/errors":
                    portal.errors.append(body)
                if path == "/approvals/placed":  # handed out no more, as the portal does
                    portal.approvals_placed += body["proof_ids"]
                    portal.approvals = [
                        a for a in portal.approvals if a["id"] not in body["proof_ids"]
                    ]
                if path == "/files/content":
                    if portal.bundle is None:
                        return self._json({"error": "not here"}, 404)
                    return portal.bundle(self, body["file_ids"])
                return self._json({})

            def do_GET(self) -> None:
                path = self.path.removeprefix("/api/v1/agent")
                portal.requests.append(f"GET {path} {self.headers.get('Range', '')}".strip())
                if path.startswith("/orders"):
                    return self._json({"orders": []})
                if path == "/approvals":
                    return self._json({"approvals": portal.approvals})
                match = re.fullmatch(r"/files/(\d+)/content", path)
                if match is None:
                    return self._json({"error": "no"}, 404)
                portal.contents[int(match.group(1))](self, self.headers.get("Range"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certificate))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler, data: bytes, *, status: int = 200, length: int | None = None, **headers):
    """Answer with ``data``; ``length`` announces another Content-Length than sent."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(data) if length is None else length))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(data)
    if length is not None and length != len(data):
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(2)


def offset_of(range_header: str | None) -> int:
    return int(range_header.removeprefix("bytes=").rstrip("-")) if range_header else 0


def whole(data: bytes):
    """An honest answer (206 for a Range)."""

    def answer(handler, range_header):
        start = offset_of(range_header)
        if start:
            rest = data[start:]
            send(
                handler,
                rest,
                status=206,
                Content_Range=f"bytes {start}-{len(data) - 1}/{len(data)}",
            )
        else:
            send(handler, data)

    return answer


@pytest.fixture
def hostile(tmp_path):
    server = HostilePortal(tmp_path)
    yield server
    server.close()


def hostile_agent(tmp_path: Path, portal: HostilePortal, **agent):
    directory = tmp_path / "agent"
    directory.mkdir()
    portal.ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    values = {
        "portal_url": portal.url,
        "token": "pta_hostile",
        "ca_file": "ca.pem",
        "hotfolder_root": "hotfolders",
        "notification_dir": "notifications",
        "state_dir": "state",
        "batch_window_seconds": "0",
        "heartbeat_seconds": "1",
        "rescan_seconds": "60",
        "timeout_seconds": "2",
    } | agent
    return load_agent_settings(write_ini(directory, {"agent": values}))


@pytest.fixture
def agents():
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def files_under(directory: Path) -> set[str]:
    return {
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and "state" not in path.parts and not path.name.endswith(".log")
    }


def test_hostile_answers_leave_no_corrupt_file_and_nothing_outside_the_hotfolder(
    tmp_path, hostile, agents
):
    good = os.urandom(300_000)
    hostile.files = [
        announced(1, good),
        announced(2, b"what was announced", sha256=hashlib.sha256(b"announced").hexdigest()),
        announced(3, good[:1000]),
        announced(4, good[:2000]),
        announced(5, good, stored_name="../../escaped.pdf"),
        announced(6, good, stored_name=str(tmp_path / "absolute.pdf")),
        announced(7, good, stored_name="nul\x00byte.pdf"),
        announced(8, good, stored_name="zeile\r\numbruch.pdf"),
        announced(9, good, stored_name="CON.pdf"),
        announced(10, good, order={"project_no": "../A1"}),
        announced(11, good, order={"customer": {"customer_no": "/etc", "name": "x"}}),
        announced(12, good, size="many"),
        announced(13, good, preflight={"status": "<script>", "file_type": "pdf"}),
        announced(14, good, preflight={"status": "ok", "file_type": "pdf", "page_sizes": [{}]}),
    ]
    hostile.approvals = [
        {"id": 1, "file_name": "../../A1_proof-1.xml", "record": approval()},
        {"id": 2, "file_name": "A1_proof-2.xml", "record": {"proof": {"version": 2}}},
        {"id": 3, "file_name": "A1_proof-3.xml", "record": approval()},
    ]
    hostile.contents = {1: whole(good), 2: whole(b"what was announced")}
    hostile.contents[3] = lambda handler, _range: send(handler, good[:1000], length=5000)
    hostile.contents[4] = lambda handler, _range: send(handler, good[:1500])
    for file_id in range(5, 15):
        hostile.contents[file_id] = whole(good)
    settings = hostile_agent(tmp_path, hostile)
    agent = AgentProcess(settings)
    agents.append(agent)

    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: len(notifications(settings)) == 1, timeout=30)
    wait_for(lambda: len({e.get("file_id") for e in hostile.errors}) >= 13, timeout=30)
    wait_for(lambda: hostile.approvals_placed, timeout=30)
    time.sleep(0.5)
    assert visible_files(hotfolder) == ["Datei 1.pdf"]
    assert (hotfolder / "Datei 1.pdf").read_bytes() == good
    assert not [name for name in all_names(hotfolder) if name.startswith(".")], "no corrupt copy"
    outside = files_under(tmp_path) - {
        "hostile.pem",
        "agent/client.ini",
        "agent/ca.pem",
        "agent/hotfolders/K1/A1/Datei 1.pdf",
        *(f"agent/notifications/{path.name}" for path in notifications(settings)),
        "agent/notifications/A1_proof-3.xml",
    }
    assert outside == set(), "nothing written anywhere else"
    assert hostile.approvals_placed == [3]
    approval_reasons = " ".join(e["reason"] for e in hostile.errors if "file_id" not in e)
    assert "unsafe approval file name '../../A1_proof-1.xml'" in approval_reasons
    assert "proof 2: the approval cannot be written" in approval_reasons
    reasons = {error.get("file_id"): error["reason"] for error in hostile.errors}
    assert "SHA-256" in reasons[2]
    assert "announced 5000 bytes where 1000 were missing (too long)" in reasons[3]
    assert "announced 1500 bytes where 2000 were missing (too short)" in reasons[4]
    for file_id in (5, 6, 7, 8, 9):
        assert "unsafe file name" in reasons[file_id]
    for file_id in (10, 11):
        assert "unsafe customer or order number" in reasons[file_id]
    assert "size" in reasons[12]
    assert "unknown preflight status '<script>'" in reasons[13]
    assert "the preflight cannot be written" in reasons[14]
    assert [c["file_id"] for c in hostile.confirmed] == [1]
    assert agent.terminate() == 0


def test_a_short_body_continues_with_range_and_a_wrong_content_range_is_refused(
    tmp_path, hostile, agents
):
    first, second, third = os.urandom(3_000_000), os.urandom(3_000_000), os.urandom(3_000_000)
    calls: dict[int, int] = {1: 0, 2: 0, 3: 0}

    def cut_then_whole(data: bytes, file_id: int):
        def answer(handler, range_header):
            calls[file_id] += 1
            if calls[file_id] == 1:
                send(handler, data[:1_000_000], length=len(data))  # the connection breaks
            else:
                whole(data)(handler, range_header)

        return answer

    def cut_then_wrong_range(handler, range_header):
        calls[2] += 1
        if calls[2] == 1:
            send(handler, second[:1_000_000], length=len(second))
        else:
            send(handler, second[5:], status=206, Content_Range=f"bytes 5-2999999/{len(second)}")

    def range_ignored(handler, range_header):
        calls[3] += 1
        if calls[3] == 1:
            send(handler, third[:500_000], length=len(third))
        else:
            send(handler, third)  # 200 with the whole file although a range was asked

    hostile.files = [announced(1, first), announced(2, second), announced(3, third)]
    hostile.contents = {1: cut_then_whole(first, 1), 2: cut_then_wrong_range, 3: range_ignored}
    settings = hostile_agent(tmp_path, hostile)
    agents.append(AgentProcess(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: len(visible_files(hotfolder)) == 2, timeout=30)
    wait_for(lambda: hostile.errors, timeout=30)
    assert (hotfolder / "Datei 1.pdf").read_bytes() == first
    assert (hotfolder / "Datei 3.pdf").read_bytes() == third
    assert "GET /files/1/content bytes=1000000-" in hostile.requests
    assert {error["file_id"] for error in hostile.errors} == {2}
    assert "bytes 1000000-2999999/3000000" in hostile.errors[0]["reason"]
    wait_for(lambda: not [n for n in all_names(hotfolder) if n.startswith(".")])
    assert agents[0].terminate() == 0


def test_server_errors_and_stalled_bodies_are_tried_again_and_the_file_arrives(
    tmp_path, hostile, agents
):
    data = os.urandom(5_000_000)
    calls = {"count": 0}

    def stall_then_whole(handler, range_header):
        calls["count"] += 1
        if calls["count"] == 1:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            # What arrives whole is kept (the agent reads in pieces of 1 MiB).
            handler.wfile.write(data[:2_500_000])
            handler.wfile.flush()
            time.sleep(4)  # longer than the agent's timeout_seconds (2)
            return
        whole(data)(handler, range_header)

    hostile.lease_status = 503
    hostile.files = [announced(1, data)]
    hostile.contents = {1: stall_then_whole}
    settings = hostile_agent(tmp_path, hostile)
    agent = AgentProcess(settings)
    agents.append(agent)
    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: visible_files(hotfolder) == ["Datei 1.pdf"], timeout=40)
    assert (hotfolder / "Datei 1.pdf").read_bytes() == data
    assert "GET /files/1/content bytes=2097152-" in hostile.requests, hostile.requests
    log = agent.log
    assert log.count("cannot be reached") <= 2 and log.count("answers again") >= 1
    assert agent.terminate() == 0


def test_sigterm_stops_the_agent_within_five_seconds_in_the_middle_of_a_slow_body(
    tmp_path, hostile, agents
):
    data = os.urandom(5_000_000)

    def trickle(handler, range_header):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for start in range(0, len(data), 10_000):
            try:
                handler.wfile.write(data[start : start + 10_000])
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    hostile.files = [announced(1, data)]
    hostile.contents = {1: trickle}
    settings = hostile_agent(tmp_path, hostile, timeout_seconds="30")
    agent = AgentProcess(settings)
    agents.append(agent)
    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: [n for n in all_names(hotfolder) if n.startswith(".ptportal-")], timeout=30)
    time.sleep(1)
    started = time.monotonic()
    assert agent.terminate(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert visible_files(hotfolder) == []


# --- the real portal, away and back ----------------------------------------------------------


def test_the_portal_away_and_back_is_said_once_each_and_nothing_is_lost(tmp_path, clamd, agents):
    host = portal_host(tmp_path / "portal", clamd)
    try:
        order = make_order(host.settings, "A1")
        file = clean_upload(host.settings, order, "Innenteil.pdf", os.urandom(500_000))
        settings = agent_dir(tmp_path / "agent", host)
        settings.hotfolder_root.write_text("a file where the hotfolders belong")
        agent = AgentProcess(settings)
        agents.append(agent)
        wait_for(lambda: "cannot be reached" in agent.log, timeout=30)
        time.sleep(3)
        assert agent.log.count("cannot be reached") == 1, "one line, not one per try"
        serve(host)
        wait_for(lambda: "answers again" in agent.log, timeout=60)
        prepare = AgentError.select().where(AgentError.action == "prepare")
        wait_for(prepare.exists, timeout=60)
        assert "cannot watch" in prepare.get().reason, "the problem met meanwhile arrives"
        assert agent.log.count("answers again") == 1
        settings.hotfolder_root.unlink()
        assert agent.terminate() == 0
        restarted = AgentProcess(settings, "restarted")
        agents.append(restarted)
        hotfolder = hotfolder_of(settings, "K1", "A1")
        wait_for(lambda: notifications(settings), timeout=60)
        assert (hotfolder / "Innenteil.pdf").read_bytes() == portal_copy(host.settings, file)
        assert Delivery.get().state == Delivery.STATE_DONE
        assert restarted.terminate() == 0
    finally:
        stop_serving(host)
        database.close()


def test_a_bundle_that_lies_or_breaks_off_keeps_no_wrong_file(tmp_path, hostile, agents):
    """Small files come several to an answer: a file with wrong bytes is refused, a line
    that announces the wrong size ends the answer there, and whatever the answer did not
    bring whole is fetched alone (resumed with Range)."""
    data = {n: os.urandom(200_000 + n) for n in range(1, 7)}
    hostile.files = [announced(n, data[n]) for n in data]
    hostile.contents = {n: whole(data[n]) for n in data}

    def bundle(handler, file_ids):
        parts = b""
        for file_id in file_ids:
            if file_id == 2:
                parts += f"2 {len(data[2])}\n".encode() + bytes(len(data[2]))  # wrong bytes
            elif file_id == 4:
                parts += f"4 {len(data[4]) + 7}\n".encode()  # not what was announced
                break
            else:
                parts += f"{file_id} {len(data[file_id])}\n".encode() + data[file_id]
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(parts)))
        handler.end_headers()
        handler.wfile.write(parts)

    hostile.bundle = bundle
    settings = hostile_agent(tmp_path, hostile)
    agents.append(AgentProcess(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    wait_for(lambda: len(visible_files(hotfolder)) == 4, timeout=30)
    wait_for(lambda: {e.get("file_id") for e in hostile.errors} >= {2, 4}, timeout=30)
    for n in (1, 3, 5, 6):
        assert (hotfolder / f"Datei {n}.pdf").read_bytes() == data[n]
    reasons = {error["file_id"]: error["reason"] for error in hostile.errors}
    assert "SHA-256" in reasons[2] and f"'4 {len(data[4]) + 7}'" in reasons[4]
    assert not (hotfolder / "Datei 2.pdf").exists()
    assert [r for r in hostile.requests if r.startswith("GET /files/5/content")], "alone"
    assert agents[0].terminate() == 0
