"""Receiving uploads into the staging area, chunk by chunk, resumable (tus 1.0 semantics).

A file is announced with its name and size (``start_upload``), then its bytes
arrive in any number of requests, each continuing exactly where the bytes on
disk end (``append_chunk``). Every piece goes straight to the staging file and
into a running SHA-256, so memory stays flat whatever the size and the hash
costs no second pass. The staging area lies outside the order folders: nothing
downstream sees a file before it is complete and scanned (``shared.files.intake``).

The running hashes live in this process. Another gunicorn worker, or this one
after a restart, rebuilds a hash from the bytes on disk once and carries on.

What counts as received is what is recorded: a PATCH writes its bytes, makes them durable
(fdatasync), then records the new offset (``received_bytes``); HEAD answers that record,
never the size of the staging file, whose tail a killed worker may have left unrecorded
(the next PATCH at the recorded offset cuts such a tail off). tus-js-client takes a HEAD
offset equal to the length as "finished" and sends nothing more, so a file whose bytes are
all on disk but were never recorded as complete (the worker died in between) is completed
by whoever notices first: the next HEAD or PATCH, or the worker's minute sweep
(``complete_stranded_uploads``) — fsynced, hashed from disk, recorded, scanned.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import hashlib
import logging
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from shared import audit
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound, ServiceError
from shared.files.acceptance import refuse_by_name
from shared.files.access import check_uploader
from shared.files.folders import FOLDER_INCOMING
from shared.files.names import check_upload_name
from shared.files.scanning import clamd_limits
from shared.models import FileEvent, Order, OrderFile, PortalLogin, StaffUser
from shared.seams import pause_at
from shared.tokens import new_token

log = logging.getLogger(__name__)

PIECE_BYTES = 256 * 1024
# How many received bytes go to the kernel with a hint to start writing them to disk.
WRITEBACK_BYTES = 8 * 1024 * 1024
# Room left on the staging disk beyond the announced size, for everything else on it.
FREE_SPACE_MARGIN = 256 * 1024 * 1024

_sync_data = getattr(os, "fdatasync", os.fsync)

# Test seam (shared.seams): a PATCH's bytes are written, not yet synced nor recorded.
STEP_UPLOAD_WRITTEN = "upload_written"
_SYNC_FILE_RANGE_WRITE = 2


class TooLarge(Invalid):
    """The announced size is over the configured limit; ``limit`` is that limit in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__("size", f"the file is larger than the limit of {human_size(limit)}")
        self.limit = limit


class EmptyFile(Invalid):
    """A file of 0 bytes: nothing to print."""

    def __init__(self) -> None:
        super().__init__("size", "the file is empty")


class NoSpace(ServiceError):
    """The staging disk has no room for the announced size right now."""


class UploadBusy(Conflict):
    """Another request is writing this upload right now."""

    def __init__(self) -> None:
        super().__init__("upload busy: another request is sending this file")


class OffsetMismatch(Conflict):
    """The request continues at another byte than the server has; ``offset`` is the right one."""

    def __init__(self, offset: int, requested: int) -> None:
        super().__init__(f"upload offset {requested} does not match the {offset} bytes received")
        self.offset = offset


class UploadClosed(Conflict):
    """The upload is complete (or gone) and takes no more bytes."""


