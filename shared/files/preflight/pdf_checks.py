"""The preflight of a PDF: every check over every page, findings gathered per document.

Runs inside the sandboxed process (``shared.files.preflight.run``). Findings name pages
as ranges ("1–3, 7"), one finding per rule and document, so 10,000 equal pages give one
line, not 10,000. Rules and thresholds:

- ``no_pages`` (error); more than ``PreflightLimits.max_pages`` pages: preflight failed.
- ``page_box_invalid`` (error): a MediaBox that is not four numbers with an area.
- ``trim_box_missing`` (note): no TrimBox, the CropBox counts as the final size.
- ``bleed_missing`` (warning): no bleed on any side; ``bleed_too_small`` (warning): some
  side below ``min_bleed_mm`` (the smallest side is reported).
- ``trim_size_mismatch`` / ``page_count_mismatch`` (warnings): against the order.
- ``font_not_embedded`` (error), ``image_low_resolution`` (warning, below
  ``min_image_ppi``), ``image_too_large`` (error, over ``max_image_pixels``),
  ``rgb_colour`` (warning when printing CMYK), ``spot_colour`` (note, names listed).
- ``pdfx_output_intent`` / ``no_output_intent`` (notes; a warning if PDF/X is required),
  ``encrypted``, ``damaged``, ``javascript`` (warning): see ``pdf_structure``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf

from shared.files.findings import ERROR, INFO, WARNING, Finding
from shared.files.preflight import pdf_structure
from shared.files.preflight.expectations import expectation_findings
from shared.files.preflight.options import Expectations, PreflightLimits, PreflightSettings
from shared.files.preflight.pdf_boxes import BoxError, PageGeometry, group_pages, page_geometry
from shared.files.preflight.pdf_content import ContentWalker, Summary
from shared.files.preflight.report import PreflightReport, failure, page_ranges

MAX_NAMES = 20


@dataclass
class _Tally:
    """What the pages said, gathered per rule."""

    invalid_boxes: list[int] = field(default_factory=list)
    no_trim_box: list[int] = field(default_factory=list)
    no_bleed: list[int] = field(default_factory=list)
    small_bleed: dict[int, float] = field(default_factory=dict)
    unembedded: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    low_resolution: dict[tuple, tuple[float, int]] = field(default_factory=dict)
    low_resolution_pages: list[int] = field(default_factory=list)
    huge_images: dict[int, tuple[int, int]] = field(default_factory=dict)
    rgb_pages: list[int] = field(default_factory=list)
    spots: set[str] = field(default_factory=set)
    unreadable_pages: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    javascript_pages: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PdfResult:
    """The report, and the pages whose images are too large to render."""

    report: PreflightReport
    unrenderable_pages: frozenset[int] = frozenset()


def check_pdf(
    path: Path,
    file_type: str,
    settings: PreflightSettings,
    expectations: Expectations,
    limits: PreflightLimits,
) -> PdfResult:
    """Open ``path`` and run every check."""
    pdf, findings = pdf_structure.open_pdf(path)
    if pdf is None:
        return PdfResult(PreflightReport.of(file_type, findings))
    with pdf:
        page_count = len(pdf.pages)  # reads the page tree: a broken file is repaired by now
        warnings = pdf.get_warnings()[: pdf_structure.MAX_PROBLEMS]
        if page_count > limits.max_pages:
            too_many = failure("too_many_pages", pages=page_count, max_pages=limits.max_pages)
            return PdfResult(PreflightReport.of(file_type, [too_many], page_count))
        if page_count == 0:
            findings.append(Finding("no_pages", ERROR, {}))
        tally = _Tally()
        geometries = _walk_pages(pdf, settings, limits, tally)
        findings += _page_findings(tally, geometries, settings, expectations, page_count)
        findings.append(pdf_structure.output_intent_finding(pdf, settings.require_pdfx))
        document_javascript = pdf_structure.document_javascript(pdf)
        if document_javascript or tally.javascript_pages:
            params: dict[str, object] = {"document": document_javascript}
            if tally.javascript_pages:
                params["pages"] = page_ranges(tally.javascript_pages)
            findings.append(Finding("javascript", WARNING, params))
        warnings += pdf.get_warnings()[: pdf_structure.MAX_PROBLEMS]
        bad_streams = pdf_structure.undecodable_streams(pdf)
    # qpdf names the file by its path on the server; the report travels further than that.
    problems = [problem.replace(str(path), path.name) for problem in warnings + tally.problems]
    bad_streams = [problem.replace(str(path), path.name) for problem in bad_streams]
    damage = pdf_structure.repair_finding(problems, tally.unreadable_pages, bad_streams)
    if damage is not None:
        findings.insert(0, damage)
    report = PreflightReport.of(file_type, findings, page_count, group_pages(geometries))
    return PdfResult(report, frozenset(tally.huge_images))


def _walk_pages(
    pdf: pikepdf.Pdf, settings: PreflightSettings, limits: PreflightLimits, tally: _Tally
) -> dict[int, PageGeometry]:
    walker = ContentWalker()
    geometries: dict[int, PageGeometry] = {}
    for number, page in enumerate(pdf.pages, start=1):
        try:
            geometry = page_geometry(page)
        except BoxError:
            tally.invalid_boxes.append(number)
        else:
            geometries[number] = geometry
            _bleed(number, geometry, settings, tally)
        summary = walker.page(page, number)
        _content(number, summary, settings, limits, tally)
        if pdf_structure.page_javascript(page):
            tally.javascript_pages.append(number)
        # What qpdf had to skip or guess while reading this page's objects and content
        # (bad tokens, excessive nesting) leaves the page printing something else.
        skipped = pdf.get_warnings()
        if skipped:
            _unreadable(number, skipped, tally)
    return geometries


def _unreadable(number: int, problems: list[str], tally: _Tally) -> None:
    if not tally.unreadable_pages or tally.unreadable_pages[-1] != number:
        tally.unreadable_pages.append(number)
    room = pdf_structure.MAX_PROBLEMS - len(tally.problems)
    tally.problems += problems[: max(room, 0)]


def _bleed(number: int, geometry: PageGeometry, settings: PreflightSettings, tally: _Tally):
    if not geometry.has_trim_box:
        tally.no_trim_box.append(number)
    smallest = min(geometry.bleed_mm)
    if max(geometry.bleed_mm) == 0:
        tally.no_bleed.append(number)
    elif smallest < settings.min_bleed_mm:
        tally.small_bleed[number] = smallest


def _content(
    number: int,
    summary: Summary,
    settings: PreflightSettings,
    limits: PreflightLimits,
    tally: _Tally,
) -> None:
    if summary.problems:  # a content stream that cannot be parsed will not print right
        _unreadable(number, summary.problems, tally)
    for font in summary.fonts.values():
        if not font.embedded:
            tally.unembedded[font.name].append(number)
    rgb = "rgb" in summary.families
    for placement in summary.placements:
        rgb = rgb or placement.colour.family == "rgb"
        tally.spots.update(placement.colour.spots)
        if placement.pixels > limits.max_image_pixels:
            tally.huge_images[number] = (placement.width_px, placement.height_px)
        ppi = placement.ppi
        if ppi is not None and ppi < settings.min_image_ppi:
            lowest, pages = tally.low_resolution.get(placement.key, (ppi, 0))
            tally.low_resolution[placement.key] = (min(lowest, ppi), pages + 1)
            tally.low_resolution_pages.append(number)
    if rgb:
        tally.rgb_pages.append(number)
    tally.spots |= summary.spots


def _page_findings(
    tally: _Tally,
    geometries: dict[int, PageGeometry],
    settings: PreflightSettings,
    expectations: Expectations,
    page_count: int,
) -> list[Finding]:
    findings: list[Finding] = []

    def add(code: str, severity: str, pages: list[int], **params: object) -> None:
        if pages:
            findings.append(Finding(code, severity, {"pages": page_ranges(pages), **params}))

    add("page_box_invalid", ERROR, tally.invalid_boxes)
    add("trim_box_missing", INFO, tally.no_trim_box)
    add("bleed_missing", WARNING, tally.no_bleed, min_bleed_mm=settings.min_bleed_mm)
    if tally.small_bleed:
        smallest = min(tally.small_bleed.values())
        add(
            "bleed_too_small",
            WARNING,
            list(tally.small_bleed),
            bleed_mm=smallest,
            min_bleed_mm=settings.min_bleed_mm,
        )
    trim_sizes = {number: geometry.trim_mm for number, geometry in geometries.items()}
    findings += expectation_findings(trim_sizes, expectations, page_count)
    if tally.unembedded:
        pages = [page for pages in tally.unembedded.values() for page in pages]
        add("font_not_embedded", ERROR, pages, fonts=sorted(tally.unembedded)[:MAX_NAMES])
    if tally.low_resolution:
        lowest = min(ppi for ppi, _ in tally.low_resolution.values())
        add(
            "image_low_resolution",
            WARNING,
            tally.low_resolution_pages,
            images=len(tally.low_resolution),
            ppi=round(lowest),
            min_ppi=settings.min_image_ppi,
        )
    if tally.huge_images:
        width, height = max(tally.huge_images.values(), key=lambda size: size[0] * size[1])
        add("image_too_large", ERROR, list(tally.huge_images), width=width, height=height)
    if settings.colour_mode == "cmyk":
        add("rgb_colour", WARNING, tally.rgb_pages)
    if tally.spots:
        findings.append(Finding("spot_colour", INFO, {"names": sorted(tally.spots)[:MAX_NAMES]}))
    return findings
