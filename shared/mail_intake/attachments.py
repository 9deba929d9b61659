"""Attachments of an inbound mail: safe names, the inline-image rule, staging to disk.

A mail's file name is whatever the sender's program (or an attacker) wrote: directories
(``../../x.pdf``), CR/LF, NUL and other control characters are removed before the name
is shown or used, and the file itself is written under ``stored_name_for`` — the rule
uploads follow — into the staging directory the caller names, never anywhere else.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from shared.files.names import MAX_NAME_BYTES, NameRefused, check_upload_name, free_name
from shared.files.names import stored_name_for as stored_upload_name

# Signatures and logos are small; anything larger is likely print data even if inline.
INLINE_IMAGE_MAX_BYTES = 256 * 1024
# Base64 text decoded per step: the attachment never sits in memory decoded as a whole.
_DECODE_CHARS = 1024 * 1024
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
# Bidi controls let "invoice\u202efdp.exe" display as "invoiceexe.pdf" (see filenames.py).
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


@dataclass(frozen=True)
class Attachment:
    """One attachment; ``path`` is where it was staged, None when it was not written."""

    index: int
    file_name: str  # safe to show; not necessarily the name on disk
    content_type: str
    size: int
    inline: bool  # a signature image or logo: kept with the message, not print data
    content_id: str = ""
    path: Path | None = None
    sha256: str = ""  # of the staged bytes, taken while writing them


def safe_attachment_name(raw: str | None, index: int) -> str:
    """A displayable file name: no directories, no control characters, never empty.

    ``../../x.pdf`` → ``x.pdf``; ``C:\\temp\\a.pdf`` → ``a.pdf``; CR, LF, NUL, other
    control and bidi characters are dropped; nothing left → ``attachment-<index>``.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = "".join(
        char
        for char in name
        if unicodedata.category(char) not in {"Cc", "Zl", "Zp"} and char not in _BIDI
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, extension = name.rpartition(".")
        suffix = f".{extension}" if dot and len(extension) <= 16 else ""
        keep = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        base = (stem if suffix else name).encode("utf-8")[:keep].decode("utf-8", "ignore")
        name = base + suffix
    try:
        return check_upload_name(name)
    except NameRefused:
        return f"attachment-{index}"


def is_inline_image(
    content_type: str, disposition: str, content_id: str, size: int, referenced: set[str]
) -> bool:
    """A signature image or logo: a small image shown inside the mail, not print data.

    Small (≤ ``INLINE_IMAGE_MAX_BYTES``), an image, and either marked inline or referenced
    from the HTML by its Content-ID. Apple Mail marks every attachment inline, so the
    disposition alone never makes a PDF or a large photo "inline".
    """
    if not content_type.startswith("image/") or size > INLINE_IMAGE_MAX_BYTES:
        return False
    return disposition == "inline" or (bool(content_id) and content_id.lower() in referenced)


def decoded_chunks(part: Message) -> Iterator[bytes]:
    """The part's decoded content, piece by piece.

    Base64 (nearly every attachment) is decoded a slice at a time from the message's
    text, so a large attachment is never held decoded in memory as well; other transfer
    encodings are decoded by the email package in one piece.
    """
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    payload = part.get_payload()
    if encoding != "base64" or not isinstance(payload, str):
        data = part.get_payload(decode=True)
        if data:
            yield data
        return
    carry = ""
    for start in range(0, len(payload), _DECODE_CHARS):
        text = carry + _NOT_BASE64.sub("", payload[start : start + _DECODE_CHARS])
        usable = len(text) - len(text) % 4
        carry = text[usable:]
        if usable:
            yield binascii.a2b_base64(text[:usable])
    tail = carry.rstrip("=")
    if len(tail) >= 2:
        # A truncated tail: decode what padding can rescue, as mail programs do (one lone
        # character holds no whole byte).
        yield binascii.a2b_base64(tail + "=" * (-len(tail) % 4))


def decoded_size(part: Message) -> int:
    """The decoded size in bytes (one decoding pass, nothing kept)."""
    return sum(len(chunk) for chunk in decoded_chunks(part))


def stage(chunks: Iterable[bytes], staging_dir: Path, file_name: str) -> tuple[Path, int, str]:
    """Write ``chunks`` into a new file in ``staging_dir``; return the file, size and SHA-256.

    The name on disk follows the upload rule (``stored_name_for``) and never replaces an
    existing file; the file is created exclusively, so a race cannot overwrite one.
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    while True:
        target = staging_dir / free_name(staging_dir, stored_upload_name(file_name))
        try:
            handle = target.open("xb")
        except FileExistsError:
            continue  # another writer took the name between the check and the open
        break
    size = 0
    digest = hashlib.sha256()
    with handle:
        for chunk in chunks:
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return target, size, digest.hexdigest()
