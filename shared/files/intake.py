"""From staging to ``Eingehend``: scan every received file and place only clean ones.

Nothing downstream may ever see a partial or unscanned file, so a file stays in
the staging area until clamd has said ``OK`` and then appears in the order
folder by a link-and-unlink on the same file system (atomic, never overwrites).
Infected files go to quarantine; files clamd cannot scan wait (clamd down) or
are held for staff (too large); none of them is handed on.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict
from shared.events import FILE_FINAL, FILE_REJECTED, UPLOAD_RECEIVED, notify
from shared.files.folders import FOLDER_FINAL, FOLDER_INCOMING, order_dir
from shared.files.names import free_name, stored_name_for
from shared.files.receiving import staging_path
from shared.files.scanning import Scanner, ScanVerdict, clamd_limits
from shared.models import FileEvent, OrderFile, StaffUser

log = logging.getLogger(__name__)

EVENT_REJECTED = "rejected"
EVENT_TOO_LARGE = "too_large"
EVENT_RELEASED = "released"
EVENT_DISCARDED = "discarded"
EVENT_SCAN_WAITING = "scan_waiting"


def make_scanner(settings: Settings) -> Scanner:
    """A scanner for the configured clamd with the limits from its clamd.conf."""
    clamav = settings.clamav
    return Scanner(clamav.address, clamav.timeout_seconds, clamd_limits(clamav), clamav.scan_mode)


def folder_path(settings: Settings, file: OrderFile) -> Path:
    """The order folder ``file`` belongs in."""
    order = file.order
    return order_dir(settings.storage.order_root, order.customer.customer_no, order.project_no) / (
        file.folder
    )


def file_path(settings: Settings, file: OrderFile) -> Path | None:
    """Where the file's bytes are now: its folder once placed, else staging."""
    if file.stored_name:
        return folder_path(settings, file) / file.stored_name
    if file.state == OrderFile.STATE_REJECTED:
        return quarantine_path(settings, file)
    return staging_path(settings, file)


def quarantine_path(settings: Settings, file: OrderFile) -> Path:
    return settings.storage.quarantine_root / f"{file.upload_key}.quarantined"


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _place(settings: Settings, file: OrderFile) -> str:
    """Move the staged file into its folder under a free safe name; returns that name."""
    source = staging_path(settings, file)
    target_dir = folder_path(settings, file)
    target_dir.mkdir(parents=True, exist_ok=True)
    wanted = stored_name_for(file.display_name)
    while True:
        name = free_name(target_dir, wanted)
        try:
            # link() fails if the name exists, unlike rename(): a file that appeared
            # meanwhile is never overwritten.
            os.link(source, target_dir / name)
        except FileExistsError:
            continue
        os.unlink(source)
        _sync_directory(target_dir)
        return name


def _quarantine(settings: Settings, file: OrderFile) -> None:
    settings.storage.quarantine_root.mkdir(parents=True, exist_ok=True)
    os.replace(staging_path(settings, file), quarantine_path(settings, file))


def scan_received(settings: Settings, scanner: Scanner, file_id: int) -> OrderFile:
    """Scan one received file and act on the verdict; safe to call again for the same file."""
    file = OrderFile.get_by_id(file_id)
    if file.state not in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
        return file
    result = scanner.scan_file(staging_path(settings, file))
    with write_transaction():
        file = OrderFile.get_by_id(file_id)
        if file.state not in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
            return file
        file.scan_attempts += 1
        if result.verdict is ScanVerdict.CLEAN:
            file.stored_name = _place(settings, file)
            file.state = OrderFile.STATE_CLEAN
            file.scanned_at = utcnow()
            file.preflight_status = OrderFile.PREFLIGHT_PENDING  # shared.files.preflighting
            _notify_placed(file)
        elif result.verdict is ScanVerdict.INFECTED:
            _quarantine(settings, file)
            file.state = OrderFile.STATE_REJECTED
            file.signature = result.signature
            file.scanned_at = utcnow()
            FileEvent.create(file=file, kind=EVENT_REJECTED, detail=result.signature)
            notify(FILE_REJECTED, file=file, detail=result.signature)
            log.warning(
                "file %s of order %s rejected: %s", file.id, file.order_id, result.signature
            )
        elif result.verdict is ScanVerdict.TOO_LARGE:
            file.state = OrderFile.STATE_TOO_LARGE
            file.scanned_at = utcnow()
            FileEvent.create(file=file, kind=EVENT_TOO_LARGE, detail=result.detail)
        else:
            if file.state != OrderFile.STATE_WAITING:
                FileEvent.create(file=file, kind=EVENT_SCAN_WAITING, detail=result.detail)
            file.state = OrderFile.STATE_WAITING
            log.warning("virus scan of file %s must wait: %s", file.id, result.detail)
        file.save()
    return file


def _notify_placed(file: OrderFile) -> None:
    """A clean file arrived: staff hear of uploads, customers of files placed in Final."""
    if file.folder == FOLDER_INCOMING:
        notify(UPLOAD_RECEIVED, file=file)
    elif file.folder == FOLDER_FINAL:
        notify(FILE_FINAL, file=file)


def files_to_scan(stale_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Files whose scan is due: waiting for clamd, or left scanning by a stopped worker."""
    stale = (OrderFile.state == OrderFile.STATE_SCANNING) & (
        OrderFile.received_at < utcnow() - stale_after
    )
    return [
        row.id
        for row in OrderFile.select(OrderFile.id)
        .where((OrderFile.state == OrderFile.STATE_WAITING) | stale)
        .order_by(OrderFile.id)
    ]


def release_held(settings: Settings, file: OrderFile, staff: StaffUser) -> OrderFile:
    """Staff hand on a file clamd could not scan; their name and the time are recorded."""
    with write_transaction():
        file = OrderFile.get_by_id(file.id)
        if file.state != OrderFile.STATE_TOO_LARGE:
            raise Conflict("only files too large to scan can be released")
        file.stored_name = _place(settings, file)
        file.state = OrderFile.STATE_CLEAN
        file.released_by = staff
        file.released_at = utcnow()
        file.save()
        FileEvent.create(file=file, kind=EVENT_RELEASED, staff=staff, detail=file.display_name)
        _notify_placed(file)
    log.info("staff %s released unscanned file %s", staff.username, file.id)
    return file


def discard_held(settings: Settings, file: OrderFile, staff: StaffUser) -> OrderFile:
    """Staff delete a held or rejected file instead of handing it on."""
    with write_transaction():
        file = OrderFile.get_by_id(file.id)
        if file.state not in (OrderFile.STATE_TOO_LARGE, OrderFile.STATE_REJECTED):
            raise Conflict("only held or rejected files can be discarded here")
        path = file_path(settings, file)
        if path is not None:
            path.unlink(missing_ok=True)
        file.state = OrderFile.STATE_DELETED
        file.deleted_at = utcnow()
        file.save()
        FileEvent.create(file=file, kind=EVENT_DISCARDED, staff=staff, detail=file.display_name)
    return file
