"""Steps 1–3 of a delivery, on a download thread: the bytes, durable and checked.

1. **download** into a hidden temporary name beside the target (``.ptportal-<file id>-
   <agent>.part`` in the order's hotfolder, on the same file system, so that placing it
   later is an atomic link), hashing on the way. An interrupted download continues
   where the bytes on disk end (``Range: bytes=N-``); those bytes are hashed once first.
2. **fsync** the temporary copy.
3. **verify**: exactly the size and SHA-256 the portal announced, else the copy is
   deleted and the problem reported.

Answers are checked as they come: a 206 must carry exactly the ``Content-Range`` asked
for, the announced length must be what is missing (a longer answer is refused before a
byte is written, a shorter one continues later), and nothing is read past the file's
size. While the portal cannot be reached the thread waits and tries again (``pause``),
keeping every byte it has; a stopping agent leaves the temporary copy for next time.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hotfolder_agent.client import BadAnswer, Interrupted, PortalClient, PortalError
from hotfolder_agent.fsutil import PathProblem, fsync_each, reason, start_writeback
from hotfolder_agent.remote import RemoteFile
from hotfolder_agent.seams import pause_at

log = logging.getLogger(__name__)

STEP_DOWNLOAD_STARTED = "download_started"
BUFFER_BYTES = 1024 * 1024
# How often a download hands its written bytes to the disk (the final fsync then finds
# little left to do).
WRITEBACK_BYTES = 8 * 1024 * 1024
# Downloads at least this large are hashed on a thread of their own (``_Hashing``).
HASH_THREAD_BYTES = 32 * 1024 * 1024
TEMP_PREFIX = ".ptportal-"
_FULL = {errno.ENOSPC, errno.EDQUOT}


class DownloadFailed(PathProblem):
    """The file cannot be delivered now; ``path`` and ``reason`` say why (reported to staff)."""


class HotfolderUnwritable(DownloadFailed):
    """The hotfolder cannot take the file (permissions, full disk, not a folder …)."""


class ContentMismatch(DownloadFailed):
    """The bytes differ from the size or SHA-256 the portal announced."""


class AnswerRefused(DownloadFailed):
    """The portal's answer does not fit the request (range, length, status)."""


class Gone(Exception):
    """The portal no longer hands the file out (deleted, or not for a hotfolder any more)."""


def temp_name(file_id: int, agent_key: str) -> str:
    """The hidden name of a download in progress (hotfolder software skips dot files)."""
    return f"{TEMP_PREFIX}{file_id}-{agent_key}.part"


def _hash_of(descriptor: int, length: int, buffer: bytearray) -> Any:
    digest = hashlib.sha256()
    view = memoryview(buffer)
    position = 0
    while position < length:
        count = os.preadv(descriptor, [view[: min(len(buffer), length - position)]], position)
        if not count:
            break
        digest.update(view[:count])
        position += count
    return digest


def _write(descriptor: int, data: memoryview, offset: int, temp: Path) -> None:
    try:
        while data:
            written = os.pwrite(descriptor, data, offset)
            data, offset = data[written:], offset + written
    except OSError as exc:
        if exc.errno in _FULL:
            full = f"the hotfolder is full: {reason(exc)}"
            raise HotfolderUnwritable(temp.parent, full) from None
        raise HotfolderUnwritable(temp.parent, reason(exc)) from None


def _expected(response, have: int, size: int, temp: Path) -> tuple[int, bool]:
    """How many bytes this answer must bring, and whether it starts over at byte 0."""
    if response.status == 200:
        restart = have > 0  # the range was not honoured: the whole file comes
        expected = size
    elif response.status == 206 and have > 0:
        wanted = f"bytes {have}-{size - 1}/{size}"
        got = response.getheader("Content-Range", "")
        if got.replace(" ", "") != wanted.replace(" ", ""):
            raise AnswerRefused(temp, f"the portal answered {got!r} when asked for {wanted!r}")
        restart = False
        expected = size - have
    else:
        raise AnswerRefused(temp, f"unexpected answer {response.status} to a download")
    length = response.length
    if length is not None and length != expected:
        raise AnswerRefused(
            temp,
            f"the portal announced {length} bytes where {expected} were missing "
            f"({'too long' if length > expected else 'too short'}); nothing kept",
        )
    return expected, restart


