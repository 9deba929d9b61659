"""The worker's mailbox readers: a thread per active mailbox, IMAP IDLE where offered.

Why threads inside ``ptportal worker`` rather than huey tasks: IDLE keeps a connection
open and waits on it, which would hold one of huey's few worker threads for good, and
huey's periodic tasks run at most once a minute, too seldom for a poll interval of
seconds. One loop per mailbox does both: with IDLE it waits on the open connection and
imports as soon as the server announces mail; without IDLE it reads the folder, logs
out and sleeps ``poll_interval_seconds``. The worker command starts the readers beside
the huey consumer and stops them when the consumer stops (SIGTERM, SIGINT): a reader
finishes the mail it is importing, leaves IDLE within half a second and logs out.

One reader per mailbox however many workers run: a reader holds its mailbox by a lease
(``MailboxState.reader`` / ``lease_until``), renewed every ``RENEW_SECONDS`` while it
works; another reader takes over once the lease has run out, or at once when the holder
was a process on this host that is gone (killed, crashed).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.config import MailboxSettings, Settings
from shared.conversations.importing import FileHandler, MailImporter, PassReport
from shared.db import database, write_transaction
from shared.mail_intake.imap import MailboxConnection, MailboxError, open_mailbox
from shared.models import MailboxState

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
RENEW_SECONDS = 30
RETRY_FIRST_SECONDS = 5
RETRY_MAX_SECONDS = 300
STOP_TIMEOUT_SECONDS = 30


def reader_id() -> str:
    """This process, as a lease names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str) -> bool:
    """True when ``holder`` was a process on this host that no longer runs."""
    host, _colon, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True  # this process itself (a reader restarted in it)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(name: str, reader: str, now: datetime | None = None) -> bool:
    """Take or renew the lease on mailbox ``name``; False while another reader holds it."""
    now = now or utcnow()
    with write_transaction():
        state, _created = MailboxState.get_or_create(name=name)
        free = (
            state.reader in ("", reader)
            or state.lease_until is None
            or state.lease_until < now
            or _gone(state.reader)
        )
        if not free:
            return False
        MailboxState.update(reader=reader, lease_until=now + LEASE).where(
            MailboxState.id == state.id
        ).execute()
    return True


def release(name: str, reader: str) -> None:
    """Give the lease back (on a clean stop), so another reader need not wait for it."""
    with write_transaction():
        MailboxState.update(reader="", lease_until=None).where(
            (MailboxState.name == name) & (MailboxState.reader == reader)
        ).execute()


def holder(name: str) -> str:
    """Who holds the lease on mailbox ``name`` now ("" if nobody)."""
    state = MailboxState.get_or_none(MailboxState.name == name)
    if state is None or state.lease_until is None or state.lease_until < utcnow():
        return ""
    return state.reader


def _record_check(name: str, connection: MailboxConnection) -> None:
    with write_transaction():
        MailboxState.update(
            checked_at=utcnow(),
            idle=connection.idle_supported,
            uidvalidity=connection.uidvalidity,
            error="",
        ).where(MailboxState.name == name).execute()


def _record_error(name: str, error: str) -> None:
    with write_transaction():
        MailboxState.get_or_create(name=name)
        MailboxState.update(error=error[:2000], error_at=utcnow()).where(
            MailboxState.name == name
        ).execute()


