"""Benchmark 7, mail: a reply's way into its order's conversation, and a backlog's import.

Real parts on localhost: Debian's dovecot twice (one offering IDLE, one without IDLE,
as tests/dovecot_helpers.py starts them), a dedicated clamd (common.Clamd: the shipped
limits, the EICAR test signatures, its cache off) and the portal's SQLite database.

1. Latency: ``ptportal worker`` runs with a mailbox on each dovecot. A reply naming the
   order is APPENDed; the time until its message is in the database is measured, with
   IDLE (target ≤ 5 s) and polling every ``poll_interval_seconds`` (target ≤ interval
   + 2 s), the append at a random moment of the interval.
2. Backlog: 1,000 mails (or ``--mails``) wait in a mailbox; one reader imports them
   (``MailboxReader.read_once``, the worker's code) — target ≥ 20 mails/s.
3. The same backlog with every tenth mail carrying a 5 MiB PDF (random bytes, each
   different), scanned by two threads as ``ptportal worker --workers 2`` does while the
   reader goes on. The attachments' part = that run's time to the last file clean minus
   the plain backlog's time; baseline: ``clamdscan`` of the same files (clamd reads them
   itself, the way the portal's ``scan_mode = auto`` lets it). Target ≤ 1.2. How much of
   that part the IMAP download of the attachments took is printed beside it.

    .venv/bin/python bench/mail.py [--mails 1000] [--pdfs 100] [--replies 10]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

from common import (
    ROOT,
    Clamd,
    MiB,
    bind,
    heading,
    quick,
    report,
    stop,
    workdir,
    write_ini,
)

sys.path.insert(0, str(ROOT / "tests"))

from dovecot_helpers import Dovecot

IDLE_TARGET = 5.0
POLL_INTERVAL = 10
POLL_SLACK = 2.0
RATE_TARGET = 20.0
SCAN_TARGET = 1.2
PDF_BYTES = 5 * MiB
CUSTOMER = "anna@kunde.example"
MAILBOX = """
[mailbox:{name}]
host = localhost
port = {port}
user = {user}
password = {password}
ca_file = {ca_file}
address = auftraege@druckerei.example
poll_interval_seconds = {interval}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=300 if quick() else 1000)
    parser.add_argument("--pdfs", type=int, default=30 if quick() else 100)
    parser.add_argument("--replies", type=int, default=5 if quick() else 10)
    parser.add_argument("--polls", type=int, default=2 if quick() else 3)
    options = parser.parse_args()
    heading("7. Mail: reply latency, backlog import, attachments against clamdscan (bench/mail.py)")
    with workdir() as directory:
        clamd = Clamd(directory / "clamd").start()
        idle, plain = Dovecot(), Dovecot(capabilities="IMAP4rev1 LITERAL+ UIDPLUS")
        try:
            idle.start()
            plain.start()
            run(directory, clamd, idle, plain, options)
        finally:
            clamd.stop()
            idle.close()
            plain.close()


def run(directory: Path, clamd: Clamd, idle: Dovecot, plain: Dovecot, options) -> None:
    users = {name: idle.next_user() for name in ("replies", "backlog", "attachments")}
    users["polling"] = plain.next_user()
    for name, user in users.items():
        (plain if name == "polling" else idle).create_folder(user, "Processed")
    ini = write_ini(
        directory,
        0,
        clamd_conf=clamd.conf,
        clamd_address=str(clamd.socket),
        queue=f"sqlite:///{directory}/data/queue.db",
    )
    with ini.open("a", encoding="utf-8") as handle:
        for name, user in users.items():
            server = plain if name == "polling" else idle
            handle.write(
                MAILBOX.format(
                    name=name,
                    port=server.imaps_port,
                    user=user,
                    password=server.passwords[user],
                    ca_file=server.ca_file,
                    interval=POLL_INTERVAL,
                )
            )
    settings = seed(ini)
    latency(ini, idle, plain, users, options)
    plain_seconds = backlog(settings, idle, users["backlog"], options.mails, 0, directory)
    attachments(settings, clamd, idle, users["attachments"], options, plain_seconds, directory)


