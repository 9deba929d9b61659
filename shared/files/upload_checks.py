"""The acceptance rules (``shared.files.acceptance``) on a customer's upload as it arrives.

``append_checked`` is ``receiving.append_chunk`` with two checks around it, in this order:

1. Until the file's first ``HEAD_BYTES`` bytes (or all of a smaller file) have arrived, the
   body's first bytes are read (at most what is missing of them, never more) and, together
   with the few already on disk, their type decides: a refused type cancels the upload
   (row and staging bytes go, as ``abort_upload`` does) before a byte of this body is
   written, and TypeRefused says why. A body that ends before enough bytes are there is
   written as usual and the next request decides. Nothing is kept between requests: the
   offset alone says whether the decision is still open.
2. The request that completes a ZIP reads its directory (``list_zip``: small reads at the
   end of the file, nothing extracted); a bomb is discarded before the virus scan is
   asked for, and TypeRefused says why.

Files of the print shop's side (no portal login) pass unchecked.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from shared.config import Settings
from shared.db import write_transaction
from shared.files.acceptance import TypeRefused, accepted_types, zip_refusal
from shared.files.filetypes import HEAD_BYTES, detect_type, refusal
from shared.files.receiving import (
    UploadBusy,
    UploadClosed,
    abort_upload,
    append_chunk,
    is_complete,
    staging_path,
)
from shared.models import OrderFile

log = logging.getLogger(__name__)


class _Prefixed:
    """A body stream whose first bytes were already read: they come first, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                piece, self._head = bytes(self._head), memoryview(b"")
                return piece
            piece, self._head = bytes(self._head[:size]), self._head[size:]
            return piece
        return self._rest.read(size)


def _read_up_to(stream: BinaryIO, count: int) -> bytes:
    """Up to ``count`` bytes of the body; fewer only where it ends (or breaks off)."""
    pieces, wanted = [], count
    while wanted > 0:
        try:
            piece = stream.read(wanted)
        except Exception:
            # The client went away: what arrived counts, the write that follows sees the end.
            break
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)


def _on_disk(settings: Settings, file: OrderFile, length: int) -> bytes:
    if length <= 0:
        return b""
    with open(staging_path(settings, file), "rb") as handle:
        return handle.read(length)


def _is_customers(file: OrderFile) -> bool:
    return file.uploaded_by_login_id is not None


def checked_body(
    settings: Settings, file: OrderFile, offset: int, stream: BinaryIO, length: int | None
) -> BinaryIO:
    """Step 1: the body to write, once the file's first bytes are known to be acceptable."""
    needed = min(HEAD_BYTES, file.size)
    if not _is_customers(file) or offset >= needed or file.state != OrderFile.STATE_UPLOADING:
        return stream
    wanted = needed - offset if length is None else min(needed - offset, length)
    try:
        earlier = _on_disk(settings, file, offset)
    except FileNotFoundError:
        return stream  # cancelled meanwhile: append_chunk answers that
    head = _read_up_to(stream, wanted)
    body = _Prefixed(head, stream)
    if len(earlier) + len(head) < needed:
        return body  # the body ended early: decided by the next request
    found = detect_type(earlier + head, file.display_name)
    finding = refusal(found, accepted_types(settings))
    if finding is None:
        return body
    _cancel(settings, file, finding.code)
    raise TypeRefused(finding)


def _cancel(settings: Settings, file: OrderFile, reason: str) -> None:
    try:
        abort_upload(settings, file)
    except (UploadBusy, UploadClosed) as exc:
        # Another request holds or closed it; the refusal is answered all the same.
        log.warning("refused upload %s could not be cancelled: %s", file.id, exc)
    log.info("upload %s (%s) refused: %s", file.id, file.display_name, reason)


def check_complete(settings: Settings, file: OrderFile) -> None:
    """Step 2: a complete ZIP whose directory says bomb is discarded before its scan."""
    if not _is_customers(file):
        return
    path = staging_path(settings, file)
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if detect_type(head, file.display_name) != "zip":
        return
    finding = zip_refusal(settings, path)
    if finding is None:
        return
    with write_transaction():
        gone = (
            OrderFile.delete()
            .where((OrderFile.id == file.id) & (OrderFile.state == OrderFile.STATE_SCANNING))
            .execute()
        )
        if gone:
            path.unlink(missing_ok=True)
    log.info("upload %s (%s) refused: %s %s", file.id, file.display_name, finding.code, finding)
    raise TypeRefused(finding)


def append_checked(
    settings: Settings, file: OrderFile, offset: int, stream: BinaryIO, length: int | None
) -> int:
    """``append_chunk`` for a customer's upload with the acceptance rules; returns the new
    offset. Raises TypeRefused (the upload is gone then) with the reason."""
    was_open = not is_complete(file)
    body = checked_body(settings, file, offset, stream, length)
    new_offset = append_chunk(settings, file, offset, body, length)
    if was_open and is_complete(file):
        check_complete(settings, file)
    return new_offset