def size_in_units(size: int) -> tuple[float, str]:
    """``(20.0, "GiB")`` for 20 GiB: the largest binary unit the size fills at least once."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return size / factor, unit
    return float(size), "bytes"


def human_size(size: int) -> str:
    """``20 GiB``, ``1.5 GiB``, ``300 MiB``, ``512 bytes``."""
    value, unit = size_in_units(size)
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def staging_path(settings: Settings, file: OrderFile) -> Path:
    """Where the bytes of ``file`` are kept until it is scanned."""
    if not file.upload_key:
        raise NotFound(f"file {file.id} has no staging file")
    return settings.storage.staging_root / f"{file.upload_key}.part"


def is_complete(file: OrderFile) -> bool:
    """True once every announced byte has arrived."""
    return file.received_at is not None


def upload_limit(settings: Settings) -> int:
    """The largest file accepted: the configured limit, or what clamd can scan when
    ``oversize_policy = reject`` (then nothing is ever held as too large to scan)."""
    limit = settings.portal.max_upload_bytes
    if settings.clamav.oversize_policy == "reject":
        limit = min(limit, clamd_limits(settings.clamav).largest_scannable)
    return limit


def check_upload_size(settings: Settings, size: int) -> None:
    """Refuse an empty file or one over the limit, before any byte is sent."""
    if size <= 0:
        raise EmptyFile()
    limit = upload_limit(settings)
    if size > limit:
        raise TooLarge(limit)


def _check_free_space(root: Path, size: int) -> None:
    free = shutil.disk_usage(root).free
    if free < size + FREE_SPACE_MARGIN:
        raise NoSpace(f"the staging area has {human_size(free)} free, not enough for this file")


def start_upload(
    settings: Settings,
    order: Order,
    display_name: str,
    size: int,
    login: PortalLogin | None = None,
    staff: StaffUser | None = None,
    folder: str = FOLDER_INCOMING,
    source: Path | None = None,
) -> OrderFile:
    """Announce a file: check name and size, create its row and its empty staging file.

    ``source`` is a file from the print shop's side; it is recorded as a FileEvent.
    """
    display_name = check_upload_name(display_name)
    if login is not None:
        refuse_by_name(settings, display_name)  # [files] accepted_types, before any byte
    check_upload_size(settings, size)
    root = settings.storage.staging_root
    root.mkdir(parents=True, exist_ok=True)
    _check_free_space(root, size)
    with write_transaction():
        check_uploader(order, login, folder)
        file = OrderFile.create(
            order=order,
            folder=folder,
            display_name=display_name,
            size=size,
            state=OrderFile.STATE_UPLOADING,
            upload_key=new_token(),
            uploaded_by_login=login,
            uploaded_by_staff=staff,
        )
        if source is not None:
            FileEvent.create(file=file, kind=EVENT_FROM_HOTFOLDER, detail=str(source))
        # Created inside the transaction: if this fails there is no row without a file.
        os.close(os.open(staging_path(settings, file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    log.info("upload %s of %d bytes started for order %s", file.id, size, order.project_no)
    return file


@dataclass
class _RunningHash:
    digest: Any  # hashlib's sha256 object
    offset: int


class HashCache:
    """The running SHA-256 of each upload in this process, with the offset it covers."""

    # Abandoned uploads must not grow the cache for ever; a dropped entry is rebuilt.
    MAX_ENTRIES = 1000

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _RunningHash] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> _RunningHash | None:
        with self._lock:
            return self._entries.pop(key, None)

    def put(self, key: str, running: _RunningHash) -> None:
        with self._lock:
            self._entries[key] = running
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries


hash_cache = HashCache()


def _hash_of_disk(descriptor: int, length: int) -> _RunningHash:
    """Hash the first ``length`` bytes on disk: the one extra pass after a worker switch."""
    digest = hashlib.sha256()
    position = 0
    while position < length:
        piece = os.pread(descriptor, min(PIECE_BYTES, length - position), position)
        if not piece:
            break
        digest.update(piece)
        position += len(piece)
    return _RunningHash(digest, position)


def _lock(descriptor: int) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UploadBusy() from None


def _open_staging(settings: Settings, file: OrderFile) -> int:
    try:
        return os.open(staging_path(settings, file), os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        raise UploadClosed("the upload is no longer open") from None


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(descriptor, view) :]
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace("the staging area is full") from None
        raise


@functools.cache
def _sync_file_range():
    """Linux's ``sync_file_range`` from libc, or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function


def _start_writeback(descriptor: int, start: int, length: int) -> None:
    """Let the kernel start writing these bytes to disk now, without waiting for it.

    The disk then works while the next bytes arrive, and the fdatasync that ends
    every PATCH finds little left to do instead of stalling the upload for a whole
    chunk (bench/README.md, benchmark 1). Only a hint; the
    fdatasync still decides what is durable.
    """
    function = _sync_file_range()
    if function is not None:
        function(descriptor, start, length, _SYNC_FILE_RANGE_WRITE)


def _receive(
    descriptor: int, stream: BinaryIO, running: _RunningHash, limit: int, file_id: int
) -> None:
    """Copy up to ``limit`` bytes from ``stream`` to disk and hash; stop where the body ends."""
    remaining = limit
    unhinted_from = running.offset
    while remaining > 0:
        try:
            piece = stream.read(min(PIECE_BYTES, remaining))
        except Exception as exc:
            # Whatever the stream raises (client gone, reset, timeout), the body is over:
            # keep every byte already written so the client can resume after them.
            log.info("upload %s: body broke off (%s)", file_id, type(exc).__name__)
            return
        if not piece:
            return
        _write_all(descriptor, piece)
        running.digest.update(piece)
        running.offset += len(piece)
        remaining -= len(piece)
        if running.offset - unhinted_from >= WRITEBACK_BYTES:
            _start_writeback(descriptor, unhinted_from, running.offset - unhinted_from)
            unhinted_from = running.offset


