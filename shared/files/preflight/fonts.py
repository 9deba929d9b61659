"""Whether a PDF font is embedded, and its name as people know it.

A font is embedded when its descriptor (for a composite Type0 font: its descendant's)
carries a FontFile, FontFile2 or FontFile3 stream. A Type3 font draws its glyphs with
content streams in the file itself, so it always counts as embedded. The standard 14
fonts (Helvetica, Times, Courier, Symbol, ZapfDingbats) are no exception: unembedded,
the RIP substitutes its own version, whose metrics and glyphs need not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pikepdf

_SUBSET_TAG = re.compile(r"^[A-Z]{6}\+")
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


@dataclass(frozen=True)
class FontInfo:
    """A font's name (without the subset tag) and whether its program is in the file."""

    name: str
    embedded: bool


def font_info(font: object) -> FontInfo:
    """Look at a font dictionary from a /Font resource."""
    if not isinstance(font, pikepdf.Dictionary):
        return FontInfo("?", False)
    name = _SUBSET_TAG.sub("", str(font.get("/BaseFont", "/?"))[1:]) or "?"
    subtype = font.get("/Subtype")
    if subtype == pikepdf.Name.Type3:
        return FontInfo(str(font.get("/Name", "/Type3"))[1:] or "Type3", True)
    described = font
    if subtype == pikepdf.Name.Type0:
        descendants = font.get("/DescendantFonts")
        if not isinstance(descendants, pikepdf.Array) or len(descendants) == 0:
            return FontInfo(name, False)
        described = descendants[0]
        if not isinstance(described, pikepdf.Dictionary):
            return FontInfo(name, False)
    descriptor = described.get("/FontDescriptor")
    if not isinstance(descriptor, pikepdf.Dictionary):
        return FontInfo(name, False)
    return FontInfo(name, any(key in descriptor for key in _FONT_FILES))