class MailboxReader:
    """Reads one mailbox until ``stop`` is set (``run``), or once (``read_once``)."""

    def __init__(
        self,
        settings: Settings,
        mailbox: MailboxSettings,
        on_file: FileHandler | None = None,
        stop: threading.Event | None = None,
        reader: str | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.importer = MailImporter(settings, mailbox, on_file)
        self.stop = stop or threading.Event()
        self.reader = reader or reader_id()

    def read_once(self) -> PassReport:
        """One pass over the mailbox now; MailboxError when it cannot be read or is held."""
        if not claim(self.mailbox.name, self.reader):
            raise MailboxError(
                f"mailbox {self.mailbox.name} is being read by {holder(self.mailbox.name)}"
            )
        try:
            self.importer.clean_work()
            try:
                with open_mailbox(self.mailbox) as connection:
                    report = self.importer.import_pending(connection, self.stop)
                    _record_check(self.mailbox.name, connection)
            except MailboxError as exc:
                _record_error(self.mailbox.name, str(exc))
                raise
            return report
        finally:
            release(self.mailbox.name, self.reader)

    def run(self) -> None:
        """Read until ``stop`` is set; failures are recorded and retried with growing waits."""
        name = self.mailbox.name
        retry = RETRY_FIRST_SECONDS
        log.info("mailbox %s: reader %s started", name, self.reader)
        try:
            while not self.stop.is_set():
                if not claim(name, self.reader):
                    self.stop.wait(RENEW_SECONDS)
                    continue
                try:
                    polling = self._read()
                except MailboxError as exc:
                    log.warning("mailbox %s: %s; trying again in %d s", name, exc, retry)
                    _record_error(name, str(exc))
                except Exception as exc:  # the database, a bug: never end the thread
                    log.exception("mailbox %s: reading failed; trying again in %d s", name, retry)
                    _safely(_record_error, name, f"{type(exc).__name__}: {exc}")
                else:
                    retry = RETRY_FIRST_SECONDS
                    if polling:
                        self._sleep(self.mailbox.poll_interval_seconds)
                    continue
                self.stop.wait(retry)
                retry = min(retry * 2, RETRY_MAX_SECONDS)
        finally:
            _safely(release, name, self.reader)
            database.close()
            log.info("mailbox %s: reader stopped", name)

    def _read(self) -> bool:
        """Connect and import; with IDLE keep waiting for news. True: poll again later."""
        self.importer.clean_work()
        with open_mailbox(self.mailbox) as connection:
            self.importer.import_pending(connection, self.stop)
            _record_check(self.mailbox.name, connection)
            if not connection.idle_supported:
                return True
            while not self.stop.is_set():
                connection.wait_for_mail(self.stop, timeout_seconds=RENEW_SECONDS)
                if self.stop.is_set() or not claim(self.mailbox.name, self.reader):
                    break
                self.importer.import_pending(connection, self.stop)
                _record_check(self.mailbox.name, connection)
        return False

    def _sleep(self, seconds: float) -> None:
        """Wait between polls, renewing the lease; ends early when ``stop`` is set."""
        remaining = seconds
        while remaining > 0 and not self.stop.is_set():
            step = min(RENEW_SECONDS, remaining)
            self.stop.wait(step)
            remaining -= step
            if remaining > 0:
                _safely(claim, self.mailbox.name, self.reader)


def _safely(function, *args) -> None:
    try:
        function(*args)
    except Exception:
        log.exception("%s failed", function.__name__)


class MailboxReaders:
    """The reader threads of one worker process, one per active mailbox."""

    def __init__(self, settings: Settings, on_file: FileHandler | None = None) -> None:
        self.stop_event = threading.Event()
        self.readers = [
            MailboxReader(settings, mailbox, on_file, self.stop_event)
            for mailbox in settings.mailboxes
            if mailbox.active
        ]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for reader in self.readers:
            thread = threading.Thread(
                target=reader.run, name=f"mailbox-{reader.mailbox.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Ask every reader to stop and wait for them (a hung one is left behind, logged)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %d s", thread.name, timeout)


def mailbox_overview(settings: Settings) -> list[tuple[MailboxSettings, MailboxState | None]]:
    """Each configured mailbox with what its reader last recorded (None: never read)."""
    names = [box.name for box in settings.mailboxes]
    states = {row.name: row for row in MailboxState.select().where(MailboxState.name.in_(names))}
    return [(box, states.get(box.name)) for box in settings.mailboxes]
