"""The agent's main loop: the only thread that changes files and records; it never waits
for the network.

Threads and what they do (each added only where the work needs it):

- **main loop** (this module): takes results from the others through one event queue,
  runs steps 4–7 of a delivery for every file that is ready (``delivery``,
  ``notification``), writes the approval files (``approvals``), hands dropped staff
  files to the upload thread, rescans.
- **poller** (``poller``): one lease request at a time, held open by the portal until a
  file turns clean (long poll) — how a file reaches the agent within a fraction of a
  second without polling.
- **download threads** (``[agent] downloads``, a bounded pool): steps 1–3 of a delivery.
- **reporter** (``reporter``): heartbeats, confirmations, problems, notifications — every
  short request, in order, kept while the portal is away.
- **upload thread** (``outbound``): staff files back to the portal over tus.
- watchdog's observer: only enqueues dropped files.

Signal handlers only set a flag. Within a fraction of a second the loop sees it, sets
``stopping`` and shuts every connection down (blocked reads return at once); downloads
leave their partial files for the next run, XMLs already due are written, the portal
hears that the agent stops (one short try) and the leases it has not begun are given
back. Whatever was in flight continues after the next start (``state``).

Exit codes (for systemd, see README "Portal in the DMZ, agent inside"): 0 stopped by
SIGTERM/SIGINT; 2 a bad client.ini (``cli``); 3 the state folder is unusable or used by
another agent process; 1 an unexpected error.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from watchdog.observers.api import BaseObserver

from hotfolder_agent.approvals import Approvals
from hotfolder_agent.context import Context, make_context
from hotfolder_agent.delivery import EVENT_WORKED, Deliveries
from hotfolder_agent.fsutil import reason
from hotfolder_agent.layout import OUTBOUND_FOLDERS, UnsafeAnswer
from hotfolder_agent.notification import Notifications
from hotfolder_agent.outbound import EVENT_SENT, Outbound
from hotfolder_agent.pending import KIND_DIRECTORY, KIND_OUTBOUND, PendingFiles
from hotfolder_agent.poller import EVENT_LEASES, Poller, Slots
from hotfolder_agent.reporter import (
    ACTION_PREPARE,
    EVENT_APPROVALS,
    EVENT_APPROVALS_PLACED,
    EVENT_CONFIRMED,
    EVENT_NOTIFIED,
    EVENT_ORDERS,
    Reporter,
    agent_version,
)
from hotfolder_agent.state import StateBusy
from hotfolder_agent.watcher import observer_is_healthy, start_observer, stop_observer
from shared.config import AgentSettings

log = logging.getLogger(__name__)

EXIT_STOPPED = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_STATE = 3

LEASE_AHEAD = 8
MIN_LEASE_AHEAD = 16
# While files keep coming, the main loop's file steps (plan, link, confirm, XML) run at
# most this often: each round's fsyncs and requests then serve every file that arrived
# meanwhile instead of one each (bench/README.md). A round that moved a lone file (an
# agent that was idle) is followed by the next at once.
ROUND_SECONDS = 0.05
BUSY_ROUND_FILES = 2
# The loop looks at the stop flag at least this often.
MAX_IDLE_SECONDS = 0.2
# After a stop request, threads that have not ended by then are left behind: everything
# they had in hand is in the state folder (or resumable) anyway.
STOP_SECONDS = 4.0
EVENT_NUDGE = "nudge"


class Agent:
    """The hotfolder agent for one ``[agent]`` section; ``run()`` until stopped."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.ctx: Context = make_context(settings)
        self._stop_requested = False
        self._stop_started = 0.0
        # Files are leased a few downloads ahead, so that a finished download finds the
        # next file waiting instead of a lease request to make first.
        self.slots = Slots(max(settings.downloads * LEASE_AHEAD, MIN_LEASE_AHEAD))
        self.pool = ThreadPoolExecutor(settings.downloads, thread_name_prefix="download")
        self.reporter = Reporter(self.ctx, self.queue_length)
        self.notifications = Notifications(self.ctx, self.reporter)
        self.approvals = Approvals(self.ctx, self.reporter)
        self.deliveries = Deliveries(
            self.ctx, self.slots, self.reporter, self.pool, self.notifications
        )
        self.outbound = Outbound(self.ctx, self.reporter)
        self.pending = PendingFiles(settings.stable_seconds, on_add=self._nudge)
        self.poller: Poller | None = None
        self.observer: BaseObserver | None = None
        self._next_rescan = 0.0
        self._next_round = 0.0
        self._round_waiting = False  # results came in for the next round

    def queue_length(self) -> int:
        """Files in hand: shown to staff with every heartbeat."""
        return self.deliveries.queue_length() + len(self.outbound)

    def _nudge(self) -> None:
        self.ctx.events.put((EVENT_NUDGE, None))

    # --- lifecycle -------------------------------------------------------------------------

    def request_stop(self, *_signal_args) -> None:
        """Signal handler: only a flag (anything more could deadlock the loop it interrupts)."""
        self._stop_requested = True

    def run(self) -> int:
        """Work until SIGTERM/SIGINT or ``request_stop``; returns the exit status."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            # `kill -USR1 <pid>`: every thread's stack into the log, for an agent that hangs.
            faulthandler.register(signal.SIGUSR1, all_threads=True)
            threading.Thread(target=self._guard_stop, name="stop-guard", daemon=True).start()
        try:
            self.ctx.state.open()
        except StateBusy as exc:
            log.critical("action=start %s; stopping", exc)
            return EXIT_STATE
        except OSError as exc:
            log.critical(
                "action=start the state folder %s cannot be used: %s",
                self.settings.state_dir,
                reason(exc) if exc.errno else exc,
            )
            return EXIT_STATE
        log.info(
            "action=start agent=%s version=%s portal=%s hotfolders=%s state=%s downloads=%d",
            self.ctx.agent_id,
            agent_version(),
            self.settings.portal_url,
            self.settings.hotfolder_root,
            self.settings.state_dir,
            self.settings.downloads,
        )
        try:
            notified = self.notifications.recover()
            reclaim = self.deliveries.recover(notified)
            self.outbound.recover()
            self.poller = Poller(self.ctx, self.slots, reclaim)
            self.reporter.start()
            self.poller.start()
            while not self._stop_requested:
                self._turn()
        finally:
            self._shutdown()
        log.info("action=stop agent=%s", self.ctx.agent_id)
        return EXIT_STOPPED

    def _guard_stop(self) -> None:
        """A stop must not take longer than ``STOP_SECONDS`` (and a second): whatever holds
        it up, the process ends then — all it had in hand is resumable from the state
        folder. The stacks go to the log first, to find what held it up."""
        while not self._stop_requested:
            time.sleep(MAX_IDLE_SECONDS)
        time.sleep(STOP_SECONDS + 1.0)
        log.error("action=stop not done after %.0f s; ending the process", STOP_SECONDS + 1)
        faulthandler.dump_traceback(all_threads=True)
        logging.shutdown()
        os._exit(EXIT_STOPPED)

    def _shutdown(self) -> None:
        self._stop_started = time.monotonic()
        ctx = self.ctx
        ctx.stopping.set()
        ctx.client.interrupt()
        self.reporter.wake()
        self.slots.freed.set()
        stop_observer(self.observer, timeout=1.0)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.outbound.shutdown_soon()
        self._join(self.pool_threads())
        self._drain()
        try:
            self.notifications.flush(force=True)  # local files only: quick
        except Exception:
            log.exception("action=stop notifications left for the next start")
        self.reporter.last_beat(self.deliveries.releasable())
        if self.poller is not None:
            self._join([self.poller])
        ctx.state.close()
        left = [
            thread.name
            for thread in threading.enumerate()
            if thread is not threading.current_thread() and not thread.daemon and thread.is_alive()
        ]
        if left:
            log.warning("action=stop threads still busy (%s): leaving them", ", ".join(left))
            logging.shutdown()
            sys.stdout.flush()
            os._exit(EXIT_STOPPED)

    def pool_threads(self) -> list[threading.Thread]:
        return [
            thread
            for thread in threading.enumerate()
            if thread.name.startswith(("download", "upload")) and thread.is_alive()
        ]

    def _join(self, threads: list[threading.Thread]) -> None:
        deadline = self._stop_started + STOP_SECONDS
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def _drain(self) -> None:
        """Take the results that came in while stopping (the downloads' last words)."""
        while True:
            try:
                kind, payload = self.ctx.events.get_nowait()
            except queue.Empty:
                return
            if kind in (EVENT_WORKED, EVENT_CONFIRMED, EVENT_NOTIFIED):
                self._dispatch(kind, payload)

    # --- one turn of the loop ----------------------------------------------------------------

    def _turn(self) -> None:
        try:
            self._wait_and_dispatch()
            self._ensure_observer()
            now = time.monotonic()
            if now >= self._next_rescan:
                self.rescan()
                self._next_rescan = now + self.settings.rescan_seconds
            for kind, path in self.pending.take_ready():
                if kind == KIND_OUTBOUND:
                    self.outbound.submit(path)
                elif kind == KIND_DIRECTORY:
                    self._look_into(path)
            if now >= self._next_round:
                self._round(now)
        except Exception:
            # A bug must not end the agent: everything is recorded, the next turn goes on.
            log.exception("action=loop unexpected error; going on")
            time.sleep(1.0)

    def _round(self, now: float) -> None:
        """The file steps for everything that is ready."""
        self._round_waiting = False
        moved = self.deliveries.tick() + self.notifications.flush()
        if self.notifications.written:
            self.deliveries.notified(self.notifications.written)
            self.notifications.written = []
        self._next_round = now + ROUND_SECONDS if moved >= BUSY_ROUND_FILES else now

    def _next_wake(self) -> float:
        now = time.monotonic()
        moments = [now + MAX_IDLE_SECONDS, self._next_rescan]
        if self._round_waiting:
            moments.append(self._next_round)
        for moment in (
            self.pending.next_check(),
            self.notifications.next_due(),
            self.deliveries.tick_due(),
        ):
            if moment is not None:
                moments.append(max(moment, self._next_round))
        return min(moments)

    def _wait_and_dispatch(self) -> None:
        timeout = max(self._next_wake() - time.monotonic(), 0.0)
        try:
            kind, payload = self.ctx.events.get(timeout=timeout)
        except queue.Empty:
            return
        self._dispatch(kind, payload)
        while not self._stop_requested:
            try:
                kind, payload = self.ctx.events.get_nowait()
            except queue.Empty:
                return
            self._dispatch(kind, payload)

    def _dispatch(self, kind: str, payload: object) -> None:
        self._round_waiting = True
        if kind == EVENT_LEASES:
            self.deliveries.on_leases(payload)
        elif kind == EVENT_WORKED:
            self.deliveries.on_worked(*payload)
        elif kind == EVENT_CONFIRMED:
            self.deliveries.on_confirmed(*payload)
        elif kind == EVENT_NOTIFIED:
            names, _answer = payload
            for name in names:
                self.notifications.on_reported(name)
        elif kind == EVENT_ORDERS:
            self._prepare_hotfolders(payload)
        elif kind == EVENT_APPROVALS:
            self.approvals.place(payload)
        elif kind == EVENT_APPROVALS_PLACED:
            proof_ids, _answer = payload
            self.approvals.on_reported(proof_ids)
        elif kind == EVENT_SENT:
            path, outcome = payload
            self.outbound.on_sent(
                path, outcome, lambda again, delay: self.pending.add(KIND_OUTBOUND, again, delay)
            )

    # --- drop folders ------------------------------------------------------------------------

    def _prepare_hotfolders(self, orders: list) -> None:
        """Make each order's hotfolder with its drop folders (staff find them ready)."""
        prepared = []
        for order in orders:
            if not isinstance(order, dict):
                continue
            customer_no, project_no = order.get("customer_no"), order.get("project_no")
            try:
                folders = [
                    self.ctx.layout.outbound_dir(str(customer_no), str(project_no), folder)
                    for folder in OUTBOUND_FOLDERS
                ]
            except UnsafeAnswer as exc:
                log.error("action=prepare the portal named an unusable order: %s", exc)
                continue
            directory = self.ctx.layout.hotfolder_dir(customer_no, project_no)
            try:
                for folder in folders:
                    folder.mkdir(parents=True, exist_ok=True)
                prepared.append(directory)
            except OSError as exc:
                self.reporter.problems.report(
                    ACTION_PREPARE,
                    directory,
                    f"cannot create the hotfolder: {reason(exc)}",
                    project_no=project_no,
                )
        if prepared:
            self.reporter.problems.resolved(prepared)

    def _ensure_observer(self) -> None:
        if self.observer is not None and observer_is_healthy(self.observer):
            return
        if self.observer is not None:
            log.error("action=watch the file observer stopped; restarting it and rescanning")
            stop_observer(self.observer)
            self._next_rescan = 0.0
        try:
            self.observer = start_observer(self.settings, self.ctx.layout, self.pending)
        except OSError as exc:
            self.observer = None
            self.reporter.problems.report(
                ACTION_PREPARE,
                self.settings.hotfolder_root,
                f"cannot watch for dropped files ({reason(exc)}); relying on rescans",
            )

    def rescan(self) -> None:
        """Walk the drop folders for files whose events were missed."""
        for path in self.ctx.layout.outbound_files():
            self.pending.add(KIND_OUTBOUND, path)

    def _look_into(self, directory) -> None:
        """A new folder: queue what is in it already (its watch may have come too late)."""
        try:
            entries = list(directory.rglob("*"))
        except OSError:
            return
        for path in entries:
            if self.ctx.layout.outbound(path) is not None:
                self.pending.add(KIND_OUTBOUND, path)
