"""watchdog glue for the drop folders: handlers only filter and enqueue; the loop does the rest.

Handlers run one after another on watchdog's thread, so they never touch the disk
or the network. Events are only a trigger: the periodic rescan finds what an event
missed (inotify queue overflow, a share that dropped, files that arrived while the
agent was stopped).
"""

from __future__ import annotations

import logging
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from hotfolder_agent.layout import Layout
from hotfolder_agent.pending import KIND_DIRECTORY, KIND_OUTBOUND, PendingFiles
from shared.config import AgentSettings

log = logging.getLogger(__name__)

# "opened" and "closed_no_write" say nothing changed.
_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})
# What may mean a new file or folder: a file written in place ends with "closed", one
# moved in gives "moved" or only "created". Asking the kernel for nothing else keeps
# the agent's own downloads into the hotfolders (open, every write, delete) from
# costing an event each.
WANTED_EVENTS = [
    FileCreatedEvent,
    FileClosedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


def _is_noise(event: FileSystemEvent) -> bool:
    # A folder is "modified" whenever a file in it changes: that file has its own event.
    return (
        event.event_type in _IGNORED_EVENTS
        or event.event_type == "deleted"
        or (event.is_directory and event.event_type not in ("created", "moved"))
    )


def _paths(event: FileSystemEvent) -> list[Path]:
    paths = [event.src_path, getattr(event, "dest_path", "")]
    return [Path(path.decode() if isinstance(path, bytes) else path) for path in paths if path]


class OutboundHandler(FileSystemEventHandler):
    """Files staff drop into an order's outbound folder."""

    def __init__(self, layout: Layout, pending: PendingFiles) -> None:
        self.layout = layout
        self.pending = pending

    def on_any_event(self, event: FileSystemEvent) -> None:
        if _is_noise(event):
            return
        for path in _paths(event):
            if event.is_directory:
                self.pending.add(KIND_DIRECTORY, path)
            elif self.layout.outbound(path) is not None:
                self.pending.add(KIND_OUTBOUND, path)


def make_observer(agent: AgentSettings) -> BaseObserver:
    """inotify (native) for local disks, or directory polling for SMB/NFS mounts."""
    if agent.watch_mode == "polling":
        return PollingObserver(timeout=agent.poll_interval_seconds)
    return Observer()


def start_observer(agent: AgentSettings, layout: Layout, pending: PendingFiles) -> BaseObserver:
    """Watch the hotfolder root for dropped files; raises OSError if a watch cannot be set."""
    layout.hotfolder_root.mkdir(parents=True, exist_ok=True)
    observer = make_observer(agent)
    observer.schedule(
        OutboundHandler(layout, pending),
        str(layout.hotfolder_root),
        recursive=True,
        event_filter=WANTED_EVENTS,
    )
    observer.start()
    return observer


def observer_is_healthy(observer: BaseObserver) -> bool:
    """False once the observer or an emitter died (a dropped share: watchdog #1065)."""
    return observer.is_alive() and all(emitter.is_alive() for emitter in observer.emitters)


def stop_observer(observer: BaseObserver | None, timeout: float = 10.0) -> None:
    """Stop the observer; its threads are daemons, so a stop may leave them behind."""
    if observer is None:
        return
    try:
        observer.stop()
        observer.join(timeout=timeout)
    except RuntimeError:
        pass  # never started
