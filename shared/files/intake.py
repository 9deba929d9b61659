"""From staging to ``Eingehend``: scan every received file and place only clean ones.

Nothing downstream may ever see a partial or unscanned file, so a file stays in
the staging area until clamd has said ``OK`` and then appears in the order
folder by a link-and-unlink on the same file system (atomic, never overwrites).
Infected files go to quarantine; files clamd cannot scan wait (clamd down) or
are held for staff (too large); none of them is handed on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from shared import audit
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
from shared.seams import pause_at

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
    if file.stored_name and file.state in (OrderFile.STATE_CLEAN, OrderFile.STATE_DELETED):
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


# Test seams (shared.seams) between the steps of placing a clean file (see _place).
STEP_PLACE_INTENT = "place_intent_recorded"
STEP_PLACE_LINKED = "place_linked"
STEP_PLACE_UNLINKED = "place_staging_removed"


def _place(settings: Settings, file: OrderFile, finish: Callable[[OrderFile], bool]) -> bool:
    """Put a staged file into its folder, crash-safe and idempotent; True if this call
    finished it (``finish`` records the new state in the transaction of step 4).

    1. Intent: a free name is chosen and recorded as ``stored_name`` (committed; the
       unique index keeps two files off one name).
    2. Link: the staging copy is linked to that name (never overwrites), folder fsynced.
    3. The staging copy goes, its folder fsynced.
    4. ``finish`` records the state, in one transaction with a check that nobody else
       finished the file meanwhile.

    Called again after a crash at any step, it goes on from where the disk and the
    database are: a file already at the recorded name counts as placed when it is the
    staging copy itself or has the recorded SHA-256; a name that another file took
    meanwhile is given up for a new one. One file ends up placed once, with no copy
    left in staging.
    """
    source = staging_path(settings, file)
    target_dir = folder_path(settings, file)
    target_dir.mkdir(parents=True, exist_ok=True)
    while True:
        if file.stored_name is None:
            _record_intent(file, target_dir)
            pause_at(STEP_PLACE_INTENT)
        target = target_dir / file.stored_name
        if _is_placed(file, source, target):
            break
        try:
            # link() fails if the name exists, unlike rename(): a file that appeared
            # meanwhile is never overwritten.
            os.link(source, target)
        except FileExistsError:
            if _is_placed(file, source, target):  # another process placed it just now
                break
            _give_up_name(file)
            continue
        except FileNotFoundError:
            # Neither the staging copy nor a file with its checksum at the name: the bytes
            # were changed or removed by hand. Nothing can be handed on; staff must look.
            log.error(
                "file %s: cannot be placed, its staging copy is gone and %s is another file",
                file.id,
                target,
            )
            return False
        _sync_directory(target_dir)
        pause_at(STEP_PLACE_LINKED)
        break
    if source.exists():
        source.unlink(missing_ok=True)
        _sync_directory(source.parent)
        pause_at(STEP_PLACE_UNLINKED)
    with write_transaction():
        current = OrderFile.get_by_id(file.id)
        if current.state != file.state or current.stored_name != file.stored_name:
            return False
        return finish(file)


def _record_intent(file: OrderFile, target_dir: Path) -> None:
    """Step 1: a name free on disk and among the folder's rows, recorded for ``file`` —
    unless another process recorded one first, which is then taken over."""
    with write_transaction():
        recorded = OrderFile.select(OrderFile.stored_name).where(
            (OrderFile.order == file.order_id)
            & (OrderFile.folder == file.folder)
            & OrderFile.stored_name.is_null(False)
        )
        taken = [row.stored_name for row in recorded]
        name = free_name(target_dir, stored_name_for(file.display_name), taken)
        updated = (
            OrderFile.update(stored_name=name)
            .where((OrderFile.id == file.id) & OrderFile.stored_name.is_null())
            .execute()
        )
        if not updated:
            name = OrderFile.get_by_id(file.id).stored_name
    file.stored_name = name


def _give_up_name(file: OrderFile) -> None:
    """The recorded name is taken by another file on disk: choose again."""
    with write_transaction():
        OrderFile.update(stored_name=None).where(
            (OrderFile.id == file.id) & (OrderFile.stored_name == file.stored_name)
        ).execute()
    file.stored_name = None


def _is_placed(file: OrderFile, source: Path, target: Path) -> bool:
    """Whether ``target`` already is this file: the staging copy linked there, or (the
    staging copy gone) a file with the recorded SHA-256."""
    if not target.exists():
        return False
    if source.exists():
        return os.path.samefile(source, target)
    return _sha256_of(target) == file.sha256


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def _quarantine(settings: Settings, file: OrderFile) -> None:
    settings.storage.quarantine_root.mkdir(parents=True, exist_ok=True)
    os.replace(staging_path(settings, file), quarantine_path(settings, file))


def scan_received(settings: Settings, scanner: Scanner, file_id: int) -> OrderFile:
    """Scan one received file and act on the verdict; safe to call again for the same file,
    also after a crash while it was being placed (it is then placed, not scanned again)."""
    file = OrderFile.get_by_id(file_id)
    if file.state not in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
        return file
    if file.stored_name is not None:
        # Scanned clean already: the intent to place it was recorded (see _place).
        return file if _place(settings, file, _finish_clean) else OrderFile.get_by_id(file_id)
    result = scanner.scan_file(staging_path(settings, file))
    if result.verdict is ScanVerdict.CLEAN:
        _count_attempt(file_id)
        file = OrderFile.get_by_id(file_id)
        open_states = (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING)
        if file.state in open_states and _place(settings, file, _finish_clean):
            return file  # updated in place
        return OrderFile.get_by_id(file_id)
    with write_transaction():
        file = OrderFile.get_by_id(file_id)
        if file.state not in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
            return file
        file.scan_attempts += 1
        if result.verdict is ScanVerdict.INFECTED:
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


def _count_attempt(file_id: int) -> None:
    with write_transaction():
        OrderFile.update(scan_attempts=OrderFile.scan_attempts + 1).where(
            OrderFile.id == file_id
        ).execute()


def _finish_clean(file: OrderFile) -> bool:
    """Step 4 of placing a clean file: recorded as clean, with its notification."""
    file.state = OrderFile.STATE_CLEAN
    file.scanned_at = utcnow()
    file.preflight_status = OrderFile.PREFLIGHT_PENDING  # shared.files.preflighting
    file.save(only=[OrderFile.state, OrderFile.scanned_at, OrderFile.preflight_status])
    _notify_placed(file)
    return True


def _notify_placed(file: OrderFile) -> None:
    """A clean file arrived: staff hear of uploads, customers of files placed in Final."""
    if file.folder == FOLDER_INCOMING:
        notify(UPLOAD_RECEIVED, file=file)
    elif file.folder == FOLDER_FINAL:
        notify(FILE_FINAL, file=file)


def files_to_scan(stale_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Files whose scan is due: waiting for clamd, left scanning by a stopped worker, or
    scanned clean but not yet placed (a worker died while placing them: at once)."""
    scanning = OrderFile.state == OrderFile.STATE_SCANNING
    stale = scanning & (OrderFile.received_at < utcnow() - stale_after)
    placing = scanning & OrderFile.stored_name.is_null(False)
    return [
        row.id
        for row in OrderFile.select(OrderFile.id)
        .where((OrderFile.state == OrderFile.STATE_WAITING) | stale | placing)
        .order_by(OrderFile.id)
    ]


