"""Deliver one clean upload into its order's hotfolder, exactly once, surviving a crash anywhere.

The steps, each safe to repeat after a kill:

1. claim: a ``Delivery`` row (unique per file) says *intent* and which agent holds it;
2. copy to a hidden temporary name in the target folder, hashing on the way, fsync;
3. verify size and SHA-256 against the upload record;
4. record the chosen name, then link it into place (never overwriting: a taken name
   gets a numbered suffix), unlink the temporary name, fsync the folder;
5. record *done* with time and path. The XML notification comes later (``notification``).

A restart finds the intent row and looks at the temporary name and the recorded
target to tell which step was last completed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from peewee import IntegrityError

from hotfolder_agent.claims import holder_is_gone
from hotfolder_agent.context import AgentContext
from hotfolder_agent.fsutil import (
    CHUNK_BYTES,
    place_without_overwrite,
    reason,
    sha256_of,
    sync_directory,
)
from hotfolder_agent.layout import TEMP_PREFIX, IncomingPath
from hotfolder_agent.seams import pause_at
from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.filenames import free_name
from shared.intake import folder_path
from shared.models import Customer, Delivery, Order, OrderFile
from shared.notifications import FILES_DELIVERED, notify
from shared.storage import FOLDER_INCOMING

log = logging.getLogger(__name__)

STEP_COPY_STARTED = "copy_started"
STEP_TEMP_COMPLETE = "temp_complete"
STEP_LINKED = "linked"
STEP_BEFORE_RECORD = "before_record"

DELIVERED = "delivered"
ALREADY_DELIVERED = "already_delivered"
CLAIMED_ELSEWHERE = "claimed_elsewhere"


class DeliveryFailed(Exception):
    """The file cannot be delivered now; ``path`` and ``reason`` say what to fix."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class SourceUnreadable(DeliveryFailed):
    """The file in Eingehend cannot be read."""


class HotfolderUnwritable(DeliveryFailed):
    """The hotfolder cannot be written (permissions, full disk, not a directory …)."""


class ContentMismatch(DeliveryFailed):
    """The bytes read differ from the size or SHA-256 recorded at upload."""


class ClaimLost(Exception):
    """Another agent took the delivery over (this one was thought dead)."""


@dataclass(frozen=True)
class Outcome:
    status: str
    path: Path | None = None


def find_upload(incoming: IncomingPath) -> OrderFile | None:
    """The upload record of a file in Eingehend, by (order, folder, stored name)."""
    return (
        OrderFile.select(OrderFile, Order, Customer)
        .join(Order)
        .join(Customer)
        .where(
            (Order.project_no == incoming.project_no)
            & (Customer.customer_no == incoming.customer_no)
            & (OrderFile.folder == FOLDER_INCOMING)
            & (OrderFile.stored_name == incoming.name)
        )
        .first()
    )


def is_deliverable(file: OrderFile) -> bool:
    """Only clean files placed in Eingehend are ever handed on (the portal's contract)."""
    return (
        file.state == OrderFile.STATE_CLEAN
        and file.folder == FOLDER_INCOMING
        and bool(file.stored_name)
        and bool(file.sha256)
    )


def claim(ctx: AgentContext, file: OrderFile) -> Delivery | None:
    """This agent's delivery row for ``file`` (new, its own, taken over, or done); None if busy."""
    with write_transaction():
        row = Delivery.get_or_none(Delivery.file == file.id)
        if row is None:
            try:
                with database.atomic():  # a savepoint: PostgreSQL aborts the rest otherwise
                    return Delivery.create(file=file, claimed_by=ctx.agent_id, attempts=1)
            except IntegrityError:
                return None
        if row.state == Delivery.STATE_DONE or row.claimed_by == ctx.agent_id:
            return row
        if not holder_is_gone(row.claimed_by, ctx.agent_id, ctx.stale_after):
            return None
        taken = (
            Delivery.update(claimed_by=ctx.agent_id, attempts=Delivery.attempts + 1)
            .where(
                (Delivery.id == row.id)
                & (Delivery.claimed_by == row.claimed_by)
                & (Delivery.state == Delivery.STATE_INTENT)
            )
            .execute()
        )
        if not taken:
            return None
        log.info(
            "order=%s file=%s action=takeover from=%s",
            file.order.project_no,
            file.stored_name,
            row.claimed_by,
        )
        return Delivery.get_by_id(row.id)


def deliver(ctx: AgentContext, file: OrderFile) -> Outcome:
    """Copy ``file`` into its order's hotfolder unless that has happened already."""
    row = claim(ctx, file)
    if row is None:
        return Outcome(CLAIMED_ELSEWHERE)
    if row.state == Delivery.STATE_DONE:
        return Outcome(ALREADY_DELIVERED, Path(row.hotfolder_path))
    order = file.order
    source = folder_path(ctx.settings, file) / file.stored_name
    target_dir = ctx.layout.hotfolder_dir(order.customer.customer_no, order.project_no)
    temp = target_dir / f"{TEMP_PREFIX}{file.id}.part"
    placed = _already_placed(row, temp, file)
    if placed is None:
        _make_directory(target_dir)
        if not _temp_is_complete(temp, file):
            _copy_verified(source, temp, file)
        pause_at(STEP_TEMP_COMPLETE)
        placed = _link_into_place(ctx, row, temp, target_dir, file)
    pause_at(STEP_BEFORE_RECORD)
    _record_done(ctx, row, file, placed)
    return Outcome(DELIVERED, placed)


