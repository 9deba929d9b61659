"""The reporter thread: every short request to the portal, one after another.

Heartbeats (every ``heartbeat_seconds``: they keep the agent's leases, and the approval
files waiting are asked for with them), confirmations, problems, resolved problems,
written notifications and approval files and, every ``rescan_seconds``, the list of
orders whose hotfolders should exist. Nothing it sends is lost while the
portal cannot be reached: items wait in order and go out when it answers again (the
waits grow, with jitter; ``reachability`` logs the change once). Results the main loop
needs come back through the context's event queue. The main loop itself never waits
for the network, so a stop is never held up by a slow portal.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hotfolder_agent.client import BadAnswer, Interrupted, PortalError
from hotfolder_agent.context import Context

log = logging.getLogger(__name__)

ACTION_DELIVER = "deliver"
ACTION_NOTIFY = "notify"
ACTION_SEND = "send"
ACTION_PREPARE = "prepare"

EVENT_CONFIRMED = "confirmed"
EVENT_NOTIFIED = "notified"
EVENT_ORDERS = "orders"
EVENT_APPROVALS = "approvals"
EVENT_APPROVALS_PLACED = "approvals_placed"
RESOLVED_PER_REPORT = 1000
NOTIFICATIONS_PER_REPORT = 200
CONFIRMATIONS_PER_REPORT = 1000
NOTIFICATION_BYTES_PER_REPORT = 4 * 1024 * 1024
# The last heartbeat, sent while the agent stops, may take this long at most.
LAST_BEAT_SECONDS = 2.0


def agent_version() -> str:
    """The installed ptportal version, as staff see it next to the heartbeat."""
    try:
        return version("ptportal")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class _Item:
    path: str
    body: dict
    event: str = ""  # the event the answer goes back as (with ``tag``)
    tag: object = None
    key: tuple = field(default_factory=tuple)  # equal keys replace each other while waiting
    sending: bool = False  # on its way: nothing may be added to it any more
    size: int = 0


class Problems:
    """Problems of paths, logged once while they last and reported to the portal."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self._open: set[tuple[str, str]] = set()
        # Paths said to be fine once in this run: problems an earlier run reported for
        # them are closed then, and not asked about again.
        self._cleared: set[str] = set()
        self._lock = threading.Lock()

    def report(
        self,
        action: str,
        path: Path | str,
        reason: str,
        *,
        file_id: int | None = None,
        project_no: str = "",
    ) -> None:
        """One ERROR line the first time, DEBUG while it repeats; the portal counts each."""
        key = (action, str(path))
        with self._lock:
            new = key not in self._open
            self._open.add(key)
        name = Path(str(path)).name
        log.log(
            logging.ERROR if new else logging.DEBUG,
            "order=%s file=%s action=%s failed: %s (%s)",
            project_no or "-",
            name,
            action,
            reason,
            path,
        )
        self.reporter.error(action, str(path), reason, file_id=file_id, project_no=project_no)

    def resolved(self, paths: list[Path | str], file_ids: list[int] = ()) -> None:
        """These paths went through: their open problems close (the portal closes those of
        ``file_ids`` by itself when they are confirmed)."""
        names = {str(path) for path in paths}
        with self._lock:
            known = {key for key in self._open if key[1] in names}
            self._open -= known
            tell = {key[1] for key in known} | (names - self._cleared)
            self._cleared |= names
        ordered = sorted(tell)
        for start in range(0, len(ordered), RESOLVED_PER_REPORT):
            self.reporter.resolved(ordered[start : start + RESOLVED_PER_REPORT], list(file_ids))

    def forget(self, paths: list[Path | str]) -> None:
        """Problems of these paths are over and the portal knows it already (a confirmed
        file closes its own): only the log forgets them."""
        names = {str(path) for path in paths}
        with self._lock:
            self._open = {key for key in self._open if key[1] not in names}