def seed(ini: Path):
    from shared.accounts.customers import add_contact, upsert_customer
    from shared.db import database, write_transaction
    from shared.files.folders import create_order_folders
    from shared.models import Order
    from shared.schema import init_database

    settings = bind(ini)
    init_database("Benchmark")
    with write_transaction():
        customer, _ = upsert_customer("BENCH", name="Benchmark", email="bench@example.com")
        add_contact(customer, CUSTOMER, "Anna Muster", favorite=True)
        Order.create(project_no="BENCH-1", customer=customer, folders_created=True)
    create_order_folders(settings.storage.order_root, "BENCH", "BENCH-1")
    database.close()
    return settings


def reply(number: int, attachment: bytes | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Anna Muster <{CUSTOMER}>"
    message["To"] = "auftraege@druckerei.example"
    message["Subject"] = f"Re: [Auftrag BENCH-1] Proof {number}"
    message["Message-ID"] = f"<bench-{number}-{os.getpid()}-{time.time_ns()}@kunde.example>"
    message.set_content(
        f"Guten Tag,\n\ndie Farben passen, Freigabe {number}.\n\n"
        "Am 4. Mai 2026 schrieb Druckerei:\n> Der Proof ist fertig.\n"
    )
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename=f"Datei {number}.pdf"
        )
    return message


def _imported(message_id: str) -> bool:
    from shared.models import OrderMessage, ReceivedMail

    return (
        OrderMessage.select()
        .join(ReceivedMail)
        .where(ReceivedMail.message_id == message_id)
        .exists()
    )


def _wait(condition, timeout: float) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter()
        time.sleep(0.02)
    return None


