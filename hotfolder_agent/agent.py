"""The agent's main loop: take stable files, deliver, notify, send staff files back, rescan.

One thread does the work (this loop), except two parts that run beside it: the
copies into the hotfolders are made by worker processes (``workers``), batches
ahead, and the XML notifications are written by the notifier thread (``notifier``).
watchdog's thread only enqueues; the heartbeat has its own thread. Signal handlers
only set a flag: the batches in hand are finished, due notifications are written,
then the loop ends and exits 0. When the database cannot be reached nothing is
copied (every copy starts with a recorded intent); the loop waits, retries with
growing pauses and rescans.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import signal
import threading
import time
from collections import deque
from pathlib import Path

from peewee import DatabaseError, InterfaceError
from watchdog.observers.api import BaseObserver

from hotfolder_agent import outbound
from hotfolder_agent.context import AgentContext, make_context
from hotfolder_agent.delivery import (
    ALREADY_DELIVERED,
    BATCH_FILES,
    CLAIM_LOST,
    DELIVERED,
    FAILED,
    Batch,
    Outcome,
    batches,
)
from hotfolder_agent.errors import (
    ACTION_DELIVER,
    ACTION_MATCH,
    ACTION_PREPARE,
    ACTION_SEND,
    record_error,
    resolve_errors,
)
from hotfolder_agent.fsutil import reason
from hotfolder_agent.heartbeat import Heartbeat, agent_version
from hotfolder_agent.layout import OUTBOUND_FOLDERS, IncomingPath
from hotfolder_agent.notifier import Notifier
from hotfolder_agent.pending import KIND_DIRECTORY, KIND_INCOMING, KIND_OUTBOUND, PendingFiles
from hotfolder_agent.records import find_uploads, is_deliverable, note_failure
from hotfolder_agent.watcher import observer_is_healthy, start_observer, stop_observer
from hotfolder_agent.workers import FileWorkers
from shared.config import Settings
from shared.db import database
from shared.files.folders import FOLDER_INCOMING, order_dir
from shared.models import Customer, Delivery, Order, OrderFile
from shared.worker import BackgroundTasks

log = logging.getLogger(__name__)

DATABASE_ERRORS = (DatabaseError, InterfaceError)
MAX_DATABASE_PAUSE = 30.0
MAX_IDLE_WAIT = 1.0
# A failed file is tried again this much later (and at every rescan).
RETRY_SECONDS = 30.0
# The portal links a clean file into Eingehend just before its transaction commits:
# a file without a record is looked at again for this long before it is a problem.
UNMATCHED_GRACE_SECONDS = 2.0
UNMATCHED_RECHECK_SECONDS = 0.1
# Batches claimed and handed to the copiers before the oldest one is finished: the
# copiers always have work while the loop links and records.
COPY_AHEAD = 2
# Worker processes for file work: two batches are copied side by side.
WORKERS = 2


class Agent:
    """The hotfolder agent for one client.ini; ``run()`` until stopped (database bound first)."""

    def __init__(self, settings: Settings, tasks: BackgroundTasks | None = None) -> None:
        self.settings = settings
        self.ctx: AgentContext = make_context(settings, tasks)
        self.pending = PendingFiles(settings.agent.stable_seconds)
        self.stopping = threading.Event()
        self.observer: BaseObserver | None = None
        # Copies and XML files alike; an XML waits at most for one batch's copies.
        self.workers = FileWorkers(WORKERS)
        self.notifier = Notifier(self.ctx, self.workers)
        self._delivered: set[Path] | None = None  # Eingehend paths known to be delivered
        self._prepared: set[tuple[str, str]] = set()  # orders whose hotfolders exist
        self._reported: set[tuple[str, str]] = set()  # (action, path) logged as a problem
        self._unmatched: dict[Path, float] = {}  # Eingehend path -> first seen without record
        self._next_rescan = 0.0
        self._database_pause = 0.0
        self._database_wait = 0.0

    # --- lifecycle -------------------------------------------------------------

    def request_stop(self, *_signal_args) -> None:
        """Signal handler: only set the flag; the loop finishes the file in hand."""
        self.stopping.set()
        # A handler runs in the main thread between any two steps of the loop, which may
        # hold ``pending.wake``'s lock (clear, the end of wait): setting it there would
        # deadlock, and an agent would ignore SIGTERM for good. The loop looks at the flag
        # at least every MAX_IDLE_WAIT anyway; other threads may wake it at once.
        if threading.current_thread() is not threading.main_thread():
            self.pending.wake.set()

    def run(self) -> int:
        """Work until SIGTERM/SIGINT or ``request_stop``; returns the exit status."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            # `kill -USR1 <pid>`: every thread's stack into the log, for an agent that hangs.
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        agent = self.settings.agent
        log.info(
            "action=start agent=%s version=%s watch_mode=%s orders=%s hotfolders=%s",
            self.ctx.agent_id,
            agent_version(),
            agent.watch_mode,
            self.settings.storage.order_root,
            agent.hotfolder_root,
        )
        heartbeat = Heartbeat(self.ctx)
        heartbeat.start()
        self.notifier.start()
        self.workers.start()
        try:
            while not self.stopping.is_set():
                self.step()
                self._sleep()
            self._finish()
        finally:
            stop_observer(self.observer)
            self.workers.shutdown()
            heartbeat.stop()
            database.close()
        log.info("action=stop agent=%s", self.ctx.agent_id)
        return 0

    def _finish(self) -> None:
        """Before exiting: write the notifications of everything already delivered."""
        self.notifier.stop()

    def _sleep(self) -> None:
        now = time.monotonic()
        wake_at = [self._next_rescan, now + MAX_IDLE_WAIT]
        next_check = self.pending.next_check()
        if next_check is not None:
            wake_at.append(next_check)
        timeout = max(0.0, min(wake_at) - now)
        if timeout and self.pending.wake.wait(timeout):
            self.pending.wake.clear()

    # --- one round -------------------------------------------------------------

    def step(self) -> None:
        """One round of the loop: rescan if due, take ready files, write due notifications."""
        now = time.monotonic()
        if self._database_pause and now < self._database_pause:
            return
        try:
            self._ensure_observer()
            if now >= self._next_rescan:
                self.rescan()
                self._next_rescan = now + self.settings.agent.rescan_seconds
            ready = self.pending.take_ready()
            incoming = [path for kind, path in ready if kind == KIND_INCOMING]
            for kind, path in ready:
                if kind != KIND_INCOMING:
                    self._handle_when_running(kind, [path])
            if incoming:
                self._handle_when_running(KIND_INCOMING, incoming)
            self._database_pause = 0.0
            self._database_wait = 0.0
        except DATABASE_ERRORS as exc:
            self._database_unreachable(exc)

    def _database_unreachable(self, exc: Exception) -> None:
        wait = min(max(self._database_wait * 2, 1.0), MAX_DATABASE_PAUSE)
        self._database_wait = wait
        self._database_pause = time.monotonic() + wait
        # Whatever was in hand is found again by the rescan after the pause.
        self._next_rescan = 0.0
        log.error("action=wait database unreachable, retrying in %.0f s: %s", wait, exc)
        with contextlib.suppress(*DATABASE_ERRORS):
            database.close()

    def _ensure_observer(self) -> None:
        if self.observer is not None and observer_is_healthy(self.observer):
            return
        if self.observer is not None:
            log.error("action=watch the file observer stopped; restarting it and rescanning")
            stop_observer(self.observer)
            self._next_rescan = 0.0
        try:
            self.observer = start_observer(self.settings.agent, self.ctx.layout, self.pending)
        except OSError as exc:
            self.observer = None
            self._report(
                ACTION_PREPARE,
                self.ctx.layout.order_root,
                f"cannot watch for events ({reason(exc)}); relying on rescans",
            )

    def rescan(self) -> None:
        """Walk the order folders and outbound folders for everything not handled yet."""
        layout = self.ctx.layout
        if self._delivered is None:
            self._delivered = self._load_delivered()
        for customer_no, project_no in layout.order_dirs():
            self._prepare_hotfolder(customer_no, project_no)
            incoming = layout.incoming_dir(customer_no, project_no)
            try:
                names = [entry.name for entry in incoming.iterdir()]
            except OSError:
                continue
            for name in names:
                path = incoming / name
                if path not in self._delivered and layout.incoming(path) is not None:
                    self.pending.add(KIND_INCOMING, path)
        for path in layout.outbound_files():
            self.pending.add(KIND_OUTBOUND, path)
        outbound.finish_interrupted(self.ctx)
        self.notifier.check_soon()

    def _load_delivered(self) -> set[Path]:
        rows = (
            Delivery.select(Customer.customer_no, Order.project_no, OrderFile.stored_name)
            .join(OrderFile)
            .join(Order)
            .join(Customer)
            .where(
                (Delivery.state == Delivery.STATE_DONE)
                & (OrderFile.folder == FOLDER_INCOMING)
                & (OrderFile.state == OrderFile.STATE_CLEAN)
            )
            .tuples()
        )
        root = self.settings.storage.order_root
        return {
            order_dir(root, customer_no, project_no) / FOLDER_INCOMING / name
            for customer_no, project_no, name in rows
        }

    def _prepare_hotfolder(self, customer_no: str, project_no: str) -> None:
        """Create the order's hotfolder and its outbound drop folders (once per run)."""
        if (customer_no, project_no) in self._prepared:
            return
        layout = self.ctx.layout
        try:
            for folder in OUTBOUND_FOLDERS:
                layout.outbound_dir(customer_no, project_no, folder).mkdir(
                    parents=True, exist_ok=True
                )
        except OSError as exc:
            path = layout.hotfolder_dir(customer_no, project_no)
            self._report(ACTION_PREPARE, path, f"cannot create the hotfolder: {reason(exc)}")
            return
        self._prepared.add((customer_no, project_no))

    # --- handling one path -----------------------------------------------------

    def _handle_when_running(self, kind: str, paths: list[Path]) -> None:
        """Handle ``paths``, or leave them queued for the next start once stopping."""
        if self.stopping.is_set():
            for path in paths:
                self.pending.add(kind, path)
            return
        try:
            if kind == KIND_INCOMING:
                self._deliver(paths)
            else:
                for path in paths:
                    self.handle(kind, path)
        except DATABASE_ERRORS:
            raise
        except Exception:
            # A bug with one file must not stop the others.
            log.exception("files=%d action=%s unexpected error; will retry", len(paths), kind)
            for path in paths:
                self.pending.add(kind, path, delay=RETRY_SECONDS)

    def handle(self, kind: str, path: Path) -> None:
        """Act on one ready path."""
        if kind == KIND_INCOMING:
            self._deliver([path])
        elif kind == KIND_OUTBOUND:
            dropped = self.ctx.layout.outbound(path)
            if dropped is not None:
                self._send(dropped)
        elif kind == KIND_DIRECTORY:
            self._look_into(path)

    def _look_into(self, directory: Path) -> None:
        """A new folder: queue what is in it already (its watch may have come too late)."""
        layout = self.ctx.layout
        try:
            entries = list(directory.rglob("*"))
        except OSError:
            return
        for path in entries:
            if layout.incoming(path) is not None and path not in (self._delivered or set()):
                self.pending.add(KIND_INCOMING, path)
            elif layout.outbound(path) is not None:
                self.pending.add(KIND_OUTBOUND, path)

    def _deliver(self, paths: list[Path]) -> None:
        """Deliver the ready files of Eingehend in batches, copied ahead of their records."""
        where: dict[int, IncomingPath] = {}
        in_flight: deque[Batch] = deque()
        try:
            # Looked up a batch at a time: the first copies start at once, not after all.
            for start in range(0, len(paths), BATCH_FILES):
                if self.stopping.is_set():
                    # The batches in hand are finished; the rest waits for the next start.
                    for path in paths[start:]:
                        self.pending.add(KIND_INCOMING, path)
                    break
                for files in batches(self._deliverable(paths[start : start + BATCH_FILES], where)):
                    in_flight.append(Batch.start(self.ctx, files, self.workers))
                    if len(in_flight) > COPY_AHEAD:
                        self._finish_batch(in_flight.popleft(), where)
            while in_flight:
                self._finish_batch(in_flight.popleft(), where)
        finally:
            for batch in in_flight:
                batch.close()

    def _deliverable(self, paths: list[Path], where: dict[int, IncomingPath]) -> list[OrderFile]:
        """The upload records of ``paths`` to be delivered; ``where`` learns their paths."""
        incomings = [self.ctx.layout.incoming(path) for path in paths]
        incomings = [incoming for incoming in incomings if incoming is not None]
        uploads = find_uploads(incomings)
        ready = []
        for incoming in incomings:
            file = uploads.get(incoming.path)
            if self._ready_to_deliver(incoming, file):
                ready.append(file)
                where[file.id] = incoming
        return ready

    def _finish_batch(self, batch: Batch, where: dict[int, IncomingPath]) -> None:
        """Finish a batch, act on each file's outcome, and tell the notifier what is due."""
        outcomes = batch.finish(self.ctx)
        resolved: list[Path | None] = []
        for file, outcome in zip(batch.files, outcomes, strict=True):
            if self._delivered_one(where[file.id], file, outcome):
                resolved += [where[file.id].path, outcome.path]
        self._resolved(*resolved)
        if any(outcome.status == DELIVERED for outcome in outcomes):
            self.notifier.deliveries_done()  # per batch: a long queue delays no XML

    def _ready_to_deliver(self, incoming: IncomingPath, file: OrderFile | None) -> bool:
        """True if ``file`` is a clean upload for a customer with hotfolder (else said why)."""
        if file is None or not is_deliverable(file):
            first_seen = self._unmatched.setdefault(incoming.path, time.monotonic())
            if time.monotonic() - first_seen < UNMATCHED_GRACE_SECONDS:
                self.pending.add(KIND_INCOMING, incoming.path, delay=UNMATCHED_RECHECK_SECONDS)
                return False
            state = file.state if file is not None else "no upload record"
            self._report(
                ACTION_MATCH,
                incoming.path,
                f"not delivered: the portal has no clean upload for this file ({state})",
                order=file.order if file is not None else None,
                file=file,
            )
            return False
        if not file.order.customer.create_hotfolder:
            # Seed 004 "Create Hotfolder" = 0: the customer's files stay in the portal only.
            log.debug(
                "order=%s file=%s action=skip no hotfolder for this customer",
                incoming.project_no,
                incoming.name,
            )
            return False
        self._prepare_hotfolder(incoming.customer_no, incoming.project_no)
        return True

    def _delivered_one(self, incoming: IncomingPath, file: OrderFile, outcome: Outcome) -> bool:
        """Log and keep track of one file's outcome; True if it is in its hotfolder now."""
        if outcome.status == FAILED:
            failure = outcome.failure
            note_failure(file, failure)
            self._report(ACTION_DELIVER, failure.path, failure.reason, order=file.order, file=file)
            self.pending.add(KIND_INCOMING, incoming.path, delay=RETRY_SECONDS)
            return False
        if outcome.status == CLAIM_LOST:
            log.warning(
                "order=%s file=%s action=deliver another agent took over",
                incoming.project_no,
                incoming.name,
            )
            return False
        if outcome.status not in (DELIVERED, ALREADY_DELIVERED):
            return False
        assert self._delivered is not None
        self._delivered.add(incoming.path)
        self._unmatched.pop(incoming.path, None)
        if outcome.status == DELIVERED:
            log.info(
                "order=%s file=%s action=delivered path=%s",
                incoming.project_no,
                incoming.name,
                outcome.path,
            )
        return True

    def _send(self, dropped) -> None:
        try:
            outcome = outbound.send_outbound(self.ctx, dropped)
        except outbound.SendFailed as failure:
            order = outbound.find_order(dropped)
            self._report(ACTION_SEND, failure.path, failure.reason, order=order)
            self.pending.add(KIND_OUTBOUND, dropped.path, delay=RETRY_SECONDS)
            return
        if outcome.status == outbound.SENT:
            self._resolved(dropped.path)

    # --- problems ----------------------------------------------------------------

    def _report(self, action: str, path: Path, why: str, order=None, file=None) -> None:
        """Log a problem once per path and record it for staff (counted while it repeats)."""
        key = (action, str(path))
        level = logging.DEBUG if key in self._reported else logging.ERROR
        self._reported.add(key)
        log.log(
            level,
            "order=%s file=%s action=%s failed: %s (%s)",
            order.project_no if order is not None else "-",
            path.name,
            action,
            why,
            path,
        )
        record_error(self.ctx.agent_id, action, path, why, order=order, file=file)

    def _resolved(self, *paths: Path | None) -> None:
        known = [path for path in paths if path is not None]
        if not known:
            return
        names = {str(path) for path in known}
        self._reported = {key for key in self._reported if key[1] not in names}
        # One query for a whole batch: the parents carry errors about their folder.
        resolve_errors(sorted(names | {str(path.parent) for path in known}))
