"""Which family a PDF colour space belongs to, and which spot colours it names.

Families: "gray", "rgb", "cmyk", "lab", "spot" (Separation/DeviceN naming at least one
colourant that is not a process colour), "pattern", "other". ICCBased spaces count by their
number of components (1, 3, 4), Indexed and uncoloured Pattern spaces by their base.
"""

from __future__ import annotations

from dataclasses import dataclass

import pikepdf

_DEVICE = {
    "/DeviceGray": "gray",
    "/DeviceRGB": "rgb",
    "/DeviceCMYK": "cmyk",
    "/G": "gray",  # abbreviations of inline images
    "/RGB": "rgb",
    "/CMYK": "cmyk",
    "/CalGray": "gray",
    "/CalRGB": "rgb",
    "/Lab": "lab",
    "/Pattern": "pattern",
}
_ICC_COMPONENTS = {1: "gray", 3: "rgb", 4: "cmyk"}
# Colourant names that are not spot colours ("All" and "None" are registration and nothing).
_NOT_SPOT = {"Cyan", "Magenta", "Yellow", "Black", "All", "None"}
# Colour spaces nest (Indexed on ICCBased, Pattern on Indexed); deeper is a hostile file.
_MAX_DEPTH = 6


@dataclass(frozen=True)
class ColourSpace:
    """A family and the spot colour names a colour space uses."""

    family: str
    spots: tuple[str, ...] = ()


OTHER = ColourSpace("other")


def classify(space: object, named: pikepdf.Dictionary | None = None, depth: int = 0) -> ColourSpace:
    """The family of ``space`` (a name or an array); ``named`` is the /ColorSpace resource
    dictionary that names like ``/CS0`` refer to."""
    if depth > _MAX_DEPTH:
        return OTHER
    if isinstance(space, pikepdf.Name):
        key = str(space)
        if key in _DEVICE:
            return ColourSpace(_DEVICE[key])
        if named is not None and key in named:
            return classify(named[key], None, depth + 1)
        return OTHER
    if not isinstance(space, pikepdf.Array) or len(space) == 0:
        return OTHER
    kind = str(space[0])
    if kind in ("/CalRGB", "/CalGray", "/Lab"):
        return ColourSpace(_DEVICE[kind])
    if kind == "/ICCBased" and len(space) > 1:
        return _icc(space[1], named, depth)
    if kind in ("/Indexed", "/I") and len(space) > 1:
        return classify(space[1], named, depth + 1)
    if kind == "/Pattern":
        return classify(space[1], named, depth + 1) if len(space) > 1 else ColourSpace("pattern")
    if kind == "/Separation" and len(space) > 1:
        return _colourants([space[1]])
    if kind == "/DeviceN" and len(space) > 1 and isinstance(space[1], pikepdf.Array):
        return _colourants(list(space[1]))
    return classify(space[0], named, depth + 1)


def _icc(profile: object, named: pikepdf.Dictionary | None, depth: int) -> ColourSpace:
    if not isinstance(profile, pikepdf.Stream):
        return OTHER
    components = profile.get("/N")
    if isinstance(components, int) and components in _ICC_COMPONENTS:
        return ColourSpace(_ICC_COMPONENTS[components])
    alternate = profile.get("/Alternate")
    return classify(alternate, named, depth + 1) if alternate is not None else OTHER


def _colourants(names: list[object]) -> ColourSpace:
    spots = tuple(
        str(name)[1:] for name in names if isinstance(name, pikepdf.Name)
    )  # drop the slash
    real = tuple(name for name in spots if name not in _NOT_SPOT)
    if real:
        return ColourSpace("spot", real)
    return ColourSpace("cmyk")
