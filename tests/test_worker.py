"""The background worker: a real `ptportal worker` process delivers the outbox over SMTP, and
scans and preflights received files."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import base_sections, tasks_for, write_ini
from file_helpers import received
from print_data_helpers import print_pdf
from smtp_helpers import RecordingHandler, free_port, smtp_server

from shared.accounts.customers import upsert_customer
from shared.config import load_settings
from shared.db import bind_database, database, write_transaction
from shared.files.folders import create_order_folders
from shared.files.preflighting import preview_dir
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail
from shared.models import Order, OrderFile, OutboxMail
from shared.schema import init_database


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(params=["sqlite", "redis"])
def worker_setup(request, tmp_path):
    """A real worker on an SQLite queue (one host) or on Redis (several hosts)."""
    queue = "sqlite:///data/queue.db"
    if request.param == "redis":
        queue = request.getfixturevalue("redis_url")
    port = free_port()
    ini = write_ini(
        tmp_path,
        base_sections(
            port,
            worker={"queue_url": queue},
            smtp={"retry_first_seconds": 1, "retry_max_seconds": 1},
        ),
    )
    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database("Testdruck")
    tasks_for(settings, immediate=False).huey.flush()  # the session's Redis: nothing left over
    process = subprocess.Popen(
        [sys.executable, "-m", "portal", "--config", str(ini), "worker", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield settings, port
    process.terminate()
    output = process.communicate(timeout=15)[0]
    database.close()
    assert "Traceback" not in output, output


def queue_one(settings) -> OutboxMail:
    with write_transaction():
        return queue_mail(
            kind="test",
            sender=settings.smtp.email,
            recipients=["kunde@example.com"],
            mail=RenderedMail("Grüße", "Hallo Welt\n", "<p>Hallo Welt</p>"),
        )


def status_of(mail: OutboxMail) -> str:
    return OutboxMail.get_by_id(mail.id).status


def test_worker_delivers_what_the_portal_enqueues(worker_setup):
    settings, port = worker_setup
    handler = RecordingHandler()
    with smtp_server(handler, port=port):
        mail = queue_one(settings)
        tasks_for(settings, immediate=False).deliver_soon()
        assert wait_for(lambda: status_of(mail) == OutboxMail.STATUS_SENT)
    assert len(handler.received) == 1
    assert handler.received[0].message["Subject"] == "Grüße"
    assert handler.received[0].message["Message-ID"] == mail.message_id


def test_mail_waits_while_smtp_is_down_and_goes_out_later(worker_setup):
    settings, port = worker_setup
    mail = queue_one(settings)
    tasks_for(settings, immediate=False).deliver_soon()
    assert wait_for(lambda: OutboxMail.get_by_id(mail.id).attempts >= 1)
    row = OutboxMail.get_by_id(mail.id)
    assert row.status == OutboxMail.STATUS_PENDING
    assert row.last_error
    handler = RecordingHandler()
    with smtp_server(handler, port=port):
        time.sleep(1.1)  # the configured backoff
        tasks_for(settings, immediate=False).deliver_soon()
        assert wait_for(lambda: status_of(mail) == OutboxMail.STATUS_SENT)
    assert len(handler.received) == 1


def test_worker_scans_then_preflights_a_received_file(tmp_path, clamd):
    """The real consumer: the scan task places the file clean, then its preflight task runs."""
    clamav = {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}
    sections = base_sections(free_port(), worker={"queue_url": "sqlite:///data/queue.db"})
    ini = write_ini(tmp_path, sections | {"clamav": clamav})
    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database("Testdruck")
    with write_transaction():
        customer, _ = upsert_customer("K1", name="Kunde", email="k1@example.com")
        order = Order.create(project_no="A1", customer=customer, folders_created=True)
    create_order_folders(settings.storage.order_root, "K1", "A1")
    file = received(settings, order, "flyer.pdf", print_pdf(bleed_mm=None))
    command = [sys.executable, "-m", "portal", "--config", str(ini), "worker", "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        tasks_for(settings, immediate=False).scan_soon(file.id)
        assert wait_for(
            lambda: OrderFile.get_by_id(file.id).preflight_status == OrderFile.PREFLIGHT_WARNINGS
        )
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
        database.close()
    assert "Traceback" not in output, output
    assert (preview_dir(settings, file) / "thumbnail.png").is_file()
