"""The preflight of a TIFF, JPEG or PNG with Pillow, from its header only.

Pillow reads the header at ``Image.open``; nothing here decodes pixels. A raster file has
no page boxes, so there is no bleed to measure: its size in mm and its resolution follow
from the pixels and the resolution it declares (none declared: a note, no size). The
pixel limit is checked here rather than by Pillow's ``MAX_IMAGE_PIXELS``, whose check
refuses at open, before the size could be reported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from shared.files.findings import ERROR, INFO, WARNING, Finding
from shared.files.preflight.expectations import expectation_findings
from shared.files.preflight.options import Expectations, PreflightLimits, PreflightSettings
from shared.files.preflight.pdf_boxes import PageGeometry, group_pages
from shared.files.preflight.report import PreflightReport

_RGB_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA"}


def open_unchecked(path: Path) -> Image.Image:
    """``Image.open`` without Pillow's pixel limit; the callers check the size themselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_raster(
    path: Path,
    file_type: str,
    settings: PreflightSettings,
    expectations: Expectations,
    limits: PreflightLimits,
) -> PreflightReport:
    """Size, resolution and colour of the first image in ``path``."""
    try:
        image = open_unchecked(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return PreflightReport.of(
            file_type, [Finding("damaged", ERROR, {"kind": "unreadable", "detail": detail})]
        )
    with image:
        width, height = image.size
        page_count = getattr(image, "n_frames", 1)
        mode = image.mode
        dpi = _dpi(image.info.get("dpi"))
    findings: list[Finding] = []
    if width * height > limits.max_image_pixels:
        findings.append(
            Finding("image_too_large", ERROR, {"pages": "1", "width": width, "height": height})
        )
    geometries: dict[int, PageGeometry] = {}
    if dpi is None:
        findings.append(Finding("image_resolution_unknown", INFO, {}))
    else:
        size = (round(width / dpi[0] * 25.4, 1), round(height / dpi[1] * 25.4, 1))
        geometries[1] = PageGeometry(size, (0.0, 0.0, 0.0, 0.0), (("Image", size),), 0, False)
        ppi = min(dpi)
        if ppi < settings.min_image_ppi:
            params = {
                "pages": "1",
                "images": 1,
                "ppi": round(ppi),
                "min_ppi": settings.min_image_ppi,
            }
            findings.append(Finding("image_low_resolution", WARNING, params))
    trim_sizes = {number: geometry.trim_mm for number, geometry in geometries.items()}
    findings += expectation_findings(trim_sizes, expectations, page_count)
    if settings.colour_mode == "cmyk" and mode in _RGB_MODES:
        findings.append(Finding("rgb_colour", WARNING, {"pages": "1"}))
    return PreflightReport.of(file_type, findings, page_count, group_pages(geometries))


def _dpi(value: object) -> tuple[float, float] | None:
    """The declared resolution, or None where a file declares none (or nonsense)."""
    if not isinstance(value, tuple) or len(value) != 2:
        return None
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    # Pillow reports (1, 1) for a TIFF without resolution tags: no one prints at 1 dpi.
    return (x, y) if x > 1 and y > 1 else None
