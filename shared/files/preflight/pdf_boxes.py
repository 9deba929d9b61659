"""Page boxes in mm, pages grouped by equal boxes, and the bleed around the trim.

Boxes follow PDF 32000-1, 14.11.2: CropBox defaults to the MediaBox, BleedBox and
TrimBox to the CropBox, and every box counts only as far as it lies inside the MediaBox.
The final size is the TrimBox; a page without one has no declared trim, so its CropBox
(usually the MediaBox) counts as the final size and its bleed as none. Sizes are shown as
the page is viewed: a /Rotate of 90 or 270 swaps width and height. Bleed is measured on
every side from the TrimBox out to the BleedBox, rounded to 0.1 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pikepdf

from shared.files.preflight.report import PageGroup, page_ranges

MM_PER_POINT = 25.4 / 72
BOXES = ("/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox")
# Groups shown at most; a file with more differently sized pages shows the first ones.
MAX_GROUPS = 50

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageGeometry:
    """One page's boxes and bleed; ``key`` is what pages must share to form a group."""

    trim_mm: tuple[float, float]
    bleed_mm: tuple[float, float, float, float]
    boxes_mm: tuple[tuple[str, tuple[float, float]], ...]
    rotate: int
    has_trim_box: bool

    @property
    def key(self) -> tuple:
        return (self.trim_mm, self.bleed_mm, self.boxes_mm, self.rotate)


class BoxError(ValueError):
    """A page box that is not four finite numbers with an area."""


def page_geometry(page: pikepdf.Page) -> PageGeometry:
    """The boxes of ``page``; raises BoxError when its MediaBox is unusable."""
    raw = {name: page.obj.get(name) for name in BOXES if name in page.obj}
    media = _box(raw.get("/MediaBox"))
    if media is None:
        raise BoxError("MediaBox")
    crop = _inside(_box(raw.get("/CropBox")) or media, media)
    trim = _inside(_box(raw.get("/TrimBox")) or crop, media)
    bleed = _inside(_box(raw.get("/BleedBox")) or crop, media)
    rotate = _rotation(page.obj.get("/Rotate", 0))
    left, bottom = trim[0] - bleed[0], trim[1] - bleed[1]
    right, top = bleed[2] - trim[2], bleed[3] - trim[3]
    sides = (left, bottom, right, top)
    sides = _viewed_sides(sides, rotate)
    boxes = []
    for name in BOXES:
        box = _box(raw.get(name)) if name in raw else None
        if box is not None:
            boxes.append((name[1:], _size_mm(_inside(box, media), rotate)))
    return PageGeometry(
        _size_mm(trim, rotate),
        tuple(round(max(side, 0.0) * MM_PER_POINT, 1) for side in sides),  # type: ignore[arg-type]
        tuple(boxes),
        rotate,
        _box(raw.get("/TrimBox")) is not None,
    )


def group_pages(geometries: dict[int, PageGeometry]) -> list[PageGroup]:
    """Pages (numbered from 1) with equal boxes as one group each, in order of first page."""
    groups: dict[tuple, list[int]] = {}
    first: dict[tuple, PageGeometry] = {}
    for number, geometry in geometries.items():
        groups.setdefault(geometry.key, []).append(number)
        first.setdefault(geometry.key, geometry)
    result = []
    for key, pages in list(groups.items())[:MAX_GROUPS]:
        geometry = first[key]
        result.append(
            PageGroup(
                page_ranges(pages),
                len(pages),
                geometry.trim_mm,
                geometry.bleed_mm,
                dict(geometry.boxes_mm),
                geometry.rotate,
            )
        )
    return result


def _box(value: object) -> Box | None:
    if not isinstance(value, pikepdf.Array) or len(value) != 4:
        return None
    try:
        x0, y0, x1, y1 = (float(number) for number in value)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(number) for number in (x0, y0, x1, y1)):
        return None
    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return box if box[2] > box[0] and box[3] > box[1] else None


def _inside(box: Box, media: Box) -> Box:
    """``box`` cut to the MediaBox; a box entirely outside it counts as the MediaBox."""
    cut = (
        max(box[0], media[0]),
        max(box[1], media[1]),
        min(box[2], media[2]),
        min(box[3], media[3]),
    )
    return cut if cut[2] > cut[0] and cut[3] > cut[1] else media


def _rotation(value: object) -> int:
    return value % 360 if isinstance(value, int) and value % 90 == 0 else 0


def _viewed_sides(sides: tuple[float, ...], rotate: int) -> tuple[float, ...]:
    """Left, bottom, right, top as the page is shown: /Rotate turns it clockwise."""
    left, bottom, right, top = sides
    return {
        0: sides,
        90: (bottom, right, top, left),
        180: (right, top, left, bottom),
        270: (top, left, bottom, right),
    }[rotate]


def _size_mm(box: Box, rotate: int) -> tuple[float, float]:
    width = round((box[2] - box[0]) * MM_PER_POINT, 1)
    height = round((box[3] - box[1]) * MM_PER_POINT, 1)
    return (height, width) if rotate in (90, 270) else (width, height)
