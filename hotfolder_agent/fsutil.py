"""File steps that survive a crash: fsync of data and directories, moves that never overwrite."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from shared.filenames import free_name

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Where hard links are refused (many SMB/CIFS mounts), a checked rename is the fallback.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}
_warned_no_links: set[Path] = set()


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