def _already_placed(row: Delivery, temp: Path, file: OrderFile) -> Path | None:
    """After a crash: the recorded target, if the file is already there under that name."""
    if not row.hotfolder_path:
        return None
    planned = Path(row.hotfolder_path)
    try:
        planned_stat = planned.stat()
    except OSError:
        return None
    try:
        if os.path.samestat(temp.stat(), planned_stat):
            # Killed between link and unlink: the temporary name is the only thing left.
            temp.unlink()
            sync_directory(planned.parent)
            return planned
        return None  # the temporary copy is still ours to place: the name went to another file
    except FileNotFoundError:
        pass
    if planned_stat.st_size == file.size and sha256_of(planned) == file.sha256:
        return planned
    return None


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HotfolderUnwritable(directory, reason(exc)) from None


def _temp_is_complete(temp: Path, file: OrderFile) -> bool:
    """True if a temporary copy from before a crash is whole and right (it is re-read)."""
    try:
        if temp.stat().st_size != file.size:
            return False
        return sha256_of(temp) == file.sha256
    except OSError:
        return False


def _copy_verified(source: Path, temp: Path, file: OrderFile) -> None:
    """Copy ``source`` to ``temp`` with fsync; the bytes written must match the record."""
    digest = hashlib.sha256()
    try:
        reader = source.open("rb")
    except OSError as exc:
        raise SourceUnreadable(source, reason(exc)) from None
    try:
        with reader:
            try:
                writer = temp.open("wb")
            except OSError as exc:
                raise HotfolderUnwritable(temp.parent, reason(exc)) from None
            with writer:
                written = 0
                while True:
                    try:
                        piece = reader.read(CHUNK_BYTES)
                    except OSError as exc:
                        raise SourceUnreadable(source, reason(exc)) from None
                    if not piece:
                        break
                    digest.update(piece)
                    try:
                        writer.write(piece)
                        if written == 0:
                            writer.flush()
                    except OSError as exc:
                        raise HotfolderUnwritable(temp.parent, reason(exc)) from None
                    if written == 0:
                        pause_at(STEP_COPY_STARTED)
                    written += len(piece)
                try:
                    writer.flush()
                    os.fsync(writer.fileno())
                    size = os.fstat(writer.fileno()).st_size
                except OSError as exc:
                    raise HotfolderUnwritable(temp.parent, reason(exc)) from None
        if size != file.size or digest.hexdigest() != file.sha256:
            raise ContentMismatch(
                source,
                f"{size} bytes with SHA-256 {digest.hexdigest()[:12]}… differ from the upload "
                f"record ({file.size} bytes, {file.sha256[:12]}…)",
            )
    except BaseException:
        # After an error no half-written or wrong copy stays in the hotfolder.
        temp.unlink(missing_ok=True)
        raise


def _record_plan(ctx: AgentContext, row: Delivery, target: Path) -> None:
    """Write down the target name before linking, so a restart knows where to look."""
    with write_transaction():
        kept = (
            Delivery.update(hotfolder_path=str(target))
            .where(
                (Delivery.id == row.id)
                & (Delivery.claimed_by == ctx.agent_id)
                & (Delivery.state == Delivery.STATE_INTENT)
            )
            .execute()
        )
    if not kept:
        raise ClaimLost(str(target))


def _link_into_place(
    ctx: AgentContext, row: Delivery, temp: Path, target_dir: Path, file: OrderFile
) -> Path:
    """Give the verified copy its name in the hotfolder; a taken name gets ``(2)``, ``(3)``…"""
    while True:
        target = target_dir / free_name(target_dir, file.stored_name)
        _record_plan(ctx, row, target)
        try:
            place_without_overwrite(temp, target, after_link=lambda: pause_at(STEP_LINKED))
        except FileExistsError:
            continue
        except OSError as exc:
            raise HotfolderUnwritable(target, reason(exc)) from None
        try:
            sync_directory(target_dir)
        except OSError as exc:
            raise HotfolderUnwritable(target_dir, reason(exc)) from None
        return target


def _record_done(ctx: AgentContext, row: Delivery, file: OrderFile, placed: Path) -> None:
    now = utcnow()
    with write_transaction():
        recorded = (
            Delivery.update(
                state=Delivery.STATE_DONE, done_at=now, hotfolder_path=str(placed), error=""
            )
            .where((Delivery.id == row.id) & (Delivery.state == Delivery.STATE_INTENT))
            .execute()
        )
        OrderFile.update(delivered_at=now).where(OrderFile.id == file.id).execute()
        if recorded:
            notify(FILES_DELIVERED, file=file, detail=str(placed))
    if not recorded:
        log.warning(
            "order=%s file=%s action=record_done already recorded by another agent",
            file.order.project_no,
            file.stored_name,
        )


def note_failure(row_file: OrderFile, failure: DeliveryFailed) -> None:
    """Keep the latest problem on the delivery row (shown to staff with the file)."""
    with write_transaction():
        Delivery.update(error=f"{failure.path}: {failure.reason}").where(
            (Delivery.file == row_file.id) & (Delivery.state == Delivery.STATE_INTENT)
        ).execute()