def _has_more(stream: BinaryIO) -> bool:
    try:
        return bool(stream.read(1))
    except Exception:
        return False


def durable_offset(settings: Settings, file: OrderFile) -> tuple[int, bool]:
    """What tus HEAD answers: the bytes recorded as received, and whether this call just
    completed the upload (then the caller asks for the scan).

    An upload whose bytes are all on disk but not recorded is completed here (see the
    module docstring); anything less is answered with the recorded offset.
    """
    if file.state != OrderFile.STATE_UPLOADING:
        return file.size, False
    if complete_stranded(settings, file):
        return file.size, True
    fresh = OrderFile.get_or_none(OrderFile.id == file.id)
    if fresh is None:
        raise UploadClosed("the upload is no longer open")
    if fresh.state != OrderFile.STATE_UPLOADING:
        return fresh.size, False
    return fresh.received_bytes, False


def complete_stranded(settings: Settings, file: OrderFile) -> bool:
    """Complete an upload whose announced bytes are all on disk but which is still recorded
    as uploading (its worker died after the last byte). True if this call completed it.

    Does nothing while another request writes the file (it holds the lock) or when bytes
    are missing. ``file`` is updated in place.
    """
    descriptor = _open_staging(settings, file)
    try:
        try:
            _lock(descriptor)
        except UploadBusy:
            return False
        fresh = OrderFile.get_or_none(OrderFile.id == file.id)
        if fresh is None or fresh.state != OrderFile.STATE_UPLOADING:
            return False
        if os.fstat(descriptor).st_size != file.size:
            return False
        return _complete_from_disk(file, descriptor)
    finally:
        os.close(descriptor)


def _complete_from_disk(file: OrderFile, descriptor: int) -> bool:
    """Sync, hash and record the whole file as received; the caller holds its lock."""
    os.fsync(descriptor)
    running = _hash_of_disk(descriptor, file.size)
    hash_cache.take(file.upload_key)
    if not _mark_received(file, running.digest.hexdigest()):
        return False
    log.warning(
        "upload %s: all %d bytes were on disk but not recorded; completed", file.id, file.size
    )
    return True


def complete_stranded_uploads(settings: Settings) -> list[int]:
    """The worker's sweep: complete every upload whose bytes are all on disk; their ids."""
    completed = []
    for file in OrderFile.select().where(OrderFile.state == OrderFile.STATE_UPLOADING):
        try:
            size = staging_path(settings, file).stat().st_size
        except (FileNotFoundError, NotFound):
            continue
        if size == file.size:
            try:
                if complete_stranded(settings, file):
                    completed.append(file.id)
            except UploadClosed:
                continue
    return completed


def append_chunk(
    settings: Settings, file: OrderFile, offset: int, stream: BinaryIO, length: int | None
) -> int:
    """Write the body of one tus PATCH at ``offset``; returns the new offset.

    ``length`` is the body's declared length (None when sent chunked). A body
    that ends early keeps what arrived; the client resumes from the new offset.
    ``file`` is updated in place, so ``is_complete(file)`` tells the caller.
    """
    if file.state != OrderFile.STATE_UPLOADING:
        return _closed_offset(file, offset, length)
    descriptor = _open_staging(settings, file)
    try:
        _lock(descriptor)
        # Another worker may have finished or cancelled it before we got the lock.
        fresh = OrderFile.get_or_none(OrderFile.id == file.id)
        if fresh is None or fresh.state != OrderFile.STATE_UPLOADING:
            raise UploadClosed("the upload is no longer open")
        on_disk = os.fstat(descriptor).st_size
        if on_disk == file.size and fresh.received_bytes < file.size:
            # A worker died after the last byte: the file is complete, whatever this
            # request brings (the same bytes again).
            _complete_from_disk(file, descriptor)
            return _closed_offset(file, offset, length)
        recorded = fresh.received_bytes
        if on_disk < recorded:
            # Recorded bytes are gone (the disk lost them): continue where the disk ends.
            _record_progress(file, on_disk)
            raise OffsetMismatch(on_disk, offset)
        if offset != recorded:
            raise OffsetMismatch(recorded, offset)
        if length is not None and offset + length > file.size:
            raise Invalid("body", f"more data than the announced {file.size} bytes")
        if on_disk > recorded:
            # Bytes a killed worker wrote but never recorded: the client sends them again.
            os.ftruncate(descriptor, recorded)
            hash_cache.take(file.upload_key)
        running = _running_hash(file.upload_key, descriptor, recorded)
        try:
            # At most the declared length: ``stream`` may be the server's raw input.
            limit = file.size - offset if length is None else length
            _receive(descriptor, stream, running, limit, file.id)
        finally:
            # Kept even after an error: its offset says which bytes it covers.
            hash_cache.put(file.upload_key, running)
        pause_at(STEP_UPLOAD_WRITTEN)
        if length is not None and running.offset < offset + length:
            log.info("upload %s: %d of %d bytes arrived", file.id, running.offset - offset, length)
        complete = running.offset == file.size
        too_much = complete and length is None and _has_more(stream)
        # The offset we answer must survive a crash, or a resumed file would have a hole.
        (os.fsync if complete else _sync_data)(descriptor)
        if too_much:
            _record_progress(file, running.offset)
            raise Invalid("body", f"more data than the announced {file.size} bytes")
        if complete:
            _finish(file, running)
        else:
            _record_progress(file, running.offset)
        return running.offset
    finally:
        os.close(descriptor)  # also releases the lock, after the database says where we are


