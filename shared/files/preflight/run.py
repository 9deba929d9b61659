"""The sandboxed process: ``python -m shared.files.preflight.run`` < request.json.

Started only by ``shared.files.preflight.sandbox``. Steps, in this order:

1. Read the request (JSON on stdin) and set this process's limits from it: CPU seconds
   (RLIMIT_CPU; SIGXCPU, then SIGKILL two seconds later), address space (RLIMIT_AS),
   largest file written (RLIMIT_FSIZE), no core dumps. Nothing that parses the file has
   been imported yet.
2. Run the job and write each result as one JSON line on stdout as soon as it is known:
   ``{"report": …}`` first, then ``{"thumbnail": …}``, so that a crash while rendering
   still leaves the checks' findings to the parent; a preview job writes ``{"preview": …}``.
3. On MemoryError or any other exception write ``{"failure": kind, "detail": …}`` and exit 1.
   Crashes in C code and killed processes are judged by the parent from the exit status.
4. Last, ``{"usage": {"peak_rss_kib": …}}``: this process's own peak resident memory
   (VmHWM). The parent's ``wait4`` figure would also count the parent's memory shared with
   the child between fork and exec.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path
from typing import Any

from shared.files.findings import INFO, Finding
from shared.files.preflight.options import Expectations, PreflightLimits, PreflightSettings
from shared.files.preflight.report import PreflightReport

# Named, not __name__: run with -m, this module is "__main__".
logger = logging.getLogger("shared.files.preflight.run")

PDF_TYPES = ("pdf", "ai")
RASTER_TYPES = ("tiff", "jpeg", "png")
_GRACE_SECONDS = 2


def set_limits(limits: PreflightLimits) -> None:
    """Limit this process before it touches the file."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(
        resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + _GRACE_SECONDS)
    )
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output_bytes, limits.max_output_bytes))


def emit(**result: Any) -> None:
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def preflight(request: dict[str, Any], limits: PreflightLimits) -> None:
    """Check the file, emit the report, then render and emit the thumbnail."""
    path = Path(request["path"])
    file_type = request["file_type"]
    settings = PreflightSettings.from_dict(request.get("settings", {}))
    expectations = Expectations.from_dict(request.get("expectations", {}))
    preview_dir = request.get("preview_dir")
    unrenderable: frozenset[int] = frozenset()
    if file_type in PDF_TYPES and _is_pdf(path):
        from shared.files.preflight.pdf_checks import check_pdf

        result = check_pdf(path, file_type, settings, expectations, limits)
        report, unrenderable = result.report, result.unrenderable_pages
    elif file_type in RASTER_TYPES:
        from shared.files.preflight.raster import check_raster

        report = check_raster(path, file_type, settings, expectations, limits)
    else:
        report = PreflightReport.of(file_type, [Finding("not_checked", INFO, {"type": file_type})])
    emit(report=report.to_dict())
    if preview_dir is None or report.status == "failed" or not _renderable(report):
        return
    if 1 in unrenderable:
        emit(thumbnail=None, skipped="image_too_large")
        return
    from shared.files.preflight.preview_files import THUMBNAIL_NAME
    from shared.files.preflight.previews import PreviewRefused

    target = Path(preview_dir) / THUMBNAIL_NAME
    try:
        _render(path, file_type, 1, settings.thumbnail_px, target, limits)
    except PreviewRefused as refused:
        emit(thumbnail=None, skipped=str(refused))
        return
    except MemoryError:
        raise
    except Exception as exc:  # the renderer's own error: the checks still stand
        logger.warning("thumbnail of %s failed: %s", path, exc)
        emit(thumbnail=None, skipped=f"{type(exc).__name__}: {exc}"[:300])
        return
    emit(thumbnail=THUMBNAIL_NAME)


def preview(request: dict[str, Any], limits: PreflightLimits) -> None:
    """Render one page on demand; a PDF page is looked at first for oversized images."""
    from shared.files.preflight.preview_files import preview_name
    from shared.files.preflight.previews import PreviewRefused

    path, file_type = Path(request["path"]), request["file_type"]
    page, longest_px = int(request["page"]), int(request["longest_px"])
    if file_type in PDF_TYPES and _is_pdf(path) and _page_has_huge_image(path, page, limits):
        emit(preview=None, skipped="image_too_large")
        return
    target = Path(request["preview_dir"]) / preview_name(page, longest_px)
    try:
        _render(path, file_type, page, longest_px, target, limits)
    except PreviewRefused as refused:
        emit(preview=None, skipped=str(refused))
        return
    emit(preview=target.name)


def _render(
    path: Path, file_type: str, page: int, longest_px: int, target: Path, limits: PreflightLimits
) -> None:
    from shared.files.preflight.previews import PreviewRefused, render_pdf_page, render_raster

    if file_type in PDF_TYPES and _is_pdf(path):
        render_pdf_page(path, page, longest_px, target)
    elif file_type in RASTER_TYPES and page == 1:
        render_raster(path, longest_px, limits.max_preview_pixels, target)
    else:
        raise PreviewRefused(f"no preview for {file_type} page {page}")


def _renderable(report: PreflightReport) -> bool:
    """No preview of a file that could not be opened or was not checked."""
    return bool(report.page_count)


def _page_has_huge_image(path: Path, page: int, limits: PreflightLimits) -> bool:
    import pikepdf

    from shared.files.preflight.pdf_content import ContentWalker

    with pikepdf.open(path) as pdf:
        if not 1 <= page <= len(pdf.pages):
            return False
        summary = ContentWalker().page(pdf.pages[page - 1], page)
    return any(placement.pixels > limits.max_image_pixels for placement in summary.placements)


def _is_pdf(path: Path) -> bool:
    """A PDF header in the first KiB: PostScript-based Illustrator files are not PDFs."""
    with open(path, "rb") as handle:
        return b"%PDF-" in handle.read(1024)


def main() -> int:
    request = json.loads(sys.stdin.read())
    limits = PreflightLimits.from_dict(request.get("limits", {}))
    set_limits(limits)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        if request["job"] == "preview":
            preview(request, limits)
        else:
            preflight(request, limits)
    except MemoryError:
        emit(failure="memory_limit", detail="")
        return 1
    except Exception as exc:
        logger.exception("preflight of %s failed", request.get("path"))
        emit(failure="error", detail=f"{type(exc).__name__}: {exc}"[:500])
        return 1
    finally:
        emit(usage={"peak_rss_kib": _peak_rss_kib()})
    return 0


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
