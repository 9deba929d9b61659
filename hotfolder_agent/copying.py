"""The file side of a delivery: verified, durable copies under hidden names, and crash leftovers.

Each file is copied to ``.ptportal-<file id>.part`` in its target folder, hashed
on the way and checked against the upload record. A batch is written first and
fsynced after: each copy's writeback starts as its last byte is written, and the
fsyncs that follow find most of the data on disk and share journal commits.

``copy_all`` works on plain data (``CopyJob``) and touches only files, never the
database, so it can run in a copier process (``copier``): reading, hashing and
writing there never wait for this process's Python threads.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from hotfolder_agent.fsutil import (
    CHUNK_BYTES,
    PathProblem,
    reason,
    sha256_of,
    start_writeback,
    sync_directory,
)
from hotfolder_agent.seams import pause_at

STEP_COPY_STARTED = "copy_started"
STEP_TEMP_COMPLETE = "temp_complete"
# Temporary names start with a dot: hotfolder software on Unix and macOS skips them.
TEMP_PREFIX = ".ptportal-"


class DeliveryFailed(PathProblem):
    """The file cannot be delivered now; ``path`` and ``reason`` say what to fix."""


class SourceUnreadable(DeliveryFailed):
    """The file in Eingehend cannot be read."""


class HotfolderUnwritable(DeliveryFailed):
    """The hotfolder cannot be written (permissions, full disk, not a directory …)."""


class ContentMismatch(DeliveryFailed):
    """The bytes read differ from the size or SHA-256 recorded at upload."""


@dataclass(frozen=True)
class CopyJob:
    """One file to copy, as plain data (it may travel to a copier process)."""

    file_id: int
    size: int
    sha256: str
    source: Path
    target_dir: Path
    planned: str = ""  # the target an earlier attempt recorded, if any
    fresh: bool = False  # claimed for the first time: no earlier attempt left anything

    @property
    def temp(self) -> Path:
        """The hidden name of the copy until it is verified and linked into place."""
        return self.target_dir / f"{TEMP_PREFIX}{self.file_id}.part"


@dataclass(frozen=True)
class Copied:
    """What became of a ``CopyJob``: a durable copy at its temporary name, unless one of these."""

    placed: Path | None = None  # in place already (an earlier attempt got that far)
    failure: DeliveryFailed | None = None


def copy_all(jobs: list[CopyJob]) -> list[Copied]:
    """Make a durable, verified copy of every file (or find it placed); one result per job."""
    results: list[Copied | None] = [None] * len(jobs)
    copies: list[tuple[int, _TempCopy]] = []
    made: set[Path] = set()  # target folders known to exist
    try:
        for number, job in enumerate(jobs):
            try:
                placed = None if job.fresh else already_placed(job)
                if placed is not None:
                    results[number] = Copied(placed=placed)
                    continue
                if job.target_dir not in made:
                    make_directory(job.target_dir)
                    made.add(job.target_dir)
                if not job.fresh and temp_is_complete(job):
                    copies.append((number, _TempCopy.reopen(job.temp)))
                else:
                    copies.append((number, copy_verified(job)))
            except DeliveryFailed as failure:
                results[number] = Copied(failure=failure)
            except OSError as exc:
                results[number] = Copied(failure=DeliveryFailed(job.source, reason(exc)))
        for number, copy in copies:
            try:
                copy.make_durable()
                results[number] = Copied()
            except DeliveryFailed as failure:
                results[number] = Copied(failure=failure)
    finally:
        for _number, copy in copies:
            copy.close()
    if any(result == Copied() for result in results):
        pause_at(STEP_TEMP_COMPLETE)
    return results


def make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HotfolderUnwritable(directory, reason(exc)) from None


class _TempCopy:
    """A verified temporary copy, kept open until ``make_durable`` fsyncs it.

    The descriptor stays open between writing and fsync so that a writeback error
    in between is reported to this fsync, not lost with a closed descriptor.
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def reopen(cls, path: Path) -> _TempCopy:
        """A complete copy left by a crash: it may never have been fsynced."""
        try:
            return cls(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as exc:
            raise HotfolderUnwritable(path.parent, reason(exc)) from None

    def make_durable(self) -> None:
        """fsync the copy; on failure it is removed (no unsynced copy is ever linked)."""
        try:
            os.fsync(self._descriptor)
        except OSError as exc:
            self.discard()
            raise HotfolderUnwritable(self.path.parent, reason(exc)) from None
        self.close()

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def temp_is_complete(job: CopyJob) -> bool:
    """True if a temporary copy from before a crash is whole and right (it is re-read)."""
    try:
        if job.temp.stat().st_size != job.size:
            return False
        return sha256_of(job.temp) == job.sha256
    except OSError:
        return False


def copy_verified(job: CopyJob) -> _TempCopy:
    """Copy the file to its temporary name; the bytes written must match the upload record."""
    source, temp = job.source, job.temp
    try:
        reader = source.open("rb", buffering=0)
    except OSError as exc:
        raise SourceUnreadable(source, reason(exc)) from None
    with reader:
        try:
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise HotfolderUnwritable(temp.parent, reason(exc)) from None
        copy = _TempCopy(temp, descriptor)
        try:
            size, digest = _pour(reader, descriptor, source, temp)
            if size != job.size or digest != job.sha256:
                raise ContentMismatch(
                    source,
                    f"{size} bytes with SHA-256 {digest[:12]}… differ from the upload "
                    f"record ({job.size} bytes, {job.sha256[:12]}…)",
                )
        except BaseException:
            # After an error no half-written or wrong copy stays in the hotfolder.
            copy.discard()
            raise
    return copy


def _pour(reader, descriptor: int, source: Path, temp: Path) -> tuple[int, str]:
    """Read, hash and write until the end; returns the size on disk and the SHA-256."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    written = 0
    while True:
        try:
            count = reader.readinto(buffer)
        except OSError as exc:
            raise SourceUnreadable(source, reason(exc)) from None
        if not count:
            break
        digest.update(view[:count])
        try:
            _write_all(descriptor, view[:count])
        except OSError as exc:
            raise HotfolderUnwritable(temp.parent, reason(exc)) from None
        if written == 0:
            pause_at(STEP_COPY_STARTED)
        written += count
    try:
        start_writeback(descriptor)
        size = os.fstat(descriptor).st_size
    except OSError as exc:
        raise HotfolderUnwritable(temp.parent, reason(exc)) from None
    return size, digest.hexdigest()


def _write_all(descriptor: int, data: memoryview) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


def already_placed(job: CopyJob) -> Path | None:
    """After a crash: the recorded target, if the file is already there under that name."""
    if not job.planned:
        return None
    planned = Path(job.planned)
    try:
        planned_stat = planned.stat()
    except OSError:
        return None
    try:
        if os.path.samestat(job.temp.stat(), planned_stat):
            # Killed between link and unlink: the temporary name is the only thing left.
            job.temp.unlink()
            sync_directory(planned.parent)
            return planned
        return None  # the temporary copy is still ours to place: the name went to another file
    except FileNotFoundError:
        pass
    if planned_stat.st_size == job.size and sha256_of(planned) == job.sha256:
        return planned
    return None
