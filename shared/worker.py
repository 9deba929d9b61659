"""The background mail queue (huey): deliver the outbox soon after a change, and every minute.

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


class MailQueue:
    """Enqueue outbox delivery; the worker process runs what is enqueued here."""

    def __init__(self, settings: Settings, immediate: bool = False) -> None:
        self.huey = make_huey(settings.worker.queue_url, immediate)
        smtp = settings.smtp

        @self.huey.task(name="deliver_outbox")
        def deliver_outbox() -> None:
            report = deliver_due(smtp)
            if report.sent or report.failed or report.deferred:
                log.info("outbox run: %s", report)

        @self.huey.periodic_task(crontab(minute="*"), name="sweep_outbox")
        def sweep_outbox() -> None:
            deliver_outbox.call_local()

        self._deliver = deliver_outbox

    def deliver_soon(self) -> None:
        """Ask the worker to deliver due mails now (the minute sweep catches anything missed)."""
        try:
            self._deliver()
        except Exception:
            # The mail is safe in the outbox; the periodic sweep will send it.
            log.exception("could not enqueue outbox delivery")
