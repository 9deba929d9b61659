"""A gunicorn worker killed in the middle of an upload: nothing the browser was told is
complete stays unscanned, and HEAD answers only what is recorded.

The test seam ``PTPORTAL_PAUSE_AT=upload_written`` (``shared.seams``) makes the worker stand
still after a PATCH wrote its bytes, before they are synced and recorded; the test then
SIGKILLs that worker there. gunicorn starts a new one, which does not pause again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from conftest import base_sections, write_ini
from smtp_helpers import free_port
from system_helpers import wait_until_serving

from shared.accounts.customers import upsert_customer
from shared.accounts.logins import create_login
from shared.accounts.passwords import PasswordVault
from shared.config import Settings, load_settings
from shared.db import bind_database, database, write_transaction
from shared.files.folders import create_order_folders
from shared.files.receiving import STEP_UPLOAD_WRITTEN, complete_stranded_uploads, staging_path
from shared.models import Order, OrderFile, PortalLogin
from shared.schema import init_database
from shared.seams import PAUSE_AT, PAUSE_MARKER

PASSWORD = "correct horse battery staple"
DATA = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024 + 8)  # an accepted type from its first bytes


@dataclass
class Portal:
    settings: Settings
    base_url: str
    opener: urllib.request.OpenerDirector
    csrf_token: str
    marker: object
    directory: object

    def tus(self, method: str, path: str, headers: dict, body: bytes | None = None):
        """One tus request on a connection of its own: (status, headers)."""
        host, port = urllib.parse.urlsplit(self.base_url).netloc.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.opener.cookiejar)
        headers = {
            "Tus-Resumable": "1.0.0",
            "X-CSRFToken": self.csrf_token,
            "Cookie": cookies,
        } | headers
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, dict(response.getheaders())
        finally:
            connection.close()

    def worker_pid_paused(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            assert time.monotonic() < deadline, "the worker never reached the seam"
            time.sleep(0.05)
        return int(self.marker.read_text().split()[1])


@contextmanager
def portal_with_customer(directory, clamd):
    """gunicorn (one worker, paused once at the seam) and a signed-in customer with order A1."""
    port = free_port()
    clamav = {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}
    sections = base_sections(
        2525,
        portal={"base_url": f"http://127.0.0.1:{port}"},
        worker={"queue_url": "sqlite:///data/queue.db"},
        clamav=clamav,
    )
    ini = write_ini(directory, sections)
    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database("Testdruck")
    with write_transaction():
        customer, _ = upsert_customer("K1", name="Kunde", portal_enabled=True)
        login = create_login(customer, state=PortalLogin.STATE_ACTIVE)
        login.password_hash = PasswordVault(settings.security).hash(PASSWORD)
        login.save()
        Order.create(project_no="A1", customer=customer, folders_created=True)
    create_order_folders(settings.storage.order_root, "K1", "A1")
    marker = directory / "paused"
    env = os.environ | {PAUSE_AT: STEP_UPLOAD_WRITTEN, PAUSE_MARKER: str(marker)}
    command = [sys.executable, "-m", "portal", "--config", str(ini), "serve"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
    with (directory / "portal.log").open("ab") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base_url = settings.portal.base_url
        wait_until_serving(base_url)
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        opener.cookiejar = _jar(opener)
        token = _csrf(opener.open(f"{base_url}/login").read())
        form = urllib.parse.urlencode({"csrf_token": token, "username": "k1", "password": PASSWORD})
        opener.open(f"{base_url}/login", data=form.encode())
        token = _csrf(opener.open(f"{base_url}/orders/A1").read())
        yield Portal(settings, base_url, opener, token, marker, directory)
    finally:
        server.terminate()
        server.wait(timeout=30)
        database.close()


def _jar(opener) -> http.cookiejar.CookieJar:
    for handler in opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return handler.cookiejar
    raise AssertionError("no cookie jar")


def _csrf(html: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()


def announce(portal: Portal, size: int) -> str:
    name = base64.b64encode("Broschüre.pdf".encode()).decode()
    status, headers = portal.tus(
        "POST",
        "/orders/A1/uploads",
        {"Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
    )
    assert status == 201
    return urllib.parse.urlsplit(headers["Location"]).path


def patch_and_kill(portal: Portal, location: str, offset: int, body: bytes) -> None:
    """Send a PATCH in the background, kill the worker at the seam, wait for its successor."""
    headers = {
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    sender = threading.Thread(
        target=lambda: _ignore_errors(portal.tus, "PATCH", location, headers, body), daemon=True
    )
    sender.start()
    os.kill(portal.worker_pid_paused(), signal.SIGKILL)
    sender.join(timeout=30)
    wait_until_serving(portal.base_url)


def _ignore_errors(function, *args) -> None:
    with contextlib.suppress(OSError):  # the worker died under the request
        function(*args)


def file_row(location: str) -> OrderFile:
    return OrderFile.get(OrderFile.upload_key == location.rsplit("/", 1)[1])


def head_offset(portal: Portal, location: str) -> int:
    status, headers = portal.tus("HEAD", location, {})
    assert status == 200
    return int(headers["Upload-Offset"])


def scan_queued(settings: Settings) -> int:
    from shared.worker import make_huey

    return make_huey(settings.worker.queue_url).pending_count()


def test_a_worker_killed_after_the_last_byte_leaves_an_upload_that_head_completes(tmp_path, clamd):
    with portal_with_customer(tmp_path, clamd) as portal:
        location = announce(portal, len(DATA))

        patch_and_kill(portal, location, 0, DATA)

        killed = file_row(location)
        assert killed.state == OrderFile.STATE_UPLOADING, "killed before the record"
        assert staging_path(portal.settings, killed).stat().st_size == len(DATA)
        assert head_offset(portal, location) == len(DATA)
        completed = file_row(location)
        assert completed.state == OrderFile.STATE_SCANNING
        assert completed.sha256 == hashlib.sha256(DATA).hexdigest()
        assert scan_queued(portal.settings) == 1
        assert "Traceback" not in (tmp_path / "portal.log").read_text()


def test_the_minute_sweep_completes_an_upload_nobody_asks_for_again(tmp_path, clamd):
    with portal_with_customer(tmp_path, clamd) as portal:
        location = announce(portal, len(DATA))
        patch_and_kill(portal, location, 0, DATA)
        assert file_row(location).state == OrderFile.STATE_UPLOADING

        completed = complete_stranded_uploads(portal.settings)

        assert completed == [file_row(location).id]
        assert file_row(location).sha256 == hashlib.sha256(DATA).hexdigest()
        assert complete_stranded_uploads(portal.settings) == [], "once"


def test_head_answers_only_recorded_bytes_and_the_upload_resumes_there(tmp_path, clamd):
    half = len(DATA) // 2
    with portal_with_customer(tmp_path, clamd) as portal:
        location = announce(portal, len(DATA))
        patch_and_kill(portal, location, 0, DATA[:half])
        assert staging_path(portal.settings, file_row(location)).stat().st_size == half

        offset = head_offset(portal, location)

        assert offset == 0, "the killed PATCH never recorded its bytes"
        headers = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        status, answer = portal.tus("PATCH", location, headers, DATA)
        assert (status, answer["Upload-Offset"]) == (204, str(len(DATA)))
        assert file_row(location).sha256 == hashlib.sha256(DATA).hexdigest()


def test_a_patch_after_the_kill_completes_the_upload_too(tmp_path, clamd):
    with portal_with_customer(tmp_path, clamd) as portal:
        location = announce(portal, len(DATA))
        patch_and_kill(portal, location, 0, DATA)

        headers = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        status, answer = portal.tus("PATCH", location, headers, DATA)

        assert (status, answer["Upload-Offset"]) == (409, str(len(DATA)))
        assert file_row(location).state == OrderFile.STATE_SCANNING
        assert scan_queued(portal.settings) == 1


@pytest.fixture(autouse=True)
def _no_seam_in_this_process(monkeypatch):
    monkeypatch.delenv(PAUSE_AT, raising=False)