def latency(ini: Path, idle: Dovecot, plain: Dovecot, users: dict, options) -> None:
    from shared.db import database
    from shared.models import MailboxState

    worker = subprocess.Popen(
        [sys.executable, "-m", "portal", "--config", str(ini), "worker", "--workers", "2"],
        cwd=ROOT,
        stdout=(ini.parent / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        ready = _wait(
            lambda: (
                MailboxState.select().where(MailboxState.checked_at.is_null(False)).count()
                == len(users)
            ),
            60,
        )
        if ready is None:
            raise SystemExit(f"the worker's readers did not start: see {ini.parent}/worker.log")
        samples = []
        for number in range(options.replies):
            message = reply(number)
            started = time.perf_counter()
            idle.append(users["replies"], "INBOX", message)
            done = _wait(lambda m=message: _imported(m["Message-ID"]), 30)
            samples.append((done or float("inf")) - started)
            time.sleep(0.3)
        worst = max(samples)
        report(
            "mail",
            "reply → conversation, IDLE, worst",
            worst,
            "s",
            target=f"≤ {IDLE_TARGET:g} s",
            met=worst <= IDLE_TARGET,
            note=f"median {sorted(samples)[len(samples) // 2]:.2f} s of {len(samples)}",
        )
        samples = []
        for number in range(options.polls):
            time.sleep(random.uniform(0, POLL_INTERVAL))
            message = reply(1000 + number)
            started = time.perf_counter()
            plain.append(users["polling"], "INBOX", message)
            done = _wait(lambda m=message: _imported(m["Message-ID"]), POLL_INTERVAL * 3)
            samples.append((done or float("inf")) - started)
        worst = max(samples)
        report(
            "mail",
            f"reply → conversation, polling every {POLL_INTERVAL} s, worst",
            worst,
            "s",
            target=f"≤ {POLL_INTERVAL + POLL_SLACK:g} s",
            met=worst <= POLL_INTERVAL + POLL_SLACK,
            note=f"{len(samples)} replies",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        stop(worker)
        database.close()


def _append_backlog(server: Dovecot, user: str, mails: int, pdfs: int, directory: Path) -> None:
    """APPEND the backlog over one connection: every (mails // pdfs)-th with a fresh PDF."""
    every = mails // pdfs if pdfs else 0
    with server.imap(user) as connection:
        for number in range(mails):
            attachment = None
            if every and number % every == every - 1:
                attachment = b"%PDF-1.7\n" + os.urandom(PDF_BYTES - 9)
            raw = reply(number, attachment).as_bytes()
            status, data = connection.append("INBOX", None, None, raw)
            if status != "OK":
                raise SystemExit(f"APPEND failed: {data}")


class _TimedFetch:
    """Adds up the time ``fetch_to_file`` takes (the IMAP download), per mail size class."""

    def __init__(self) -> None:
        self.seconds = {"large": 0.0, "small": 0.0}
        self.counts = {"large": 0, "small": 0}

    def wrap(self, connection) -> None:
        original = connection.fetch_to_file

        def fetch(ref, target, max_bytes=None):
            started = time.perf_counter()
            try:
                return original(ref, target, max_bytes)
            finally:
                kind = "large" if ref.size > MiB else "small"
                self.seconds[kind] += time.perf_counter() - started
                self.counts[kind] += 1

        connection.fetch_to_file = fetch


def _import(settings, name: str, scanner_threads: int = 2) -> tuple[float, list[int], _TimedFetch]:
    """One reader pass over mailbox ``name``, scans on worker threads; (seconds, file ids)."""
    from shared.conversations.importing import MailImporter
    from shared.db import database
    from shared.files.intake import make_scanner, scan_received
    from shared.mail_intake.imap import open_mailbox

    mailbox = settings.mailbox(name)
    scanner = make_scanner(settings)
    files: list[int] = []
    lock = threading.Lock()

    def scan(file_id: int) -> None:
        try:
            scan_received(settings, scanner, file_id)
        finally:
            database.close()

    timed = _TimedFetch()
    with ThreadPoolExecutor(scanner_threads) as pool:

        def on_file(file_id: int) -> None:
            with lock:
                files.append(file_id)
            pool.submit(scan, file_id)

        importer = MailImporter(settings, mailbox, on_file)
        importer.clean_work()
        started = time.perf_counter()
        with open_mailbox(mailbox) as connection:
            timed.wrap(connection)
            report_ = importer.import_pending(connection)
    elapsed = time.perf_counter() - started
    if report_.imported == 0:
        raise SystemExit(f"mailbox {name}: nothing imported")
    return elapsed, files, timed


def backlog(settings, server: Dovecot, user: str, mails: int, pdfs: int, directory: Path) -> float:
    _append_backlog(server, user, mails, pdfs, directory)
    seconds, _files, _timed = _import(settings, "backlog")
    rate = mails / seconds
    report(
        "mail",
        f"backlog of {mails:,} mails, no attachments",
        rate,
        "mails/s",
        target=f"≥ {RATE_TARGET:g}",
        met=rate >= RATE_TARGET,
        note=f"{seconds:.1f} s",
    )
    return seconds


def attachments(settings, clamd: Clamd, server, user, options, plain_seconds, directory) -> None:
    from shared.db import database
    from shared.files.intake import file_path
    from shared.models import OrderFile

    _append_backlog(server, user, options.mails, options.pdfs, directory)
    seconds, files, timed = _import(settings, "attachments")
    part = seconds - plain_seconds
    stored = [file_path(settings, OrderFile.get_by_id(file_id)) for file_id in files]
    states = {OrderFile.get_by_id(file_id).state for file_id in files}
    database.close()
    if len(files) != options.pdfs or states != {OrderFile.STATE_CLEAN}:
        raise SystemExit(f"expected {options.pdfs} clean files, got {len(files)} in {states}")
    baseline = _clamdscan_seconds(clamd, stored)
    download = timed.seconds["large"] - timed.counts["large"] * (
        timed.seconds["small"] / max(timed.counts["small"], 1)
    )
    report(
        "mail",
        f"{options.pdfs} × 5 MiB PDF among {options.mails:,}: attachments' part",
        part,
        "s",
        baseline=f"clamdscan of the {options.pdfs} files",
        baseline_value=baseline,
        target=f"≤ {SCAN_TARGET:g}",
        met=part <= SCAN_TARGET * baseline,
        note=f"whole run {seconds:.1f} s; IMAP download of the PDFs {download:.1f} s of it",
    )
    report(
        "mail",
        "attachments' part without the IMAP download",
        part - download,
        "s",
        baseline="clamdscan",
        baseline_value=baseline,
    )


def _clamdscan_seconds(clamd: Clamd, paths: list[Path]) -> float:
    command = ["clamdscan", "-c", str(clamd.conf), "--no-summary", *map(str, paths)]
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if run.returncode != 0 or run.stdout.count(": OK") != len(paths):
        raise SystemExit(f"clamdscan failed: {run.stdout[-2000:]}{run.stderr}")
    return elapsed


if __name__ == "__main__":
    main()