class Reporter(threading.Thread):
    """Sends queued reports and heartbeats; ``queue_length`` is told to staff with each beat."""

    def __init__(self, ctx: Context, queue_length: Callable[[], int]) -> None:
        super().__init__(name="reporter", daemon=True)
        self.ctx = ctx
        self.queue_length = queue_length
        self._items: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._next_beat = 0.0
        self._next_orders = 0.0
        self._orders_after = 0
        self.problems = Problems(self)

    # --- what others queue -------------------------------------------------------------

    def _queue(self, item: _Item) -> None:
        with self._lock:
            if item.key:
                for index, waiting in enumerate(self._items):
                    if waiting.key == item.key:
                        self._items[index] = item
                        break
                else:
                    self._items.append(item)
            else:
                self._items.append(item)
        self._wake.set()

    def confirm(self, deliveries: list[dict]) -> None:
        """Files placed: confirm them (the answer comes back as EVENT_CONFIRMED with their
        ids). Confirmations waiting together go in one request."""
        ids = [item["file_id"] for item in deliveries]
        with self._lock:
            last = self._items[-1] if self._items else None
            if (
                last is not None
                and last.event == EVENT_CONFIRMED
                and not last.sending
                and len(last.tag) + len(ids) <= CONFIRMATIONS_PER_REPORT
            ):
                last.body["deliveries"] += deliveries
                last.tag += ids
                return
        body = {"agent_id": self.ctx.agent_id, "deliveries": list(deliveries)}
        self._queue(_Item("/api/v1/agent/deliveries", body, EVENT_CONFIRMED, ids))

    def error(
        self, action: str, path: str, reason: str, *, file_id: int | None, project_no: str
    ) -> None:
        body = {"agent_id": self.ctx.agent_id, "action": action, "path": path, "reason": reason}
        if file_id:
            body["file_id"] = file_id
        if project_no:
            body["project_no"] = project_no[:64]
        self._queue(_Item("/api/v1/agent/errors", body, key=("error", action, path)))

    def resolved(self, paths: list[str], file_ids: list[int]) -> None:
        body = {"agent_id": self.ctx.agent_id, "paths": paths, "file_ids": file_ids}
        self._queue(_Item("/api/v1/agent/errors/resolved", body))

    def notification(self, name: str, file_ids: list[int], xml: bytes) -> None:
        """An XML written: recorded by the portal (EVENT_NOTIFIED with ``name`` after).

        XMLs waiting together go in one request (up to ``NOTIFICATIONS_PER_REPORT`` or
        ``NOTIFICATION_BYTES_PER_REPORT``): a thousand files, a handful of requests.
        """
        entry = {"file_name": name, "file_ids": file_ids, "xml": xml.decode("utf-8")}
        with self._lock:
            last = self._items[-1] if self._items else None
            if (
                last is not None
                and last.event == EVENT_NOTIFIED
                and not last.sending
                and len(last.tag) < NOTIFICATIONS_PER_REPORT
                and last.size + len(xml) <= NOTIFICATION_BYTES_PER_REPORT
            ):
                last.body["notifications"].append(entry)
                last.tag.append(name)
                last.size += len(xml)
                return
        body = {"agent_id": self.ctx.agent_id, "notifications": [entry]}
        item = _Item("/api/v1/agent/notifications", body, EVENT_NOTIFIED, [name], size=len(xml))
        self._queue(item)

    def approvals_placed(self, proof_ids: list[int]) -> None:
        """Approval files written: the portal hands them out no more (EVENT_APPROVALS_PLACED
        with the ids after)."""
        body = {"agent_id": self.ctx.agent_id, "proof_ids": list(proof_ids)}
        item = _Item("/api/v1/agent/approvals/placed", body, EVENT_APPROVALS_PLACED, proof_ids)
        self._queue(item)

    def wake(self) -> None:
        """Look at the queue (and the stop flag) now."""
        self._wake.set()

    # --- the thread ------------------------------------------------------------------------

    def _beat_body(self, stopped: bool = False, release: list[int] = ()) -> dict:
        return {
            "agent_id": self.ctx.agent_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": agent_version(),
            "watch_mode": self.ctx.settings.watch_mode,
            "queue_length": self.queue_length(),
            "heartbeat_seconds": self.ctx.settings.heartbeat_seconds,
            "stopped": stopped,
            "release": list(release),
        }

    def run(self) -> None:
        try:
            while not self.ctx.stopping.is_set():
                if not self._step():
                    break
        except Interrupted:
            pass
        finally:
            self.ctx.client.close()

    def _step(self) -> bool:
        """One thing to do, or a wait; False once stopping."""
        now = time.monotonic()
        try:
            if now >= self._next_beat:
                self.ctx.client.call("POST", "/api/v1/agent/heartbeat", self._beat_body())
                self._fetch_approvals()
                self._next_beat = now + self.ctx.settings.heartbeat_seconds
                self.ctx.reachability.ok()
                return True
            if now >= self._next_orders:
                self._fetch_orders()
                self._next_orders = now + self.ctx.settings.rescan_seconds
                self.ctx.reachability.ok()
                return True
            with self._lock:
                item = self._items[0] if self._items else None
                if item is not None:
                    item.sending = True
            if item is None:
                self._wake.wait(max(min(self._next_beat, self._next_orders) - now, 0.0))
                self._wake.clear()
                return True
            answer = self._send(item)
            with self._lock:
                if self._items and self._items[0] is item:
                    self._items.popleft()
            self.ctx.reachability.ok()
            if item.event:
                self.ctx.events.put((item.event, (item.tag, answer)))
        except Interrupted:
            return False
        except PortalError as exc:
            return not self.ctx.pause(exc)
        return True

    def _send(self, item: _Item) -> dict:
        try:
            return self.ctx.client.call("POST", item.path, item.body)
        except BadAnswer as exc:
            # The portal refuses this report for good (4xx): waiting will not change that.
            log.error("action=report the portal refused %s: %s", item.path, exc)
            return {"error": str(exc), "status": exc.status}

    def _fetch_approvals(self) -> None:
        try:
            answer = self.ctx.client.call("GET", "/api/v1/agent/approvals")
        except BadAnswer as exc:
            # A portal that refuses the question (an older release) must not hold up the
            # heartbeats: the agent goes on without approval files.
            log.debug("action=approvals the portal refused the question: %s", exc)
            return
        approvals = answer.get("approvals")
        if isinstance(approvals, list) and approvals:
            self.ctx.events.put((EVENT_APPROVALS, approvals))

    def _fetch_orders(self) -> None:
        while True:
            answer = self.ctx.client.call("GET", f"/api/v1/agent/orders?after={self._orders_after}")
            orders = answer.get("orders") or []
            if not isinstance(orders, list) or not orders:
                return
            self.ctx.events.put((EVENT_ORDERS, orders))
            last = orders[-1].get("id") if isinstance(orders[-1], dict) else None
            if not isinstance(last, int) or last <= self._orders_after:
                return
            self._orders_after = last

    def last_beat(self, release: list[int]) -> None:
        """Tell the portal the agent stops (staff see "stopped") and give ``release`` back.

        Called by the main loop after the connections were interrupted: one short try.
        """
        self.join(timeout=LAST_BEAT_SECONDS)
        client = self.ctx.client
        client.resume()
        try:
            client.call(
                "POST",
                "/api/v1/agent/heartbeat",
                self._beat_body(stopped=True, release=release),
                timeout=LAST_BEAT_SECONDS,
            )
        except PortalError as exc:
            log.warning("action=stop the portal did not hear that the agent stops: %s", exc)
        finally:
            client.interrupt()
            client.close()