def release_held(settings: Settings, file: OrderFile, staff: StaffUser) -> OrderFile:
    """Staff hand on a file clamd could not scan; their name and the time are recorded."""
    file = OrderFile.get_by_id(file.id)
    if file.state != OrderFile.STATE_TOO_LARGE:
        raise Conflict("only files too large to scan can be released")

    def finish(placed: OrderFile) -> bool:
        placed.state = OrderFile.STATE_CLEAN
        placed.released_by = staff
        placed.released_at = utcnow()
        placed.save(only=[OrderFile.state, OrderFile.released_by, OrderFile.released_at])
        FileEvent.create(file=placed, kind=EVENT_RELEASED, staff=staff, detail=placed.display_name)
        _notify_placed(placed)
        file_audit(audit.FILE_RELEASE, placed, "released unscanned (too large to scan)")
        return True

    if not _place(settings, file, finish):
        raise Conflict("the file was released or deleted meanwhile")
    log.info("staff %s released unscanned file %s", staff.username, file.id)
    return OrderFile.get_by_id(file.id)


def discard_held(settings: Settings, file: OrderFile, staff: StaffUser) -> OrderFile:
    """Staff delete a held or rejected file instead of handing it on."""
    with write_transaction():
        file = OrderFile.get_by_id(file.id)
        if file.state not in (OrderFile.STATE_TOO_LARGE, OrderFile.STATE_REJECTED):
            raise Conflict("only held or rejected files can be discarded here")
        path = file_path(settings, file)
        if path is not None:
            path.unlink(missing_ok=True)
        if file.stored_name is not None:
            # A release interrupted after its intent: the copy may sit in the folder too.
            (folder_path(settings, file) / file.stored_name).unlink(missing_ok=True)
        file.state = OrderFile.STATE_DELETED
        file.deleted_at = utcnow()
        file.save()
        FileEvent.create(file=file, kind=EVENT_DISCARDED, staff=staff, detail=file.display_name)
        file_audit(audit.FILE_DELETE, file, f"deleted by staff ({file.signature or 'held'})")
    return file


def file_audit(action: str, file: OrderFile, detail: str = "") -> None:
    """An audit log entry about ``file`` (its order, folder and name; its customer)."""
    order = file.order
    audit.record(
        action,
        f"order {order.project_no}: {file.folder}/{file.display_name}",
        detail,
        customer_no=order.customer.customer_no,
    )
