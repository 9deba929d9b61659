"""The preflight of a clean file, run by the worker right after the scan, and its previews.

Steps of ``preflight_file`` (the huey task ``preflight_file``; the minute sweep runs the
ones a stopped worker left):

1. The scan placed a clean file and marked it ``pending`` (``shared.files.intake``).
2. Claim it: ``preflight_started_at`` is set only where the file is still clean and
   pending and nobody else started it (or whoever did has been gone longer than the wall
   limit), so two workers never check the same file at once.
3. Read its type from its first bytes. A ZIP is listed here (names and sizes from its
   directory, nothing extracted; see ``shared.files.zips``); everything else goes to the
   sandboxed engine (``shared.files.preflight.run_preflight``), which also writes the
   first-page thumbnail into the file's preview directory.
4. Store status, report (JSON) and time on the file, unless it left ``clean`` meanwhile
   (then its previews are removed).

Whatever the file does, the outcome is a stored result: the engine reports a crash, a
hang or a limit as status "failed", and anything unexpected here is stored as "failed"
too and logged; nothing raises into the worker.

Statuses shown: ok, warnings, errors, failed (the check could not finish: prepress looks
at the file), and not_checked for what the engine does not check (EPS, PostScript-based
Illustrator files, ZIPs, types staff placed that no rule names). "not_checked" is not a
warning: the customer did nothing wrong and could not change it; a neutral "not checked
automatically" is the honest label, for customers and staff alike.

Previews live under ``[storage] preview_root``, one directory per file (named by its
upload key, which is never reused), outside the order folders the agent reads. Who may
see them is ``shared.files.access.may_preview``.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.files.filetypes import HEAD_BYTES, detect_type
from shared.files.findings import ERROR, INFO, WARNING, Finding
from shared.files.folders import FOLDER_INCOMING
from shared.files.intake import file_path
from shared.files.messages import describe
from shared.files.preflight import (
    Expectations,
    PreflightLimits,
    PreflightReport,
    PreflightSettings,
    render_page_preview,
    run_preflight,
)
from shared.files.preflight.preview_files import THUMBNAIL_NAME
from shared.files.zips import ZipListing, list_zip
from shared.models import Order, OrderFile

log = logging.getLogger(__name__)

# Types the engine renders: a thumbnail for each, page previews (PDF: every page).
PREVIEW_TYPES = ("pdf", "ai", "tiff", "jpeg", "png")
# A ZIP's listing is kept up to this many entries (the counts cover all of them).
LISTED_ENTRIES = 500
# Previews rendered at once by one portal process: each is a process of up to
# ``[preflight] memory_limit``; more requests wait for a free place.
_PREVIEW_SLOTS = threading.BoundedSemaphore(2)
_PREVIEW_WAIT_SECONDS = 30
# How long a pending file's own task has before the minute sweep takes the file.
TASK_GRACE = timedelta(minutes=2)


def engine_settings(settings: Settings) -> PreflightSettings:
    """``[preflight]`` as the engine's rules."""
    section = settings.preflight
    return PreflightSettings(
        min_bleed_mm=section.min_bleed_mm,
        min_image_ppi=section.min_image_ppi,
        colour_mode=section.colour_mode,
        require_pdfx=section.require_pdfx,
        thumbnail_px=section.thumbnail_px,
        preview_px=section.preview_px,
    )


def engine_limits(settings: Settings) -> PreflightLimits:
    """``[preflight]`` as the sandbox's limits."""
    section = settings.preflight
    return PreflightLimits(
        cpu_seconds=section.cpu_seconds,
        wall_seconds=section.wall_seconds,
        memory_bytes=section.memory_limit,
        max_pages=section.max_pages,
        max_image_pixels=section.max_image_pixels,
        max_preview_pixels=section.max_preview_pixels,
    )


def expectations_of(settings: Settings, order: Order) -> Expectations:
    """What ``order`` says about its print data (trim size, page count)."""
    return Expectations(
        trim_width_mm=order.trim_width_mm,
        trim_height_mm=order.trim_height_mm,
        trim_tolerance_mm=settings.preflight.trim_tolerance_mm,
        page_count=order.page_count,
    )


def preview_dir(settings: Settings, file: OrderFile) -> Path:
    """The directory of ``file``'s thumbnail and page previews."""
    name = file.upload_key or f"file-{file.id}"
    return settings.storage.preview_root / name


def remove_previews(settings: Settings, file: OrderFile) -> None:
    """Delete ``file``'s previews (its bytes are gone, or it is no longer clean)."""
    shutil.rmtree(preview_dir(settings, file), ignore_errors=True)


