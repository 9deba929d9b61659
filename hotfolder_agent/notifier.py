"""The notifier thread: writes the XML job notifications that are due, beside the loop.

The loop tells it when files were recorded delivered (``deliveries_done``); the
thread then writes what is due (``notification.flush``) on its own database
connection, the files themselves in a worker process (``workers``). Creating,
fsyncing and renaming the XML files thus never holds up the next batch. Problems
are recorded for staff like the loop's; ``stop`` ends the thread and writes
everything still waiting, whatever the batch window.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

from peewee import DatabaseError, InterfaceError

from hotfolder_agent import notification
from hotfolder_agent.context import AgentContext
from hotfolder_agent.errors import ACTION_NOTIFY, record_error, resolve_errors
from hotfolder_agent.fsutil import reason
from hotfolder_agent.workers import FileWorkers
from shared.clock import utcnow
from shared.db import database

log = logging.getLogger(__name__)

DATABASE_ERRORS = (DatabaseError, InterfaceError)
# After a failure (full disk, database away) the notifications are tried again this much later.
RETRY_SECONDS = 30.0
MAX_DATABASE_PAUSE = 30.0


class Notifier(threading.Thread):
    """Writes due notifications on its own thread; ``deliveries_done`` says there may be some."""

    def __init__(self, ctx: AgentContext, writer: FileWorkers | None = None) -> None:
        super().__init__(name="notifier", daemon=True)
        self.ctx = ctx
        self.writer = writer  # where the XML files are written (None: on this thread)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._due: float | None = 0.0  # monotonic time of the next flush; at once on start
        self._failing = False
        self._database_wait = 0.0

    def deliveries_done(self) -> None:
        """Files were recorded delivered: their notification is due after the batch window."""
        self.check_at(time.monotonic() + self.ctx.settings.agent.batch_window_seconds)

    def check_soon(self) -> None:
        """Look for interrupted or due notifications now (after a rescan, say)."""
        self.check_at(time.monotonic())

    def check_at(self, moment: float) -> None:
        with self._lock:
            self._due = moment if self._due is None else min(self._due, moment)
        self._wake.set()

    def run(self) -> None:
        try:
            while True:
                with self._lock:
                    due = self._due
                    now = time.monotonic()
                    if due is not None and now >= due:
                        self._due = None  # taken: a request that comes meanwhile sets it again
                if due is not None and now >= due:
                    self._write()
                    continue
                if self._stopping.is_set():
                    return
                self._wake.wait(None if due is None else due - now)
                self._wake.clear()
        finally:
            database.close()

    def stop(self) -> None:
        """End the thread, then write every notification still waiting (in this thread)."""
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=60)
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        directory = self.ctx.settings.agent.notification_dir
        try:
            notification.flush(self.ctx, force=force, writer=self.writer)
            window = self.ctx.settings.agent.batch_window_seconds
            # Without a window every due file was just written; new deliveries set the next time.
            due = notification.next_due(window) if window and not force else None
            resolve_errors([directory])
        except OSError as exc:
            self._failed(directory, reason(exc))
            return
        except DATABASE_ERRORS as exc:
            self._database_unreachable(exc, force)
            return
        except Exception:
            # A bug or a lost worker process must not end the thread: try again later.
            log.exception("action=notify unexpected error; will retry")
            self.check_at(time.monotonic() + RETRY_SECONDS)
            return
        self._failing = False
        self._database_wait = 0.0
        if due is not None:
            self.check_at(time.monotonic() + max((due - utcnow()).total_seconds(), 0.0))

    def _failed(self, directory: Path, why: str) -> None:
        level = logging.DEBUG if self._failing else logging.ERROR
        self._failing = True
        log.log(
            level, "order=- file=%s action=notify failed: %s (%s)", directory.name, why, directory
        )
        with contextlib.suppress(*DATABASE_ERRORS):
            record_error(self.ctx.agent_id, ACTION_NOTIFY, directory, why)
        self.check_at(time.monotonic() + RETRY_SECONDS)

    def _database_unreachable(self, exc: Exception, force: bool) -> None:
        if force:
            log.warning("action=stop notifications left for the next start: %s", exc)
            return
        wait = min(max(self._database_wait * 2, 1.0), MAX_DATABASE_PAUSE)
        self._database_wait = wait
        log.error("action=notify database unreachable, retrying in %.0f s: %s", wait, exc)
        with contextlib.suppress(*DATABASE_ERRORS):
            database.close()
        self.check_at(time.monotonic() + wait)
