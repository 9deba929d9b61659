"""Upload file names: what a customer may send, and the name it is stored under.

The customer's name is kept for display exactly as sent (NFC). The stored name
has to survive every place a file travels in a print shop — Windows and SMB
hotfolders, NFS, RIP software that chokes on anything but ASCII — so it is
transliterated, stripped of reserved characters and device names, and made
unique in its folder instead of overwriting anything.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from shared.errors import Invalid

MAX_NAME_BYTES = 255

REASON_EMPTY = "empty"
REASON_SEPARATOR = "separator"
REASON_DOTS = "dots"
REASON_CONTROL = "control"
REASON_TOO_LONG = "too_long"

_MESSAGES = {
    REASON_EMPTY: "the file name is empty",
    REASON_SEPARATOR: "the file name must not contain / or \\",
    REASON_DOTS: "the file name must not be . or ..",
    REASON_CONTROL: "the file name contains control characters",
    REASON_TOO_LONG: f"the file name is longer than {MAX_NAME_BYTES} bytes",
}

# Cc covers NUL, C0, DEL and C1; Zl/Zp are line and paragraph separators.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Bidi embeddings, overrides and isolates are not category Cc but let a name like
# "invoice\u202efdp.exe" display as "invoiceexe.pdf"; they are refused with the rest.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Letters NFKD does not decompose are spelled out: German first, then common European ones.
_SPELLED_OUT = str.maketrans(
    {
        "ä": "ae", "Ä": "Ae", "ö": "oe", "Ö": "Oe", "ü": "ue", "Ü": "Ue", "ß": "ss", "ẞ": "SS",
        "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
        "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
    }
)  # fmt: skip
# Everything Windows forbids, plus anything that is not printable ASCII.
_UNSAFE = re.compile(r'[<>:"|?*/\\\x00-\x1f\x7f-\U0010ffff]')
_UNDERSCORES = re.compile(r"_{2,}")
_EXTENSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{digit}" for digit in range(10)]
    + [f"LPT{digit}" for digit in range(10)]
)


class NameRefused(Invalid):
    """An upload name that cannot be accepted; ``reason`` is one of the ``REASON_*`` values."""

    def __init__(self, reason: str) -> None:
        super().__init__("filename", _MESSAGES[reason])
        self.reason = reason


def check_upload_name(name: str) -> str:
    """The NFC form of ``name`` for display, or raise NameRefused saying what is wrong."""
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise NameRefused(REASON_EMPTY)
    if any(
        unicodedata.category(char) in _CONTROL_CATEGORIES or char in _BIDI_CONTROLS for char in name
    ):
        raise NameRefused(REASON_CONTROL)
    if "/" in name or "\\" in name:
        raise NameRefused(REASON_SEPARATOR)
    if name in (".", ".."):
        raise NameRefused(REASON_DOTS)
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise NameRefused(REASON_TOO_LONG)
    return name


def _split_extension(name: str) -> tuple[str, str]:
    """``("report", "pdf")`` for ``report.pdf``; a leading dot does not start an extension."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem.strip(" ."):
        return name, ""
    return stem, extension


def _to_ascii(text: str) -> str:
    """German umlauts spelled out, other accents dropped, anything else unsafe made ``_``."""
    text = text.translate(_SPELLED_OUT)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _UNDERSCORES.sub("_", _UNSAFE.sub("_", text))


def _is_reserved(name: str) -> bool:
    # Windows matches the part before the first dot, trailing spaces ignored: "AUX .txt".
    return name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def _alphanumerics(text: str) -> int:
    return sum(char.isalnum() for char in text)


def _fallback_stem(display_name: str) -> str:
    digest = hashlib.sha1(display_name.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"file-{digest[:8]}"


def stored_name_for(display_name: str) -> str:
    """A name for ``display_name`` that Windows/SMB, NFS and RIP software can all hold."""
    display_name = unicodedata.normalize("NFC", display_name).strip()
    stem, _dot, extension = display_name.rpartition(".")
    safe_extension = _to_ascii(extension).strip(" ._")
    if not _dot or not _EXTENSION.fullmatch(safe_extension):
        # An extension that does not survive as such stays part of the name.
        stem, safe_extension = display_name, ""
    # Leading dots would hide the file from hotfolder watchers on Unix and macOS;
    # underscores at either end are mostly what replaced characters left behind.
    safe_stem = _to_ascii(stem).strip(" ._")
    kept = _alphanumerics(safe_stem)
    if kept == 0 or kept * 2 < _alphanumerics(stem):
        safe_stem = _fallback_stem(display_name)
    suffix = f".{safe_extension}" if safe_extension else ""
    safe_stem = safe_stem[: MAX_NAME_BYTES - len(suffix)].rstrip(" .")
    name = safe_stem + suffix
    if _is_reserved(name):
        name = "_" + name[: MAX_NAME_BYTES - 1]
    return name


def is_stored_name(name: str) -> bool:
    """True if ``name`` could be a stored name: printable ASCII without anything Windows
    forbids, no device name, no leading dot (hidden) and no trailing dot or space.

    The hotfolder agent checks every name the portal sends before writing anything, so
    a broken or hostile answer (``../x``, ``/etc/x``, NUL, CR/LF, ``CON.pdf``) is refused
    rather than followed.
    """
    return (
        0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES
        and not _UNSAFE.search(name)
        and not name.startswith((".", " "))
        and not name.endswith((".", " "))
        and not _is_reserved(name)
    )


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def free_name(directory: Path, name: str, also_taken: Iterable[str] = ()) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext``, … — the first not present in ``directory``.

    Names are compared case-insensitively: an SMB share or a Windows hotfolder
    holds ``Report.pdf`` and ``report.pdf`` as one file. ``also_taken`` adds
    names that are reserved but not on disk yet.
    """
    try:
        taken = {entry.name.casefold() for entry in directory.iterdir()}
    except FileNotFoundError:
        taken = set()
    taken.update(other.casefold() for other in also_taken)
    if name.casefold() not in taken:
        return name
    stem, extension = _split_extension(name)
    suffix = f".{extension}" if extension else ""
    number = 2
    while True:
        tail = f" ({number}){suffix}"
        candidate = _truncate_utf8(stem, MAX_NAME_BYTES - len(tail.encode("utf-8"))) + tail
        if candidate.casefold() not in taken:
            return candidate
        number += 1
