"""The agent's memory across restarts: its own folder on its own host (``[agent] state_dir``).

The agent has no database. What it must remember lives here as small JSON records,
one per thing in flight, each written whole or not at all (a hidden temporary name,
then rename; with fsync of the record and of its folder where the step must survive a
crash):

- ``agent.json``: the agent's id, made once. It names the agent's leases on the portal,
  so an agent restarted after a crash finds its files still reserved for it.
- ``lock``: held (flock) while the agent runs; a second agent on the same folder stops.
- ``deliveries/<file id>.json``: a file on its way into a hotfolder (``delivery``, step 1:
  what the portal said of it, where its copy goes); ``deliveries/plan-….json``: the names
  planned for the files placed together (step 4, durable before any is linked).
- ``notifications/<name>.json``: an XML job notification being written (``notification``).
- ``outbound/<key>.json``: a dropped staff file being uploaded (``outbound``).

The bytes of a download in progress stay beside their destination (a hidden
``.ptportal-…part`` in the hotfolder), so that placing them is an atomic link on the
same file system; the record here says where they are.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
from pathlib import Path

from hotfolder_agent.fsutil import sync_directory, write_files

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
NOTIFICATIONS = "notifications"
OUTBOUND = "outbound"
KINDS = (DELIVERIES, NOTIFICATIONS, OUTBOUND)


class StateBusy(Exception):
    """Another agent process uses this state folder."""


class StateFolder:
    """The records of one agent; ``open`` before use (it takes the lock)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.agent_id = ""
        self._lock_descriptor: int | None = None

    def open(self) -> None:
        """Create the folder, take its lock, read (or make) the agent's id.

        Raises StateBusy, or OSError if the folder cannot be used.
        """
        for kind in KINDS:
            (self.directory / kind).mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StateBusy(f"{self.directory} is in use by another agent process") from None
        self._lock_descriptor = descriptor
        self.agent_id = self._identity()

    def close(self) -> None:
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)  # releases the lock
            self._lock_descriptor = None

    def _identity(self) -> str:
        path = self.directory / "agent.json"
        try:
            agent_id = json.loads(path.read_text(encoding="utf-8"))["agent_id"]
            if isinstance(agent_id, str) and agent_id:
                return agent_id
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OSError(f"{path} cannot be read ({exc}): remove it to start afresh") from None
        host = socket.gethostname().split(".")[0][:40] or "agent"
        agent_id = f"{host}-{secrets.token_hex(4)}"
        write_files(self.directory, {"agent.json": _encode({"agent_id": agent_id})})
        return agent_id

    @property
    def key(self) -> str:
        """A short tag of this agent for its temporary file names (two agents, two names)."""
        return hashlib.sha256(self.agent_id.encode()).hexdigest()[:8]

    # --- records ----------------------------------------------------------------------

    def path(self, kind: str, name: str) -> Path:
        return self.directory / kind / f"{name}.json"

    def write(self, kind: str, name: str, record: dict, *, durable: bool = False) -> None:
        """Replace one record; ``durable``: on disk before this returns."""
        if durable:
            self.write_many(kind, {name: record})
            return
        folder = self.directory / kind
        temp = folder / f".{name}.json.tmp"
        temp.write_bytes(_encode(record))
        os.replace(temp, folder / f"{name}.json")

    def write_many(self, kind: str, records: dict[str, dict]) -> None:
        """Replace several records durably, sharing the fsyncs (one for the folder)."""
        if records:
            write_files(
                self.directory / kind,
                {f"{name}.json": _encode(record) for name, record in records.items()},
            )

    def read(self, kind: str, name: str) -> dict | None:
        """One record, or None if there is none (or it cannot be read)."""
        try:
            record = json.loads(self.path(kind, name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def read_all(self, kind: str) -> dict[str, dict]:
        """Every record of ``kind`` by name; unreadable ones are set aside with a warning."""
        records = {}
        folder = self.directory / kind
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as exc:
                aside = path.with_name(path.name + ".broken")
                log.warning("action=recover record %s unreadable (%s); set aside", path, exc)
                os.replace(path, aside)
                continue
            records[path.name.removesuffix(".json")] = record
        for leftover in folder.glob(".*.json.tmp"):
            leftover.unlink(missing_ok=True)  # a write a crash cut short: never renamed
        return records

    def remove(self, kind: str, names: list[str], *, durable: bool = False) -> None:
        """Delete records (missing ones are fine); ``durable``: the folder is fsynced."""
        for name in names:
            self.path(kind, name).unlink(missing_ok=True)
        if durable and names:
            sync_directory(self.directory / kind)


def _encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
