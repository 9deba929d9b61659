"""Does the storage keep the promises the portal's file handling relies on?

Uploads are written into ``[storage] staging_root`` and, once clean, hard-linked into
the order folder under ``order_root`` (never overwriting a name) before the staging
name goes; every step is fsynced, file and folder. On one local disk that always holds.
Storage shared between portal nodes (NFS, SMB, a cluster file system) must offer the
same, and ``probe_storage`` tries each promise once on the real folders:

1. exclusive create: creating a name that exists fails;
2. fsync of a file and of a folder succeed;
3. hard links between staging and order folders: the link shares the file's inode, and
   linking onto an existing name fails instead of replacing it;
4. rename within a folder is atomic: the new name has the content, the old name is gone;
5. an advisory lock (flock) can be taken and is refused to a second open file.

It cannot see a second node: whether another host sees a lock, or a file the moment it
is renamed, depends on the mount (README, "Shared storage").
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from pathlib import Path


class StorageBroken(Exception):
    """A promise the storage does not keep; the message names it and the folder."""


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _refused_with_eexist(action, what: str) -> None:
    try:
        action()
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageBroken(f"{what}: failed with {errno.errorcode.get(exc.errno)}") from None
    raise StorageBroken(f"{what}: succeeded, but must fail when the name exists")


def probe_storage(staging_root: Path, order_root: Path) -> list[str]:
    """Try every promise once (temporary names, removed again); the promises kept.

    Raises StorageBroken naming the first promise that does not hold.
    """
    token = secrets.token_hex(6)
    staged = staging_root / f".ptportal-probe-{token}"
    linked = order_root / f".ptportal-probe-{token}"
    renamed = order_root / f".ptportal-probe-{token}-renamed"
    kept: list[str] = []
    try:
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, b"ptportal storage probe")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _refused_with_eexist(
            lambda: os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL)),
            f"exclusive create in {staging_root}",
        )
        kept.append("exclusive create")
        try:
            _fsync_directory(staging_root)
        except OSError as exc:
            raise StorageBroken(f"fsync of the folder {staging_root}: {exc.strerror}") from None
        kept.append("fsync of files and folders")
        try:
            os.link(staged, linked)
        except OSError as exc:
            raise StorageBroken(
                f"hard link from {staging_root} into {order_root}: {exc.strerror} "
                "(both must be on one file system that supports hard links)"
            ) from None
        if os.stat(staged).st_ino != os.stat(linked).st_ino or os.stat(linked).st_nlink != 2:
            raise StorageBroken(f"hard link into {order_root}: the link is a copy, not a link")
        _refused_with_eexist(
            lambda: os.link(staged, linked), f"hard link onto an existing name in {order_root}"
        )
        kept.append("hard links that never replace a name")
        os.rename(linked, renamed)
        if linked.exists() or renamed.read_bytes() != b"ptportal storage probe":
            raise StorageBroken(f"rename in {order_root}: old name still there or content lost")
        kept.append("atomic rename")
        _probe_lock(staged)
        kept.append("advisory locks")
    finally:
        for path in (staged, linked, renamed):
            path.unlink(missing_ok=True)
    return kept


def _probe_lock(path: Path) -> None:
    first = os.open(path, os.O_RDWR)
    second = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise StorageBroken(f"flock on {path.parent}: {exc.strerror}") from None
        try:
            fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        raise StorageBroken(f"flock on {path.parent}: a second lock was granted")
    finally:
        os.close(second)
        os.close(first)
