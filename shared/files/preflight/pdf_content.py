"""Walk a page's content: where each image lands, which fonts draw text, which colours paint.

The walk reads only the content streams (``pikepdf.parse_content_stream`` with a list of
the operators it needs) and the dictionaries they name; image data is never decoded, an
image's pixel size comes from its /Width and /Height.

- Placement: q/Q/cm keep the current transformation matrix (CTM). An image fills the unit
  square mapped by the CTM, so its placed width and height are the lengths of the mapped
  unit vectors: right for rotated and skewed images too. ppi = pixels / placed inches,
  the smaller of the two directions counts.
- Form XObjects are summarised once, in their own space, and the summary is composed with
  their /Matrix and the CTM at every Do: a logo form on 10,000 pages is parsed once. Forms
  nested deeper than ``MAX_FORM_DEPTH`` or drawing themselves are a problem, not a hang.
- Inline images (BI … ID … EI) count like image XObjects.
- Shading and tiling patterns count for colours; a tiling pattern's content is summarised
  like a form placed with the pattern's /Matrix (exact on a page; inside a form the form's
  matrix is left out, which the spec's pattern space would include).
- Fonts count when text selects them (Tf), not merely when a resource lists them.
- Not walked: annotation appearances (they print only when flattened) and Type3 glyph
  procedures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pikepdf

from shared.files.preflight.colourspaces import ColourSpace, classify
from shared.files.preflight.fonts import FontInfo, font_info

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
MAX_FORM_DEPTH = 12
_OPERATORS = "q Q cm Do Tf rg RG k K g G cs CS sh scn SCN BI ID EI"
_RGB_OPERATORS = {"rg": "rgb", "RG": "rgb", "k": "cmyk", "K": "cmyk", "g": "gray", "G": "gray"}


@dataclass(frozen=True)
class Placement:
    """One image drawn: its key (object id or inline position), pixels, matrix, colours."""

    key: tuple
    width_px: int
    height_px: int
    matrix: Matrix
    colour: ColourSpace

    def placed(self, outer: Matrix) -> Placement:
        return Placement(
            self.key, self.width_px, self.height_px, multiply(self.matrix, outer), self.colour
        )

    @property
    def ppi(self) -> float | None:
        """Effective resolution at the placed size; None when it is placed with no area."""
        a, b, c, d, _, _ = self.matrix
        width_in, height_in = math.hypot(a, b) / 72, math.hypot(c, d) / 72
        if width_in <= 1e-6 or height_in <= 1e-6:
            return None
        return min(self.width_px / width_in, self.height_px / height_in)

    @property
    def pixels(self) -> int:
        return self.width_px * self.height_px


@dataclass
class Summary:
    """What one content stream draws, in its own coordinate space."""

    placements: list[Placement] = field(default_factory=list)
    fonts: dict[tuple, FontInfo] = field(default_factory=dict)
    families: set[str] = field(default_factory=set)  # of vector and text colour
    spots: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Summary, outer: Matrix) -> None:
        """Take in what a form drawn with ``outer`` (its matrix times the CTM) draws."""
        self.placements += [placement.placed(outer) for placement in other.placements]
        self.fonts.update(other.fonts)
        self.families |= other.families
        self.spots |= other.spots
        self.problems += other.problems

    def add_colour(self, colour: ColourSpace) -> None:
        self.families.add(colour.family)
        self.spots.update(colour.spots)


def multiply(first: Matrix, second: Matrix) -> Matrix:
    """``first`` × ``second`` in PDF's row-vector convention (apply ``first``, then ``second``)."""
    a, b, c, d, e, f = first
    a2, b2, c2, d2, e2, f2 = second
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _matrix(values: object) -> Matrix | None:
    try:
        numbers = tuple(float(value) for value in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(numbers) != 6 or not all(math.isfinite(number) for number in numbers):
        return None
    return numbers  # type: ignore[return-value]


def _key(obj: object, fallback: tuple) -> tuple:
    objgen = getattr(obj, "objgen", (0, 0))
    return objgen if objgen != (0, 0) else fallback


class ContentWalker:
    """Summarises pages; keeps form and pattern summaries for the whole document."""

    def __init__(self) -> None:
        self._forms: dict[tuple, Summary] = {}
        self._fonts: dict[tuple, FontInfo] = {}

    def page(self, page: pikepdf.Page, number: int) -> Summary:
        """What ``page`` (``number`` from 1) draws, in default user space."""
        resources = page.obj.get("/Resources")
        return self._summarise(page, _dictionary(resources), (), f"page {number}")

    def _summarise(
        self, source: object, resources: pikepdf.Dictionary, chain: tuple, label: str
    ) -> Summary:
        summary = Summary()
        try:
            instructions = pikepdf.parse_content_stream(source, _OPERATORS)
        except (pikepdf.PdfError, RuntimeError, ValueError) as exc:
            summary.problems.append(f"{label}: {exc}")
            return summary
        named_spaces = _dictionary(resources.get("/ColorSpace"))
        stack: list[Matrix] = []
        ctm = IDENTITY
        for number, instruction in enumerate(instructions):
            operator = str(instruction.operator)
            operands = instruction.operands
            if operator == "q":
                stack.append(ctm)
            elif operator == "Q":
                ctm = stack.pop() if stack else ctm
            elif operator == "cm":
                matrix = _matrix(operands)
                ctm = multiply(matrix, ctm) if matrix else ctm
            elif operator == "Do" and operands:
                self._draw_xobject(summary, resources, operands[0], ctm, chain, label)
            elif operator == "INLINE IMAGE":
                self._inline_image(summary, instruction, named_spaces, ctm, label, number)
            elif operator == "Tf" and operands:
                self._font(summary, resources, operands[0])
            elif operator in _RGB_OPERATORS:
                summary.families.add(_RGB_OPERATORS[operator])
            elif operator in ("cs", "CS") and operands:
                summary.add_colour(classify(operands[0], named_spaces))
            elif operator == "sh" and operands:
                shading = _dictionary(resources.get("/Shading")).get(operands[0])
                self._shading(summary, shading, named_spaces)
            elif operator in ("scn", "SCN") and operands and isinstance(operands[-1], pikepdf.Name):
                pattern = _dictionary(resources.get("/Pattern")).get(operands[-1])
                self._pattern(summary, pattern, named_spaces, chain, label)
        return summary

    def _draw_xobject(
        self,
        summary: Summary,
        resources: pikepdf.Dictionary,
        name: object,
        ctm: Matrix,
        chain: tuple,
        label: str,
    ) -> None:
        xobject = _dictionary(resources.get("/XObject")).get(name)
        if not isinstance(xobject, pikepdf.Stream):
            return
        subtype = xobject.get("/Subtype")
        if subtype == pikepdf.Name.Image:
            summary.placements.append(self._image(xobject, resources, ctm))
        elif subtype == pikepdf.Name.Form:
            form = self._form(xobject, resources, chain, label)
            matrix = _matrix(xobject.get("/Matrix", IDENTITY)) or IDENTITY
            summary.add(form, multiply(matrix, ctm))

    def _form(
        self, form: pikepdf.Stream, parent: pikepdf.Dictionary, chain: tuple, label: str
    ) -> Summary:
        key = _key(form, ("form", id(form)))
        if key in self._forms:
            return self._forms[key]
        if key in chain or len(chain) >= MAX_FORM_DEPTH:
            return Summary(problems=[f"{label}: forms nested too deep or drawing themselves"])
        # A form without /Resources uses its parent's (allowed in PDF 1.1, still seen).
        resources = _dictionary(form.get("/Resources")) if "/Resources" in form else parent
        summary = self._summarise(form, resources, (*chain, key), label)
        self._forms[key] = summary
        return summary

    def _image(
        self, image: pikepdf.Stream, resources: pikepdf.Dictionary, ctm: Matrix
    ) -> Placement:
        named = _dictionary(resources.get("/ColorSpace"))
        if image.get("/ImageMask") is True:
            colour = ColourSpace("mask")
        else:
            colour = classify(image.get("/ColorSpace"), named)
        return Placement(
            _key(image, ("image", id(image))),
            _pixels(image.get("/Width")),
            _pixels(image.get("/Height")),
            ctm,
            colour,
        )

    def _inline_image(
        self,
        summary: Summary,
        instruction: pikepdf.ContentStreamInlineImage,
        named: pikepdf.Dictionary,
        ctm: Matrix,
        label: str,
        number: int,
    ) -> None:
        info = instruction.iimage.obj
        if info.get("/ImageMask") is True:
            colour = ColourSpace("mask")
        else:
            colour = classify(info.get("/ColorSpace"), named)
        key = ("inline", label, number)
        width, height = _pixels(info.get("/Width")), _pixels(info.get("/Height"))
        summary.placements.append(Placement(key, width, height, ctm, colour))

    def _font(self, summary: Summary, resources: pikepdf.Dictionary, name: object) -> None:
        font = _dictionary(resources.get("/Font")).get(name)
        if font is None:
            return
        key = _key(font, ("font", str(name)))
        if key not in self._fonts:
            self._fonts[key] = font_info(font)
        summary.fonts[key] = self._fonts[key]

    def _shading(self, summary: Summary, shading: object, named: pikepdf.Dictionary) -> None:
        if isinstance(shading, pikepdf.Dictionary | pikepdf.Stream):
            summary.add_colour(classify(shading.get("/ColorSpace"), named))

    def _pattern(
        self,
        summary: Summary,
        pattern: object,
        named: pikepdf.Dictionary,
        chain: tuple,
        label: str,
    ) -> None:
        if not isinstance(pattern, pikepdf.Dictionary | pikepdf.Stream):
            return
        if pattern.get("/PatternType") == 2:
            self._shading(summary, pattern.get("/Shading"), named)
        elif isinstance(pattern, pikepdf.Stream):
            tile = self._form(pattern, pikepdf.Dictionary(), chain, label)
            matrix = _matrix(pattern.get("/Matrix", IDENTITY)) or IDENTITY
            summary.add(tile, matrix)


def _dictionary(value: object) -> pikepdf.Dictionary:
    """``value`` if it is a dictionary (or a stream's), else an empty one."""
    if isinstance(value, pikepdf.Stream):
        return value.stream_dict
    if isinstance(value, pikepdf.Dictionary):
        return value
    return pikepdf.Dictionary()


def _pixels(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