# --- the stored result ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPreflight:
    """A file's stored preflight: the engine's report, and a ZIP's listing."""

    status: str
    report: PreflightReport
    zip_entries: tuple[tuple[str, int], ...] = ()
    zip_total_entries: int = 0
    zip_total_size: int = 0

    def visible_findings(self, staff: bool) -> list[Finding]:
        """What the viewer reads: staff every finding; customers warnings and errors, and
        notes only where they are the whole story (not checked, spot colours)."""
        if staff:
            return list(self.report.findings)
        return [
            finding
            for finding in self.report.findings
            if finding.severity in (WARNING, ERROR) or finding.code in _CUSTOMER_NOTES
        ]

    @property
    def pages(self) -> int:
        """How many pages can be previewed: every page of a PDF, the first image otherwise."""
        count = self.report.page_count or 0
        if self.report.file_type in ("tiff", "jpeg", "png"):
            return min(count, 1)
        return count

    @property
    def has_thumbnail(self) -> bool:
        return bool(self.report.thumbnail)


_CUSTOMER_NOTES = ("not_checked", "spot_colour", "preview_skipped")


def stored_preflight(file: OrderFile) -> StoredPreflight | None:
    """The preflight stored on ``file``, or None while there is none (or it is unreadable)."""
    if not file.preflight_report:
        return None
    try:
        data = json.loads(file.preflight_report)
        report = PreflightReport.from_dict(data["report"])
        listing = data.get("zip") or {}
        return StoredPreflight(
            file.preflight_status,
            report,
            tuple((name, size) for name, size in listing.get("entries", [])),
            listing.get("total_entries", 0),
            listing.get("total_size", 0),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("file %s: stored preflight cannot be read", file.id)
        return None


def described(findings: list[Finding], language: str) -> list[tuple[str, str]]:
    """(severity, sentence) per finding, in ``language``."""
    return [(finding.severity, describe(finding, language)) for finding in findings]


def _status(report: PreflightReport) -> str:
    """The report's status, except "not_checked" where the engine left the file alone."""
    if report.status == OrderFile.PREFLIGHT_OK and (
        report.finding("not_checked") is not None or not report.page_count
    ):
        return OrderFile.PREFLIGHT_NOT_CHECKED
    return report.status


def _stored_json(report: PreflightReport, listing: ZipListing | None) -> str:
    data: dict[str, Any] = {"report": report.to_dict()}
    if listing is not None:
        entries = [entry for entry in listing.entries if not entry.is_dir]
        data["zip"] = {
            "entries": [[entry.name, entry.size] for entry in entries[:LISTED_ENTRIES]],
            "total_entries": len(entries),
            "total_size": listing.total_size,
            "indesign_package": listing.indesign_package,
        }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --- running it ---------------------------------------------------------------------------


def _stale_claim(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(seconds=settings.preflight.wall_seconds + 60)


def _claim(settings: Settings, file_id: int) -> bool:
    now = utcnow()
    with write_transaction():
        claimed = (
            OrderFile.update(preflight_started_at=now)
            .where(
                (OrderFile.id == file_id)
                & (OrderFile.state == OrderFile.STATE_CLEAN)
                & (OrderFile.preflight_status == OrderFile.PREFLIGHT_PENDING)
                & (
                    OrderFile.preflight_started_at.is_null()
                    | (OrderFile.preflight_started_at < _stale_claim(settings, now))
                )
            )
            .execute()
        )
    return bool(claimed)


def files_to_preflight(settings: Settings, now: datetime | None = None) -> list[int]:
    """Pending files whose task was lost: scanned a while ago and never started, or started
    by a worker that stopped (the minute sweep runs them)."""
    now = now or utcnow()
    never_started = OrderFile.preflight_started_at.is_null() & (
        OrderFile.scanned_at < now - TASK_GRACE
    )
    waiting = never_started | (OrderFile.preflight_started_at < _stale_claim(settings, now))
    query = (
        OrderFile.select(OrderFile.id)
        .where(
            (OrderFile.preflight_status == OrderFile.PREFLIGHT_PENDING)
            & (OrderFile.state == OrderFile.STATE_CLEAN)
            & waiting
        )
        .order_by(OrderFile.id)
    )
    return [row.id for row in query]


def _check(settings: Settings, file: OrderFile, path: Path) -> tuple[str, PreflightReport, Any]:
    """(file type, report, ZIP listing or None) for the placed file at ``path``."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    file_type = detect_type(head, file.display_name) or "unknown"
    if file_type == "zip":
        from shared.files.acceptance import zip_limits

        listing = list_zip(path, zip_limits(settings))
        findings = [Finding("not_checked", INFO, {"type": "zip"})]
        if listing.refusal is not None:
            findings.insert(0, listing.refusal)
        return file_type, PreflightReport.of("zip", findings), listing
    if file_type == "unknown":
        return file_type, PreflightReport.of(file_type, []), None
    report = run_preflight(
        path,
        file_type,
        expectations_of(settings, file.order),
        engine_settings(settings),
        engine_limits(settings),
        preview_dir(settings, file) if file_type in PREVIEW_TYPES else None,
    )
    return file_type, report, None


def preflight_file(settings: Settings, file_id: int) -> OrderFile | None:
    """Check one clean, pending file and store the result (steps 2–4); never raises."""
    if not _claim(settings, file_id):
        return OrderFile.get_or_none(OrderFile.id == file_id)
    file = OrderFile.get_or_none(OrderFile.id == file_id)
    if file is None:
        return None
    listing = None
    try:
        path = file_path(settings, file)
        file_type, report, listing = _check(settings, file, path)
    except Exception as exc:
        log.exception("preflight of file %s failed", file_id)
        file_type = file.file_type or "unknown"
        report = PreflightReport.failed(file_type, "error", f"{type(exc).__name__}: {exc}")
    status = _status(report)
    with write_transaction():
        updated = (
            OrderFile.update(
                file_type=file_type,
                preflight_status=status,
                preflight_report=_stored_json(report, listing),
                preflight_at=utcnow(),
            )
            .where((OrderFile.id == file_id) & (OrderFile.state == OrderFile.STATE_CLEAN))
            .execute()
        )
    if not updated:
        remove_previews(settings, file)
    log.info(
        "order=%s file=%s action=preflight status=%s findings=%s",
        file.order.project_no,
        file.display_name,
        status,
        ",".join(report.codes()) or "-",
    )
    return OrderFile.get_or_none(OrderFile.id == file_id)


def preflight_again(order: Order) -> list[int]:
    """Mark ``order``'s checked files in Eingehend for a new preflight (its expectations
    changed); returns their ids for the worker."""
    condition = (
        (OrderFile.order == order)
        & (OrderFile.folder == FOLDER_INCOMING)
        & (OrderFile.state == OrderFile.STATE_CLEAN)
        & (OrderFile.preflight_status != OrderFile.PREFLIGHT_NONE)
    )
    ids = [row.id for row in OrderFile.select(OrderFile.id).where(condition)]
    if ids:
        OrderFile.update(
            preflight_status=OrderFile.PREFLIGHT_PENDING, preflight_started_at=None
        ).where(OrderFile.id.in_(ids)).execute()
    return ids


# --- previews -------------------------------------------------------------------------------


def thumbnail_path(settings: Settings, file: OrderFile) -> Path | None:
    """The stored first-page thumbnail of ``file``, if the preflight made one."""
    stored = stored_preflight(file)
    if stored is None or not stored.has_thumbnail:
        return None
    path = preview_dir(settings, file) / THUMBNAIL_NAME
    return path if path.is_file() else None


def page_preview(settings: Settings, file: OrderFile, page: int) -> Path | None:
    """The larger preview of page ``page`` (from 1), rendered in the sandbox the first time
    it is asked for; None when the file has no such page or it cannot be rendered."""
    stored = stored_preflight(file)
    if stored is None or not 1 <= page <= stored.pages:
        return None
    if stored.report.file_type not in PREVIEW_TYPES:
        return None
    if not _PREVIEW_SLOTS.acquire(timeout=_PREVIEW_WAIT_SECONDS):
        log.warning("preview of file %s page %d: every preview slot is busy", file.id, page)
        return None
    try:
        return render_page_preview(
            file_path(settings, file),
            stored.report.file_type,
            page,
            preview_dir(settings, file),
            engine_limits(settings),
            settings.preflight.preview_px,
        )
    finally:
        _PREVIEW_SLOTS.release()


# --- for the workflow: the agent's XML and the API ---------------------------------------


def preflight_record(file: OrderFile, language: str = "de") -> dict[str, Any] | None:
    """The file's preflight as JSON for the workflow (and the job notification XML):
    status, type, pages, page sizes, findings with their sentence in ``language``.
    None while the file has no preflight result."""
    stored = stored_preflight(file)
    if stored is None or file.preflight_status in (
        OrderFile.PREFLIGHT_NONE,
        OrderFile.PREFLIGHT_PENDING,
    ):
        return None
    report = stored.report
    record: dict[str, Any] = {
        "status": stored.status,
        "file_type": report.file_type,
        "page_count": report.page_count,
        "checked_at": _timestamp(file.preflight_at),
        "language": language,
        "page_sizes": [group.to_dict() for group in report.page_sizes],
        "findings": [
            finding.to_dict() | {"message": describe(finding, language)}
            for finding in report.findings
        ],
    }
    if stored.zip_total_entries or stored.zip_entries:
        record["zip"] = {
            "total_entries": stored.zip_total_entries,
            "total_size": stored.zip_total_size,
            "entries": [{"name": name, "size": size} for name, size in stored.zip_entries],
        }
    return record


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}Z"