def fetch(
    client: PortalClient,
    file: RemoteFile,
    temp: Path,
    *,
    pause: Callable[[PortalError], bool],
    on_answer: Callable[[], None] = lambda: None,
) -> None:
    """Download ``file`` into ``temp``, fsync and verify it (steps 1–3).

    ``pause(exc)`` is called when the portal cannot be used; it waits and returns False,
    or True when the agent stops (then Interrupted is raised and ``temp`` kept).
    Raises DownloadFailed (``temp`` deleted unless it is a mere interruption) or Gone.
    """
    try:
        temp.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise HotfolderUnwritable(temp.parent, reason(exc)) from None
    buffer = bytearray(BUFFER_BYTES)
    try:
        try:
            have = os.fstat(descriptor).st_size
            if have > file.size:
                os.ftruncate(descriptor, 0)
                have = 0
            digest = _hash_of(descriptor, have, buffer)
        except OSError as exc:
            raise HotfolderUnwritable(temp.parent, reason(exc)) from None
        while have < file.size:
            try:
                have, digest = _receive(client, file, temp, descriptor, buffer, have, digest)
                on_answer()
            except BadAnswer as exc:
                if exc.status == 404:
                    raise Gone(str(exc)) from None
                raise AnswerRefused(temp, str(exc)) from None
            except Interrupted:
                raise
            except PortalError as exc:
                if pause(exc):
                    raise Interrupted("the agent is stopping") from None
                try:  # what is on disk now is where the next try starts
                    have = os.fstat(descriptor).st_size
                    digest = _hash_of(descriptor, have, buffer)
                except OSError as error:
                    raise HotfolderUnwritable(temp.parent, reason(error)) from None
        try:
            os.fsync(descriptor)
        except OSError as exc:
            raise HotfolderUnwritable(temp.parent, reason(exc)) from None
        if have != file.size or digest.hexdigest() != file.sha256:
            raise ContentMismatch(
                temp,
                f"{have} bytes with SHA-256 {digest.hexdigest()[:12]}… differ from the "
                f"portal's ({file.size} bytes, {file.sha256[:12]}…); not delivered",
            )
    except (DownloadFailed, Gone):
        os.close(descriptor)
        descriptor = -1
        temp.unlink(missing_ok=True)  # no wrong or half-written copy stays
        raise
    finally:
        if descriptor >= 0:
            os.close(descriptor)


class _Hashing:
    """The SHA-256 of a download, on a thread of its own for large ones.

    Hashing costs about as much CPU as receiving through TLS; on its own thread (hashlib
    and the TLS reads both release the interpreter lock) the next piece is received while
    the last one is hashed, into the other of two buffers. Small downloads hash inline.
    """

    def __init__(self, digest: Any, size: int, buffer: bytearray) -> None:
        self.digest = digest
        self.views = [memoryview(buffer)]
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        if size >= HASH_THREAD_BYTES:
            self.views.append(memoryview(bytearray(len(buffer))))
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sha256")

    def view(self, number: int) -> memoryview:
        """The buffer for piece ``number``: free, since the piece before it is hashed."""
        return self.views[number % len(self.views)]

    def update(self, data: memoryview) -> None:
        if self._executor is None:
            self.digest.update(data)
            return
        self.wait()  # pieces are hashed in order
        self._pending = self._executor.submit(self.digest.update, data)

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        self.wait()
        if self._executor is not None:
            self._executor.shutdown()


def _read_piece(client: PortalClient, response, view: memoryview, done: int, expected: int) -> int:
    """Read the next bytes of an answer into ``view`` (at most what is still expected);
    their count. A body that breaks off or ends early is the portal's (PortalError)."""
    try:
        count = response.readinto(view[: min(len(view), expected - done)])
    except Exception as exc:  # a body broken off, whatever the cause
        raise client.broken(exc) from None
    if not count:
        raise client.broken(EOFError(f"{done} of {expected} bytes"))
    return count


def _store(descriptor: int, piece: memoryview, offset: int, temp: Path) -> None:
    """Write ``piece`` of the copy at ``offset``."""
    _write(descriptor, piece, offset, temp)
    if offset == 0:
        pause_at(STEP_DOWNLOAD_STARTED)


def _receive(
    client: PortalClient,
    file: RemoteFile,
    temp: Path,
    descriptor: int,
    buffer: bytearray,
    have: int,
    digest: Any,
) -> tuple[int, Any]:
    """One GET (from byte ``have``): write what arrives; returns the new count and hash."""
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream(file.content_path, headers) as response:
        expected, restart = _expected(response, have, file.size, temp)
        if restart:
            os.ftruncate(descriptor, 0)
            have, digest = 0, hashlib.sha256()
        hashing = _Hashing(digest, expected, buffer)
        try:
            got = number = 0
            while got < expected:
                view = hashing.view(number)
                count = _read_piece(client, response, view, got, expected)
                _store(descriptor, view[:count], have, temp)
                hashing.update(view[:count])
                have += count
                got += count
                number += 1
                if have % WRITEBACK_BYTES < count:
                    start_writeback(descriptor)  # the disk works while the next bytes arrive
        finally:
            hashing.close()
        if response.length is None and response.read(1):
            raise AnswerRefused(temp, "the portal sent more bytes than the file has")
    return have, digest


# --- several small files in one answer ------------------------------------------------------

