"""The poller thread: asks the portal for work and waits there until some comes.

One lease request at a time (``POST /api/v1/agent/leases``) for as many files as there
is room for (``Slots``), waiting up to ``WAIT_SECONDS`` on the portal for a file to
turn clean (long poll: the portal answers the moment one does, so nothing waits for a
polling interval). The answer goes to the main loop through the event queue. With every
request the agent says which files it holds already, so a lease whose answer was lost
comes back, and a lease the main loop still works on does not come twice.
"""

from __future__ import annotations

import logging
import threading

from hotfolder_agent.client import Interrupted, PortalError
from hotfolder_agent.context import Context

log = logging.getLogger(__name__)

EVENT_LEASES = "leases"
# How long the portal holds a lease request open when there is nothing to do. nginx's
# proxy_read_timeout must be longer (README: "Portal in the DMZ, agent inside").
WAIT_SECONDS = 25.0


class Slots:
    """Room for leased files not downloaded yet (``size``: the lease runs this far ahead
    of the downloads), and the files in hand; shared by the poller and the main loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._busy = 0
        self._holding: set[int] = set()
        self._lock = threading.Lock()
        self.freed = threading.Event()

    def free(self) -> int:
        with self._lock:
            return max(self.size - self._busy, 0)

    def worth_asking(self) -> int:
        """How many files to ask for now: all slots when idle (a lone file goes at once),
        else only once half of them are free — while busy, one lease request for several
        files instead of one per file (each costs the portal a write transaction)."""
        with self._lock:
            free = max(self.size - self._busy, 0)
            return free if self._busy == 0 or free * 2 >= self.size else 0

    def take(self, count: int = 1) -> None:
        with self._lock:
            self._busy += count

    def give_back(self, count: int = 1) -> None:
        with self._lock:
            self._busy = max(self._busy - count, 0)
        self.freed.set()

    def hold(self, file_ids: list[int]) -> None:
        with self._lock:
            self._holding.update(file_ids)

    def drop(self, file_ids: list[int]) -> None:
        with self._lock:
            self._holding.difference_update(file_ids)

    def holding(self) -> list[int]:
        with self._lock:
            return sorted(self._holding)


class Poller(threading.Thread):
    """Leases files for the free slots; asks once for ``reclaim`` (files of a previous run)."""

    def __init__(self, ctx: Context, slots: Slots, reclaim: list[int]) -> None:
        super().__init__(name="poller", daemon=True)
        self.ctx = ctx
        self.slots = slots
        self.reclaim = list(reclaim)

    def run(self) -> None:
        try:
            while not self.ctx.stopping.is_set():
                wanted = self.slots.worth_asking()
                if wanted == 0 and not self.reclaim:
                    self.slots.freed.wait(1.0)
                    self.slots.freed.clear()
                    continue
                if not self._ask(max(wanted, 1)):
                    return
        finally:
            self.ctx.client.close()

    def _ask(self, free: int) -> bool:
        """One lease request; False once the agent stops."""
        body = {
            "agent_id": self.ctx.agent_id,
            "max_files": min(free, 64),
            "wait": 0 if self.reclaim else WAIT_SECONDS,
            "holding": self.slots.holding(),
            "file_ids": self.reclaim,
            "heartbeat_seconds": self.ctx.settings.heartbeat_seconds,
        }
        try:
            answer = self.ctx.client.call(
                "POST",
                "/api/v1/agent/leases",
                body,
                timeout=WAIT_SECONDS + self.ctx.settings.timeout_seconds,
            )
        except Interrupted:
            return False
        except PortalError as exc:
            return not self.ctx.pause(exc)
        self.ctx.reachability.ok()
        self.reclaim = []
        files = answer.get("files")
        granted = [
            entry["id"]
            for entry in files or []
            if isinstance(entry, dict) and isinstance(entry.get("id"), int)
        ]
        # Held before the next request goes out, so the portal does not hand them out again.
        self.slots.hold(granted)
        self.slots.take(len(granted))
        if granted or answer.get("refused"):
            self.ctx.events.put((EVENT_LEASES, answer))
        return True
