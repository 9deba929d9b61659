"""Page previews as PNG: PDF pages with pypdfium2, TIFF/JPEG/PNG with Pillow.

pypdfium2 rather than Ghostscript:
- licence: PDFium is BSD-3/Apache-2.0 and pypdfium2 ships it as a wheel pinned in
  pyproject; Ghostscript is AGPL (or a commercial licence) and a system package whose
  version the deployment, not the project, decides.
- speed: PDFium renders one page without interpreting the pages before it and decodes
  JPEG images at a reduced scale where the output is small; Ghostscript is a PostScript
  interpreter started per call, and renders PDF through it.
- sandboxing: PDFium is a library with no file-system or process side effects beyond the
  file it reads, so it runs inside our own limited process (``shared.files.preflight.run``)
  under one set of limits with pikepdf; Ghostscript would be a second program to confine
  (its -dSAFER history is a list of sandbox escapes).
- memory: PDFium reads the file lazily through its own file access and allocates only the
  requested bitmap plus the images of that page; the bench's figures are in
  bench/README.md (section 7).

Previews are rendered from the CropBox (what viewers show), annotations and form fields
left out (they do not print). Every PNG is written under a temporary name in the target
directory and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image

from shared.files.preflight.raster import open_unchecked


class PreviewRefused(Exception):
    """The page or image is beyond the limits for rendering; the message says why."""


def render_pdf_page(path: Path, page: int, longest_px: int, target: Path) -> Path:
    """Render page ``page`` (from 1) of a PDF to ``target``, longest side ``longest_px``."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    try:
        if not 1 <= page <= len(document):
            raise PreviewRefused(f"no page {page}")
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        if width <= 0 or height <= 0:
            raise PreviewRefused("page without area")
        # get_size is the CropBox before /Rotate; the longest side is the same either way.
        scale = longest_px / max(width, height)
        bitmap = pdf_page.render(
            scale=scale, may_draw_forms=False, draw_annots=False, rev_byteorder=True
        )
        image = bitmap.to_pil()
        write_png(image, target)
        bitmap.close()
        pdf_page.close()
    finally:
        document.close()
    return target


def render_raster(path: Path, longest_px: int, max_pixels: int, target: Path) -> Path:
    """A preview of the first image in a TIFF/JPEG/PNG, decoding no more than needed.

    JPEG decodes at 1/2, 1/4 or 1/8 scale (``draft``) when the preview is that much
    smaller; other formats decode whole, so an image whose decoded size is over
    ``max_pixels`` is refused before any pixel is read.
    """
    with open_unchecked(path) as image:
        image.draft("RGB", (longest_px, longest_px))
        width, height = image.size
        if width * height > max_pixels:
            raise PreviewRefused(f"{width} × {height} pixels to decode")
        image.thumbnail((longest_px, longest_px), reducing_gap=2.0)
        write_png(_for_screen(image), target)
    return target


def _for_screen(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode in ("P", "PA"):
        return image.convert("RGBA")
    # CMYK, LAB, 16-bit and 1-bit: a plain conversion is close enough for a preview.
    return image.convert("RGB")


def write_png(image: Image.Image, target: Path) -> None:
    """Save ``image`` as ``target`` atomically: a temporary name, then a rename."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as output:
            image.save(output, format="PNG", compress_level=3)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
