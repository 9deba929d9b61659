"""Background work (huey): deliver the outbox, scan received files, preflight clean ones, and
sweep all three every minute.

The mailbox readers run beside the huey consumer in ``ptportal worker``
(``shared.conversations.readers``); the files they import are scanned here like uploads.

Tasks are registered on a huey instance built from client.ini at start-up, so
the portal (which enqueues) and ``ptportal worker`` (which consumes) build the
same task names from the same function.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.api import Huey

from shared.config import Settings
from shared.links import PortalLinks
from shared.mail.delivery import deliver_due

log = logging.getLogger(__name__)


def make_huey(queue_url: str, immediate: bool = False) -> Huey:
    """A huey instance on the storage ``queue_url`` names."""
    options = {"name": "ptportal", "immediate": immediate, "results": False}
    if queue_url == "memory://":
        return MemoryHuey(**options)
    if queue_url.startswith("sqlite:///"):
        file = Path(queue_url.removeprefix("sqlite:///"))
        file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(filename=str(file), **options)
    if queue_url.startswith(("redis://", "rediss://")):
        return RedisHuey(url=queue_url, **options)
    from huey.contrib.sql_huey import SqlHuey

    return SqlHuey(database=queue_url, **options)


def nightly_retention(settings: Settings) -> None:
    """Files past their customer's retention, and audit log entries past ``[audit]
    retention_days``."""
    from shared.audit import delete_expired as delete_old_entries
    from shared.files.retention import delete_expired

    deleted = delete_expired(settings)
    log.info("retention run deleted %d files", len(deleted))
    entries = delete_old_entries(settings.audit.retention_days)
    log.info("retention run deleted %d audit log entries", entries)


class BackgroundTasks:
    """Enqueue work for ``ptportal worker``; the minute sweeps catch anything missed."""

    def __init__(
        self, settings: Settings, links: PortalLinks | None, immediate: bool = False
    ) -> None:
        """``links`` builds the links of the mails the sweep composes; a process that only
        enqueues (the hotfolder agent) runs no sweep and passes None."""
        self.huey = huey = make_huey(settings.worker.queue_url, immediate)
        smtp = settings.smtp

        @huey.task(name="deliver_outbox")
        def deliver_outbox() -> None:
            report = deliver_due(smtp)
            if report.sent or report.failed or report.deferred:
                log.info("outbox run: %s", report)

        @huey.task(name="scan_file")
        def scan_file(file_id: int) -> None:
            from shared.files.intake import make_scanner, scan_received

            file = scan_received(settings, make_scanner(settings), file_id)
            if file.preflight_status == file.PREFLIGHT_PENDING:
                self._enqueue(preflight_file, file_id)

        @huey.task(name="preflight_file")
        def preflight_file(file_id: int) -> None:
            from shared.files.preflighting import preflight_file as check

            check(settings, file_id)

        @huey.periodic_task(crontab(minute="*"), name="sweep")
        def sweep() -> None:
            try:
                from shared.notify.digest import queue_due_mail

                # Queued first, so batched notifications and the digest share this run's
                # one SMTP connection; the digest checks send_time in the portal's time zone.
                queue_due_mail(settings, links)
            except Exception:
                log.exception("notifications or digest could not be queued")
            try:
                from shared.conversations.answers import tell_senders_of_rejected_attachments

                # Before delivery, so a notice queued now goes out in this run.
                tell_senders_of_rejected_attachments(settings, links)
            except Exception:
                log.exception("senders of rejected attachments could not be told")
            deliver_outbox.call_local()
            from shared.files.intake import files_to_scan, make_scanner, scan_received
            from shared.files.preflighting import files_to_preflight
            from shared.files.preflighting import preflight_file as check
            from shared.files.receiving import complete_stranded_uploads

            scanner = make_scanner(settings)
            # Uploads whose worker died after the last byte first: the browser was told
            # they are complete and will not come back for them.
            for file_id in complete_stranded_uploads(settings) + files_to_scan():
                file = scan_received(settings, scanner, file_id)
                if file.preflight_status == file.PREFLIGHT_PENDING:
                    check(settings, file_id)
            # Files a stopped worker left unchecked; their own task is long gone.
            for file_id in files_to_preflight(settings):
                check(settings, file_id)

        @huey.periodic_task(crontab(hour="3", minute="15"), name="retention")
        def retention() -> None:
            nightly_retention(settings)

        self._deliver = deliver_outbox
        self._scan = scan_file
        self._preflight = preflight_file

    def deliver_soon(self) -> None:
        """Ask the worker to deliver due mails now."""
        self._enqueue(self._deliver)

    def scan_soon(self, file_id: int) -> None:
        """Ask the worker to scan a file that has just been received."""
        self._enqueue(self._scan, file_id)

    def preflight_soon(self, file_ids: list[int]) -> None:
        """Ask the worker to preflight files again (their order's expectations changed)."""
        for file_id in file_ids:
            self._enqueue(self._preflight, file_id)

    @staticmethod
    def _enqueue(task, *args) -> None:
        try:
            task(*args)
        except Exception:
            # The work is recorded in the database; the minute sweep will do it.
            log.exception("could not enqueue %s", task.name)
