"""Staff files back to the customer: from an order's drop folder to the portal, then ``sent``.

Staff drop a file into ``<order hotfolder>/<outbound_folder>/In Bearbeitung`` (or
``…/Final``); once its size and time stamp stayed unchanged for ``stable_seconds``:

1. it is recorded in the state folder (path, order, folder, size, time stamp, inode);
2. a tus upload is created on the portal (``POST``; metadata: name, folder, customer and
   order number, the dropped file's path) and its address recorded, durably;
3. the bytes go in ``PATCH`` requests of ``CHUNK_BYTES`` (or less, where the portal's
   ``HEAD`` says it takes less), each from the offset the portal reports (``HEAD``), so
   an interrupted upload continues where the portal stopped;
4. once the portal has every byte — it scans the file like any upload, nothing reaches
   the customer unscanned — the dropped file moves into ``sent`` beside it (link, then
   unlink: never overwrites) and the record goes.

A file that changes while it is sent (size or time stamp) is cancelled on the portal
(tus termination) and sent again once it is stable. Killed anywhere, a restart takes up
the record: the portal says how far the upload got, and a file already linked into
``sent`` (found by its inode) is not sent twice. Uploads run on one thread of their
own: staff files are few, and they never hold up the customers' files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hotfolder_agent.client import BadAnswer, Interrupted, PortalError
from hotfolder_agent.context import Context
from hotfolder_agent.fsutil import move_into, reason, sync_directory
from hotfolder_agent.layout import OUTBOUND_FOLDERS, SENT_FOLDER, OutboundPath
from hotfolder_agent.reporter import ACTION_SEND, Reporter
from hotfolder_agent.seams import pause_at
from hotfolder_agent.state import OUTBOUND

log = logging.getLogger(__name__)

EVENT_SENT = "sent"
STEP_UPLOAD_STARTED = "upload_started"
CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNK_HEADER = "Ptportal-Max-Chunk-Bytes"
TUS = {"Tus-Resumable": "1.0.0"}
_UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{8,128}")
# A file the portal refused (unknown order, empty file …) is tried again this much later.
RETRY_SECONDS = 600.0


class SendFailed(Exception):
    """The dropped file cannot go to the portal now; the message says why."""


class Changed(Exception):
    """The dropped file changed while it was sent: it is sent again once stable."""


def record_key(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:24]


def _metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


class _Slice:
    """``length`` bytes of an open file from its current position (a PATCH body)."""

    def __init__(self, reader, length: int) -> None:
        self.reader = reader
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.reader.read(size)
        self.left -= len(data)
        return data


class Outbound:
    """Dropped files being sent; ``submit`` hands one to the upload thread."""

    def __init__(self, ctx: Context, reporter: Reporter) -> None:
        self.ctx = ctx
        self.problems = reporter.problems
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="upload")
        self._busy: set[Path] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._busy)

    def recover(self) -> None:
        """Take up the uploads the last run did not finish."""
        for key, record in self.ctx.state.read_all(OUTBOUND).items():
            path = Path(str(record.get("path", "")))
            if record_key(path) != key:
                self.ctx.state.remove(OUTBOUND, [key])
                continue
            self.submit(path)

    def submit(self, path: Path) -> None:
        with self._lock:
            if path in self._busy:
                return
            self._busy.add(path)
        self._executor.submit(self._run, path)

    def shutdown_soon(self) -> None:
        """No new uploads; the one in hand ends at its next request (the agent stops)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, path: Path) -> None:
        try:
            outcome: object = self.send(path)
        except (SendFailed, Changed, Interrupted) as exc:
            outcome = exc
        except Exception as exc:  # a bug with one file must not end the thread
            log.exception("file=%s action=send failed", path.name)
            outcome = SendFailed(f"unexpected error: {exc}")
        finally:
            self.ctx.client.close()
        self.ctx.events.put((EVENT_SENT, (path, outcome)))

    def on_sent(self, path: Path, outcome: object, again: Callable[[Path, float], None]) -> None:
        """The main loop's part: log, report, or queue the file again (``again``)."""
        with self._lock:
            self._busy.discard(path)
        if isinstance(outcome, Path):
            self.problems.resolved([path])
        elif isinstance(outcome, Changed):
            again(path, 0.0)
        elif isinstance(outcome, SendFailed):
            dropped = self.ctx.layout.outbound(path)
            self.problems.report(
                ACTION_SEND,
                path,
                f"{outcome} (tried again in {RETRY_SECONDS:.0f} s)",
                project_no=dropped.project_no if dropped else "",
            )
            again(path, RETRY_SECONDS)

    # --- on the upload thread ---------------------------------------------------------------

    def send(self, path: Path) -> Path | None:
        """Steps 1–4 for one dropped file; returns where it went in ``sent`` (None: gone)."""
        state = self.ctx.state
        key = record_key(path)
        record = state.read(OUTBOUND, key)
        dropped = self.ctx.layout.outbound(path)
        if dropped is None or dropped.folder not in OUTBOUND_FOLDERS:
            state.remove(OUTBOUND, [key])
            return None
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return self._vanished(path, key, record)
        signature = (info.st_size, info.st_mtime_ns)
        if record is None or (record["size"], record["mtime_ns"]) != signature:
            if record is not None and record.get("upload"):
                self._cancel(record["upload"])
            record = {
                "path": str(path),
                "project_no": dropped.project_no,
                "customer_no": dropped.customer_no or "",
                "folder": dropped.folder,
                "size": info.st_size,
                "mtime_ns": info.st_mtime_ns,
                "inode": info.st_ino,
                "upload": "",
            }
            state.write(OUTBOUND, key, record)
        while True:
            if not record["upload"]:
                record["upload"] = self._create(dropped, record)
                state.write(OUTBOUND, key, record, durable=True)
            if self._upload(path, record):
                break
            record["upload"] = ""  # the portal no longer knows it (abandoned): start afresh
            state.write(OUTBOUND, key, record, durable=True)
        sent = self._move(path, record)
        state.remove(OUTBOUND, [key])
        log.info(
            "order=%s file=%s action=sent_to_portal folder=%s sent=%s",
            dropped.project_no,
            dropped.name,
            dropped.folder,
            sent,
        )
        return sent

    def _call(self, method: str, path: str, **options):
        """A tus request, waiting while the portal cannot be reached."""
        while True:
            try:
                answer = self.ctx.client.raw(method, path, **options)
                self.ctx.reachability.ok()
                return answer
            except Interrupted:
                raise
            except PortalError as exc:
                if isinstance(exc, BadAnswer):
                    raise SendFailed(str(exc)) from None
                if self.ctx.pause(exc):
                    raise Interrupted("the agent is stopping") from None

    def _create(self, dropped: OutboundPath, record: dict) -> str:
        metadata = {
            "filename": dropped.name,
            "folder": dropped.folder,
            "source": record["path"],
            "agent_id": self.ctx.agent_id,
        }
        if dropped.customer_no:
            metadata["customer_no"] = dropped.customer_no
        answer = self._call(
            "POST",
            f"/api/v1/agent/orders/{dropped.project_no}/uploads",
            headers={
                **TUS,
                "Upload-Length": str(record["size"]),
                "Upload-Metadata": _metadata(metadata),
            },
        )
        if answer.status != 201:
            raise SendFailed(f"{answer.status}: {answer.body.get('error') or 'refused'}")
        upload_key = (answer.headers.get("Location") or "").rstrip("/").rpartition("/")[2]
        if not _UPLOAD_KEY.fullmatch(upload_key):
            raise SendFailed("the portal's answer names no upload")
        return upload_key

    def _offset(self, record: dict) -> tuple[int, int] | None:
        """Bytes the portal has of the upload and the most it takes in one PATCH; None if
        it no longer knows the upload."""
        answer = self._call("HEAD", f"/api/v1/agent/uploads/{record['upload']}", headers=TUS)
        if answer.status == 404:
            return None
        offset = answer.headers.get("Upload-Offset", "")
        if answer.status != 200 or not offset.isdigit() or int(offset) > record["size"]:
            raise SendFailed(f"the portal answered {answer.status} about the upload")
        # The portal's [portal] upload_chunk_bytes (a portal that does not say: our own).
        most = answer.headers.get(MAX_CHUNK_HEADER, "")
        chunk = min(CHUNK_BYTES, int(most)) if most.isdigit() and int(most) > 0 else CHUNK_BYTES
        return int(offset), chunk

    def _upload(self, path: Path, record: dict) -> bool:
        """Step 3: PATCH from the portal's offset until it has every byte; False if the
        portal no longer knows the upload."""
        while True:
            known = self._offset(record)
            if known is None:
                return False
            offset, chunk = known
            if offset == record["size"]:
                return True
            try:
                with path.open("rb") as reader:
                    info = os.fstat(reader.fileno())
                    if (info.st_size, info.st_mtime_ns) != (record["size"], record["mtime_ns"]):
                        self._cancel(record["upload"])
                        raise Changed(f"{path} changed while it was sent")
                    reader.seek(offset)
                    length = min(chunk, record["size"] - offset)
                    answer = self._call(
                        "PATCH",
                        f"/api/v1/agent/uploads/{record['upload']}",
                        headers={
                            **TUS,
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream",
                            "Content-Length": str(length),
                        },
                        body=_Slice(reader, length),
                    )
            except OSError as exc:
                raise SendFailed(f"cannot read {path}: {reason(exc)}") from None
            if answer.status not in (204, 409):
                raise SendFailed(f"{answer.status}: {answer.body.get('error') or 'refused'}")
            pause_at(STEP_UPLOAD_STARTED)

    def _cancel(self, upload_key: str) -> None:
        with contextlib.suppress(SendFailed):  # finished or gone already: nothing to cancel
            self._call("DELETE", f"/api/v1/agent/uploads/{upload_key}", headers=TUS)

    def _move(self, path: Path, record: dict) -> Path:
        """Step 4: into ``sent`` beside it; after a kill between link and unlink, the name
        it already has there is kept."""
        sent_dir = path.parent / SENT_FOLDER
        linked = _linked_copy_in(sent_dir, path)
        if linked is not None:
            return linked
        try:
            return move_into(path, sent_dir)
        except OSError as exc:
            raise SendFailed(f"in the portal, but not moved to sent: {reason(exc)}") from None

    def _vanished(self, path: Path, key: str, record: dict | None) -> None:
        """The dropped file is gone: moved to ``sent`` by a run that was killed, or deleted."""
        if record is not None and record.get("upload"):
            offset = self._offset(record)
            if offset is not None and offset < record["size"]:
                self._cancel(record["upload"])
                log.warning("file=%s action=send the dropped file disappeared", path.name)
        self.ctx.state.remove(OUTBOUND, [key])
        return None


def _linked_copy_in(directory: Path, source: Path) -> Path | None:
    """After a kill between link and unlink: the name ``source`` already has in ``directory``."""
    try:
        inode = source.stat().st_ino
        entries = [entry for entry in os.scandir(directory) if entry.inode() == inode]
    except FileNotFoundError:
        return None
    for entry in entries:
        if os.path.samefile(entry.path, source):
            source.unlink()
            sync_directory(source.parent)
            return Path(entry.path)
    return None