def _closed_offset(file: OrderFile, offset: int, length: int | None) -> int:
    """A repeated final PATCH (its answer was lost) is fine; anything else is a mismatch."""
    if offset == file.size and not length:
        return file.size
    raise OffsetMismatch(file.size, offset)


def _running_hash(key: str, descriptor: int, on_disk: int) -> _RunningHash:
    running = hash_cache.take(key)
    if running is not None and running.offset == on_disk:
        return running
    if on_disk == 0:
        return _RunningHash(hashlib.sha256(), 0)
    log.info("upload %s: rebuilding the running hash from %d bytes on disk", key[:6], on_disk)
    return _hash_of_disk(descriptor, on_disk)


def _record_progress(file: OrderFile, received: int) -> None:
    with write_transaction():
        OrderFile.update(received_bytes=received).where(
            (OrderFile.id == file.id) & (OrderFile.state == OrderFile.STATE_UPLOADING)
        ).execute()
    file.received_bytes = received


def _finish(file: OrderFile, running: _RunningHash) -> None:
    """Every byte is there: keep the hash and hand the file to the scanner."""
    hash_cache.take(file.upload_key)
    _mark_received(file, running.digest.hexdigest())
    log.info("upload %s complete: %d bytes, sha256 %s", file.id, file.size, file.sha256)


def _mark_received(file: OrderFile, sha256: str) -> bool:
    """Record the complete file with its hash; from now on it waits for the scanner.

    False (and nothing changed) if the upload was no longer open: another request or the
    sweep completed it first, or it was cancelled.
    """
    received_at = utcnow()
    with write_transaction():
        updated = (
            OrderFile.update(
                received_bytes=file.size,
                sha256=sha256,
                received_at=received_at,
                state=OrderFile.STATE_SCANNING,
            )
            .where((OrderFile.id == file.id) & (OrderFile.state == OrderFile.STATE_UPLOADING))
            .execute()
        )
        if updated:
            order = file.order
            audit.record(
                audit.FILE_UPLOAD,
                f"order {order.project_no}: {file.folder}/{file.display_name}",
                f"{file.size} bytes, sha256 {sha256}",
                customer_no=order.customer.customer_no,
            )
    if updated:
        file.received_bytes = file.size
        file.sha256 = sha256
        file.received_at = received_at
        file.state = OrderFile.STATE_SCANNING
    return bool(updated)


def abort_upload(settings: Settings, file: OrderFile) -> None:
    """Cancel an unfinished upload: its staging file and its row go (tus termination)."""
    if file.state != OrderFile.STATE_UPLOADING:
        raise UploadClosed("the upload is complete and cannot be cancelled")
    descriptor = _open_staging(settings, file)
    try:
        _lock(descriptor)
        with write_transaction():
            deleted = (
                OrderFile.delete()
                .where((OrderFile.id == file.id) & (OrderFile.state == OrderFile.STATE_UPLOADING))
                .execute()
            )
            if not deleted:
                raise UploadClosed("the upload is complete and cannot be cancelled")
            staging_path(settings, file).unlink(missing_ok=True)
    finally:
        os.close(descriptor)
    hash_cache.take(file.upload_key)
    log.info("upload %s cancelled", file.id)


EVENT_FROM_HOTFOLDER = "from_hotfolder"