# Files up to this size are fetched several at a time: for them the request, not the
# bytes, is what costs (bench/README.md). Larger files go alone, resumable with Range.
BUNDLE_FILE_BYTES = 4 * 1024 * 1024
BUNDLE_FILES = 32
BUNDLE_BYTES = 32 * 1024 * 1024
BUNDLE_PATH = "/api/v1/agent/files/content"


def bundles(sizes: list[tuple[object, int]]) -> tuple[list[list], list]:
    """Split (item, size) pairs into bundles of small files and the items that go alone.

    Bundles are as large as allowed rather than spread over all download threads: fewer
    requests and fewer, larger fsync rounds beat parallel ones (bench/README.md).
    """
    groups: list[list] = []
    alone = []
    current: list = []
    current_bytes = 0
    for item, size in sizes:
        if size > BUNDLE_FILE_BYTES:
            alone.append(item)
            continue
        if current and (len(current) == BUNDLE_FILES or current_bytes + size > BUNDLE_BYTES):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        groups.append(current)
    return [group for group in groups if len(group) > 1], alone + [
        group[0] for group in groups if len(group) == 1
    ]


def fetch_many(
    client: PortalClient, files: list[tuple[RemoteFile, Path]]
) -> dict[int, BaseException | None]:
    """Steps 1–3 for several small files with one request; per file id its outcome (None:
    verified and durable, else DownloadFailed or Gone).

    The answer brings the files one after another, each after a line ``<id> <size>``
    (``<id> -`` for one the portal does not hand out). A file the answer does not bring
    whole — the connection broke, or the answer does not fit what was asked — is left out
    of the result: the caller fetches it alone (resumable). Nothing here waits for the
    portal.
    """
    outcomes: dict[int, BaseException | None] = {}
    received: list[tuple[RemoteFile, Path, int, str]] = []  # written, not fsynced yet
    buffer = bytearray(BUFFER_BYTES)
    body = {"file_ids": [file.id for file, _temp in files]}
    try:
        with client.stream(BUNDLE_PATH, json_body=body) as response:
            for file, temp in files:
                line = response.readline(100)
                expected = f"{file.id} {file.size}\n".encode()
                if line == f"{file.id} -\n".encode():
                    temp.unlink(missing_ok=True)
                    outcomes[file.id] = Gone(f"file {file.id} is no longer handed out")
                    continue
                if line != expected:
                    got = line[:60].decode("ascii", "replace").strip()
                    outcomes[file.id] = AnswerRefused(
                        temp, f"the portal's answer announced {got!r} where {expected!r} was due"
                    )
                    temp.unlink(missing_ok=True)
                    break  # nothing after this can be trusted: the rest go alone
                outcome = _receive_whole(client, response, file, temp, buffer)
                if isinstance(outcome, tuple):
                    received.append((file, temp, *outcome))
                else:
                    outcomes[file.id] = outcome
    except PortalError:
        pass  # the rest go alone
    # All written first, fsynced after, together: the writeback of each began as its last
    # byte was written, and the fsyncs share journal commits.
    errors = fsync_each([descriptor for _file, _temp, descriptor, _digest in received])
    for (file, temp, descriptor, digest), error in zip(received, errors, strict=True):
        outcomes[file.id] = _made_durable(file, temp, descriptor, digest, error)
    return outcomes


def _receive_whole(client, response, file: RemoteFile, temp: Path, buffer: bytearray):
    """One file of a bundle written whole: (its open descriptor, SHA-256), or its
    DownloadFailed. Raises PortalError when the answer breaks off (the copy is kept)."""
    view = memoryview(buffer)
    try:
        temp.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        return HotfolderUnwritable(temp.parent, reason(exc))
    digest = hashlib.sha256()
    have = 0
    try:
        while have < file.size:
            count = _read_piece(client, response, view, have, file.size)
            _store(descriptor, view[:count], have, temp)
            digest.update(view[:count])
            have += count
        start_writeback(descriptor)
        return descriptor, digest.hexdigest()
    except DownloadFailed as exc:
        os.close(descriptor)
        temp.unlink(missing_ok=True)
        return exc
    except BaseException:
        os.close(descriptor)
        raise


def _made_durable(
    file: RemoteFile, temp: Path, descriptor: int, digest: str, error: OSError | None
):
    """Steps 2 and 3 for a file written whole and fsynced (``error``: how the fsync
    failed): None, or its DownloadFailed."""
    try:
        if error is not None:
            raise error
        if digest != file.sha256:
            raise ContentMismatch(
                temp,
                f"{file.size} bytes with SHA-256 {digest[:12]}… differ from the "
                f"portal's ({file.size} bytes, {file.sha256[:12]}…); not delivered",
            )
        return None
    except DownloadFailed as exc:
        temp.unlink(missing_ok=True)
        return exc
    except OSError as exc:
        temp.unlink(missing_ok=True)
        return HotfolderUnwritable(temp.parent, reason(exc))
    finally:
        os.close(descriptor)
