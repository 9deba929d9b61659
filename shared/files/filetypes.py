"""File types: which types a shop accepts, read from the content (magic bytes), not the name.

The upload refuses a file twice over: before it starts, when the name already says a type
the shop does not accept (``type_from_name`` + ``refusal``), and after the first bytes,
from what they are (``detect_type`` + ``refusal``). Content wins over the name: a JPEG
called ``flyer.pdf`` is a JPEG.

Adobe Illustrator (decided here): since version 9 an ``.ai`` file is a PDF with
Illustrator's private data beside the page (PDF compatibility on), so it is a PDF by its
bytes. Such a PDF is "ai" when its name ends ``.ai`` or its first bytes carry Illustrator's
marks (XMP ``CreatorTool`` "Adobe Illustrator", ``/AIPrivateData``, ``/Illustrator``);
the preflight checks it as the PDF it is. Illustrator 8 and older wrote PostScript: a
``%!PS-Adobe`` file with ``%%Creator: Adobe Illustrator`` or ``%AI`` comments, or named
``.ai``, is "ai" as well; otherwise an ``EPSF`` header (or the DOS EPS binary header
C5 D0 D3 C6) is "eps", and PostScript without one is "ps", which nobody accepts.

A packaged InDesign document is a ZIP (the InDesign package folder, zipped); a raw
``.indd`` is recognised only to say that it must be packaged.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import PurePosixPath

from shared.files.findings import ERROR, Finding
from shared.typenames import (  # the one list and parser, shared with shared.config
    ACCEPTABLE_TYPES,
    DEFAULT_ACCEPTED_TYPES,
    parse_accepted_types,
)

__all__ = [
    "ACCEPTABLE_TYPES",
    "DEFAULT_ACCEPTED_TYPES",
    "HEAD_BYTES",
    "REFUSED_ONLY_TYPES",
    "detect_type",
    "extensions",
    "parse_accepted_types",
    "refusal",
    "type_from_name",
]

# Types recognised only to name them when refusing.
REFUSED_ONLY_TYPES = ("ps", "psd", "gif", "bmp", "webp", "indd", "office", "program", "archive")
# How many first bytes ``detect_type`` looks at: Illustrator's marks sit in the XMP packet
# near the start, which a PDF writer may put behind a few objects.
HEAD_BYTES = 8192

_EXTENSIONS = {
    ".pdf": "pdf",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".png": "png",
    ".eps": "eps",
    ".epsf": "eps",
    ".ai": "ai",
    ".zip": "zip",
    ".ps": "ps",
    ".psd": "psd",
    ".psb": "psd",
    ".gif": "gif",
    ".bmp": "bmp",
    ".webp": "webp",
    ".indd": "indd",
    **dict.fromkeys((".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt"), "office"),
    **dict.fromkeys((".exe", ".com", ".bat", ".cmd", ".scr", ".msi", ".dll", ".js"), "program"),
    **dict.fromkeys((".vbs", ".ps1", ".sh", ".jar", ".apk", ".app"), "program"),
    **dict.fromkeys((".rar", ".7z", ".gz", ".tgz", ".bz2", ".xz", ".tar"), "archive"),
}
_ILLUSTRATOR_MARKS = (b"Adobe Illustrator", b"/AIPrivateData", b"/Illustrator ")
_ILLUSTRATOR_PS = re.compile(rb"^%%Creator: ?Adobe Illustrator|^%AI\d", re.MULTILINE)
_EPS_HEADER = re.compile(rb"%!PS-Adobe-\d+\.\d+ +EPSF-\d")
# The PDF header may follow up to 1 KiB of other bytes (PDF 32000-1, annex H.3, note 13).
_PDF_HEADER_WINDOW = 1024
_INDD_GUID = bytes.fromhex("0606edf5d81d46e5bd31efe7fe74b71d")


def extensions() -> dict[str, str]:
    """Every file name extension with the type it says (``".jpg": "jpeg"``)."""
    return dict(_EXTENSIONS)


def type_from_name(name: str) -> str | None:
    """The type a file name's extension says, or None when it says nothing we know."""
    return _EXTENSIONS.get(PurePosixPath(name.replace("\\", "/")).suffix.lower())


def detect_type(first_bytes: bytes, name: str) -> str | None:
    """The type of a file from its first bytes (``HEAD_BYTES`` are enough); None if unknown.

    ``name`` only tells a PDF-based Illustrator file from a PDF and old Illustrator
    PostScript from EPS; it never makes bytes of one type count as another.
    """
    head = first_bytes[:HEAD_BYTES]
    named_ai = type_from_name(name) == "ai"
    # A signature at offset 0 first: a ZIP may hold a PDF stored within its first KiB.
    binary = None if head.startswith(b"%PDF-") else _binary_type(head)
    if binary is not None:
        return binary
    if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
        if named_ai or any(mark in head for mark in _ILLUSTRATOR_MARKS):
            return "ai"
        return "pdf"
    if head.startswith(bytes.fromhex("c5d0d3c6")):
        return "eps"  # DOS EPS binary: PostScript section plus a TIFF/WMF preview
    if head.startswith(b"%!PS"):
        if named_ai or _ILLUSTRATOR_PS.search(head):
            return "ai"
        return "eps" if _EPS_HEADER.match(head) else "ps"
    return None


def _binary_type(head: bytes) -> str | None:
    """Image, archive and program signatures at the start of the file."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head.startswith(b"8BPS"):
        return "psd"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(_INDD_GUID):
        return "indd"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: .doc, .xls, .ppt
        return "office"
    if head.startswith((b"MZ", b"\x7fELF", b"#!")):
        return "program"
    if head.startswith((b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"\x1f\x8b", b"BZh")):
        return "archive"
    return None


def refusal(file_type: str | None, accepted: Collection[str]) -> Finding | None:
    """The reason to refuse a file of ``file_type`` (None: content not recognised), or None."""
    allowed = [name for name in ACCEPTABLE_TYPES if name in accepted]
    if file_type is None:
        return Finding("file_type_unknown", ERROR, {"allowed": allowed})
    if file_type not in accepted:
        return Finding("file_type_not_accepted", ERROR, {"type": file_type, "allowed": allowed})
    return None
