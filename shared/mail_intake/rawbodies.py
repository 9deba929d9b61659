"""Large base64 bodies, decoded straight from the mail file rather than by the email package.

The email package reads a body line by line — a 5 MiB attachment is some 70,000 lines —
which is most of the time a mail with a large attachment takes to import. So before
parsing, every body of at least ``MIN_RUN_BYTES`` that holds nothing but base64 lines is
replaced by one marker line and remembered by its place in the file (``elide``). After parsing
(``restore``), a binary file part whose body is exactly one marker is decoded from that
place in the file (``RawBase64.chunks``); every other part holding a marker gets the
original text back. What the rest of the parsing sees is the same either way.

Only a whole body is taken: what follows a blank line up to the next line that starts
with "--" (a boundary) or the end of the mail, and only when every byte of it is base64
or a line end — a header holds a colon and a boundary a "-", which base64 never does.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

MIN_RUN_BYTES = 64 * 1024
READ_BYTES = 1024 * 1024
MAX_DEPTH = 30
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n"
_FOREIGN = re.compile(rb"[^A-Za-z0-9+/=\r\n]")
_MARKER = re.compile(r"ptportal-elided-[0-9a-f]{16}-\d+")
_STREAMED_OUTSIDE = {"text", "multipart", "message"}


@dataclass(frozen=True)
class RawBase64:
    """A base64 body left in the mail file: bytes ``start``..``end`` of ``path``."""

    path: Path
    start: int
    end: int
    size: int  # decoded

    def chunks(self) -> Iterator[bytes]:
        """The decoded bytes, a slice of the file at a time (as ``decoded_chunks`` decodes:
        everything but the base64 alphabet dropped, a truncated tail rescued)."""
        carry = b""
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            remaining = self.end - self.start
            while remaining > 0:
                data = handle.read(min(READ_BYTES, remaining))
                if not data:
                    break
                remaining -= len(data)
                text = carry + data.translate(None, b"\r\n=")
                usable = len(text) - len(text) % 4
                carry = text[usable:]
                if usable:
                    yield binascii.a2b_base64(text[:usable])
        if len(carry) >= 2:
            yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))


def elide(data: bytes, path: Path) -> tuple[bytes, dict[str, RawBase64]]:
    """``data`` (the bytes of the mail in ``path``) with its long base64 bodies replaced by
    marker lines, and each marker's body; ``(data, {})`` when there is none.

    A candidate body runs from a blank line to the next line starting with "--" (or the
    end). Each byte is checked at most once in full: a candidate that turns out not to be
    base64 is skipped up to its first foreign byte.
    """
    nonce = secrets.token_hex(8)
    pieces: list[bytes] = []
    runs: dict[str, RawBase64] = {}
    kept_up_to = 0
    blank_lines = _BlankLines(data)
    search = 0
    while (start := blank_lines.next_body(search)) >= 0:
        # The line end before a boundary belongs to the boundary, not to the body.
        boundary = data.find(b"\n--", start)
        end = len(data) if boundary < 0 else boundary - (data[boundary - 1 : boundary] == b"\r")
        end = max(end, start)
        if end - start < MIN_RUN_BYTES or data[start : start + 256].translate(None, _BASE64):
            search = start
            continue
        body = data[start:end].translate(None, b"\r\n=")
        if body.translate(None, _BASE64):
            search = _FOREIGN.search(data, start, end).start()
            continue
        size = len(body) // 4 * 3 + max(0, len(body) % 4 - 1)
        marker = f"ptportal-elided-{nonce}-{len(runs)}"
        runs[marker] = RawBase64(path, start, end, size)
        pieces += [data[kept_up_to:start], marker.encode("ascii") + _line_end(data, start, end)]
        kept_up_to = search = end
    if not runs:
        return data, {}
    pieces.append(data[kept_up_to:])
    return b"".join(pieces), runs


class _BlankLines:
    """Finds the bodies' starts (the line after a blank line, CRLF or LF) in one pass."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        # The next match of each kind of blank line at or after the last search (-1: none).
        self.found = {b"\n\r\n": (0, 0), b"\n\n": (0, 0)}

    def next_body(self, position: int) -> int:
        """Where the line after the next blank line at or after ``position`` starts, or -1."""
        starts = []
        for blank, (searched_from, index) in self.found.items():
            if index >= 0 and (index < position or searched_from > position):
                index = self.data.find(blank, position)
                self.found[blank] = (position, index)
            if index >= 0:
                starts.append(index + len(blank))
        return min(starts) if starts else -1


def restore(message: Message, runs: dict[str, RawBase64]) -> dict[int, RawBase64]:
    """Give back every marked body but binary file bodies; those are returned by ``id``."""
    streamed: dict[int, RawBase64] = {}
    if runs:
        _restore(message, runs, streamed, inside_message=False, depth=0)
    return streamed


def _restore(
    part: Message,
    runs: dict[str, RawBase64],
    streamed: dict[int, RawBase64],
    *,
    inside_message: bool,
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        inside = inside_message or part.get_content_maintype() == "message"
        for child in payload:
            if isinstance(child, Message):
                _restore(child, runs, streamed, inside_message=inside, depth=depth + 1)
        return
    if not isinstance(payload, str) or "ptportal-elided-" not in payload:
        return
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    whole = payload.strip()
    if (
        whole in runs
        and encoding == "base64"
        and not inside_message
        and part.get_content_maintype() not in _STREAMED_OUTSIDE
    ):
        streamed[id(part)] = runs[whole]
        return
    part.set_payload(_MARKER.sub(lambda found: _original(runs, found.group()), payload))


def _line_end(data: bytes, start: int, end: int) -> bytes:
    """The line end the body ``start``..``end`` ends with (kept after its marker)."""
    for ending in (b"\r\n", b"\n"):
        if end - start >= len(ending) and data[end - len(ending) : end] == ending:
            return ending
    return b""


def _original(runs: dict[str, RawBase64], marker: str) -> str:
    """The body a marker stands for, without its last line end (which follows the marker)."""
    run = runs.get(marker)
    if run is None:
        return marker
    with run.path.open("rb") as handle:
        handle.seek(run.start)
        text = handle.read(run.end - run.start)
    return text[: len(text) - len(_line_end(text, 0, len(text)))].decode("ascii")
