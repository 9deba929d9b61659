"""File steps that survive a crash: fsync of data and directories, moves that never overwrite."""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shared.files.names import free_name

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Where hard links are refused (many SMB/CIFS mounts), a checked rename is the fallback.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}
_warned_no_links: set[Path] = set()
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>; Python's os module does not offer the call


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError, TypeError):
        return None  # not Linux: fsync alone does the work
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return call


class PathProblem(Exception):
    """A file or folder the agent cannot use now; ``path`` and ``reason`` say what to fix."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def reason(exc: OSError) -> str:
    """``Permission denied (errno 13)`` — what an OSError means, without its repr noise."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} (errno {exc.errno})" if exc.errno else text


def sync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` (a new name, a removed one) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def start_writeback(descriptor: int) -> None:
    """Hand the file's dirty pages to the disk now, without waiting.

    Only a head start: the later fsync still decides durability, but by then the
    disk has been busy while the next files were copied, instead of idle.
    """
    call = _sync_file_range()
    if call is not None:
        call(descriptor, 0, 0, _SYNC_FILE_RANGE_WRITE)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while piece := reader.read(CHUNK_BYTES):
            digest.update(piece)
    return digest.hexdigest()


def place_without_overwrite(
    source: Path, target: Path, after_link: Callable[[], None] | None = None
) -> None:
    """Give ``source`` the name ``target``; FileExistsError if that name exists.

    ``os.link`` then ``unlink`` never replaces an existing file, unlike rename. Where
    the file system has no hard links, a rename after checking the name is used.
    ``after_link`` runs while both names exist (a test seam).
    """
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in _NO_LINKS or isinstance(exc, FileExistsError):
            raise
        if target.parent not in _warned_no_links:
            _warned_no_links.add(target.parent)
            log.warning("no hard links in %s (%s): placing files by rename", target.parent, exc)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.rename(source, target)
        return
    if after_link is not None:
        after_link()
    os.unlink(source)


# Many small files are fsynced from this many threads at once: the file system then
# commits them together instead of one after another (bench/README.md).
SYNC_THREADS = 8
_sync_pool: ThreadPoolExecutor | None = None
_sync_pool_lock = threading.Lock()


def fsync_each(descriptors: list[int]) -> list[OSError | None]:
    """fsync every descriptor, several at once when there are several; per descriptor
    None or its error."""
    global _sync_pool
    if len(descriptors) < 3:
        return [_fsync(descriptor) for descriptor in descriptors]
    with _sync_pool_lock:
        if _sync_pool is None:
            _sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync")
    futures = [_sync_pool.submit(_fsync, descriptor) for descriptor in descriptors]
    return [future.result() for future in futures]


def _fsync(descriptor: int) -> OSError | None:
    try:
        os.fsync(descriptor)
    except OSError as exc:
        return exc
    return None


def write_files(directory: Path, documents: dict[str, bytes]) -> list[Path]:
    """Write each document whole or not at all: under a hidden name, fsync, rename into place.

    All are written before they are fsynced (together), and the folder is fsynced once
    after the last rename. A document of the same name is replaced (the same one written
    again after a crash).
    """
    directory.mkdir(parents=True, exist_ok=True)
    temps = []
    descriptors = []
    try:
        for name, content in documents.items():
            temp = directory / f".{name}.tmp"
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            descriptors.append(descriptor)
            temps.append(temp)
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view) :]
            start_writeback(descriptor)
        for error in fsync_each(descriptors):
            if error is not None:
                raise error
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    targets = []
    for temp, name in zip(temps, documents, strict=True):
        target = directory / name
        os.replace(temp, target)  # same directory: atomic, and the name is ours alone
        targets.append(target)
    sync_directory(directory)
    return targets


def move_into(source: Path, directory: Path) -> Path:
    """Move ``source`` into ``directory`` (same file system) under a free name; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    while True:
        target = directory / free_name(directory, source.name)
        try:
            place_without_overwrite(source, target)
        except FileExistsError:
            continue
        sync_directory(directory)
        sync_directory(source.parent)
        return target
