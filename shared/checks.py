"""`ptportal check`: is every part the portal depends on reachable and usable?"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def _database(settings: Settings) -> str:
    from shared.db import bind_database, url_without_credentials
    from shared.migrations import LATEST, current_version

    db = bind_database(settings.database.url)
    db.connect(reuse_if_open=True)
    try:
        db.execute_sql("SELECT 1")
        version = current_version()
    finally:
        db.close()
    where = url_without_credentials(settings.database.url)
    if version != LATEST:
        raise RuntimeError(
            f"{where}: schema version {version}, expected {LATEST}: run ptportal migrate"
        )
    return f"{where} (schema version {version})"


def _writable(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".ptportal-check-") as probe:
        probe.write(b"check")
        probe.flush()
        os.fsync(probe.fileno())


def _storage(settings: Settings) -> str:
    storage = settings.storage
    roots = (storage.order_root, storage.staging_root, storage.quarantine_root)
    for directory in (*roots, storage.preview_root):
        _writable(directory)
    if storage.staging_root.stat().st_dev != storage.order_root.stat().st_dev:
        raise RuntimeError(
            f"{storage.staging_root} and {storage.order_root} are on different file systems: "
            "clean files could not be moved atomically"
        )
    from shared.files.storage_probe import StorageBroken, probe_storage

    try:
        kept = probe_storage(storage.staging_root, storage.order_root)
    except StorageBroken as exc:
        raise RuntimeError(str(exc)) from None
    writable = ", ".join(str(root) for root in (*roots, storage.preview_root))
    return f"{writable} writable; " + ", ".join(kept)


def _clamd(settings: Settings) -> str:
    from shared.files.intake import make_scanner
    from shared.files.scanning import clamd_limits

    scanner = make_scanner(settings)
    limits = clamd_limits(settings.clamav)
    return (
        f"{scanner.version()} at {settings.clamav.address}; "
        f"scans files up to {limits.largest_scannable:,} bytes"
    )


def _smtp(settings: Settings) -> str:
    from shared.mail.delivery import open_smtp

    smtp = settings.smtp
    client = open_smtp(smtp)
    try:
        client.noop()
    finally:
        client.quit()
    login = f"logged in as {smtp.username}" if smtp.username else "no login configured"
    return f"{smtp.server}:{smtp.port} ({smtp.security}, {login})"


def _queue(settings: Settings) -> str:
    from shared.worker import make_huey

    huey = make_huey(settings.worker.queue_url)
    return f"{huey.pending_count()} task(s) waiting"


CHECKS: list[tuple[str, Callable[[Settings], str]]] = [
    ("database", _database),
    ("storage", _storage),
    ("clamd", _clamd),
    ("smtp", _smtp),
    ("queue", _queue),
]


def _mailbox_checks(settings: Settings) -> list[tuple[str, Callable[[Settings], str]]]:
    """One check per active [mailbox:NAME]: log in, open the folders, as the worker will."""
    from shared.mail_intake.imap import connection_test

    def check_one(mailbox):
        def check(_settings: Settings) -> str:
            ok, detail = connection_test(mailbox)
            if not ok:
                raise RuntimeError(detail)
            return detail

        return check

    return [(f"mailbox {box.name}", check_one(box)) for box in settings.mailboxes if box.active]


def run_checks(settings: Settings) -> list[CheckResult]:
    """Run every check; a failure is reported with its reason, never raised."""
    results = []
    for name, check in [*CHECKS, *_mailbox_checks(settings)]:
        try:
            results.append(CheckResult(name, True, check(settings)))
        except Exception as exc:  # each check reports its failure; none stops the others
            reason = str(exc) or type(exc).__name__
            results.append(CheckResult(name, False, reason.splitlines()[0]))
    return results
