"""Dropped files waiting to be taken, and the stability rule: unchanged for ``stable_seconds``.

Filled from watchdog's thread and from rescans, drained by the agent's loop. A
file is ready once its size and modification time stayed the same for the whole
stable time; a file that disappears is forgotten. Thread-safe.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KIND_OUTBOUND = "outbound"
KIND_DIRECTORY = "directory"


@dataclass
class _Watch:
    signature: tuple[int, int] | None
    unchanged_since: float
    check_at: float


class PendingFiles:
    """A set of (kind, path) with a stability check; ``on_add`` is called when one arrives."""

    def __init__(
        self,
        stable_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_add: Callable[[], None] = lambda: None,
    ) -> None:
        self.stable_seconds = stable_seconds
        self.clock = clock
        self.on_add = on_add
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, Path], _Watch] = {}

    def add(self, kind: str, path: Path, delay: float = 0.0) -> None:
        """Look at ``path`` (again) after ``delay`` seconds."""
        now = self.clock()
        with self._lock:
            watch = self._entries.get((kind, path))
            if watch is None:
                self._entries[(kind, path)] = _Watch(None, now, now + delay)
            elif delay:
                watch.check_at = max(watch.check_at, now + delay)
            # else: looked at when it is due. A file put back with a delay (the portal
            # refused it) waits that out: a rescan or a new event does not bring it forward.
        self.on_add()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: tuple[str, Path]) -> bool:
        with self._lock:
            return key in self._entries

    def next_check(self) -> float | None:
        """The monotonic time of the earliest due check, or None when empty."""
        with self._lock:
            return min((watch.check_at for watch in self._entries.values()), default=None)

    def take_ready(self) -> list[tuple[str, Path]]:
        """Remove and return the entries that are due and stable, oldest first."""
        now = self.clock()
        ready = []
        with self._lock:
            for key, watch in list(self._entries.items()):
                if watch.check_at > now:
                    continue
                kind, path = key
                if kind == KIND_DIRECTORY:
                    ready.append(key)
                    del self._entries[key]
                    continue
                signature = _signature(path)
                if signature is None:
                    del self._entries[key]  # gone, or not a regular file
                elif signature != watch.signature:
                    watch.signature = signature
                    watch.unchanged_since = now
                    watch.check_at = now + self.stable_seconds
                    if self.stable_seconds == 0:
                        ready.append(key)
                        del self._entries[key]
                elif now - watch.unchanged_since >= self.stable_seconds:
                    ready.append(key)
                    del self._entries[key]
                else:
                    watch.check_at = watch.unchanged_since + self.stable_seconds
        return ready


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns
