"""Staff files back to customers: from an order's outbound folder into the portal, then ``sent``.

A dropped file is claimed (``OutboundTransfer``, one open transfer per source
path), copied into the portal's staging area as a new file of ``In Bearbeitung``
or ``Final`` (``shared.files.receiving.stage_local_file``) and handed to the portal's
worker, which scans it and places it like any upload — nothing reaches the
customer unscanned. Then the dropped file moves into ``sent`` beside it, so staff
see what went out. Each step is recorded, so a restart neither loses nor doubles
a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from peewee import IntegrityError

from hotfolder_agent.claims import holder_is_gone
from hotfolder_agent.context import AgentContext
from hotfolder_agent.fsutil import PathProblem, move_into, reason, sync_directory
from hotfolder_agent.layout import SENT_FOLDER, OutboundPath
from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.errors import ServiceError
from shared.files.receiving import EVENT_FROM_HOTFOLDER, abort_upload, stage_local_file
from shared.models import Customer, FileEvent, Order, OrderFile, OutboundTransfer

log = logging.getLogger(__name__)

SENT = "sent"
CLAIMED_ELSEWHERE = "claimed_elsewhere"


class SendFailed(PathProblem):
    """The dropped file cannot go to the portal now; ``path`` and ``reason`` say why."""


@dataclass(frozen=True)
class SendOutcome:
    status: str
    file: OrderFile | None = None
    sent_path: Path | None = None


def find_order(dropped: OutboundPath) -> Order | None:
    """The order a drop folder belongs to (its customer must match when the path names one)."""
    order = (
        Order.select(Order, Customer)
        .join(Customer)
        .where(Order.project_no == dropped.project_no)
        .first()
    )
    if order is None or (
        dropped.customer_no is not None and order.customer.customer_no != dropped.customer_no
    ):
        return None
    return order


def _claim(ctx: AgentContext, dropped: OutboundPath, order: Order) -> OutboundTransfer | None:
    source = str(dropped.path)
    with write_transaction():
        row = OutboundTransfer.get_or_none(OutboundTransfer.active_source == source)
        if row is None:
            try:
                with database.atomic():
                    return OutboundTransfer.create(
                        active_source=source,
                        source_path=source,
                        order=order,
                        folder=dropped.folder,
                        size=dropped.path.stat().st_size,
                        claimed_by=ctx.agent_id,
                    )
            except IntegrityError:
                return None
        if row.claimed_by == ctx.agent_id:
            return row
        if not holder_is_gone(row.claimed_by, ctx.agent_id, ctx.stale_after):
            return None
        taken = (
            OutboundTransfer.update(claimed_by=ctx.agent_id)
            .where(
                (OutboundTransfer.id == row.id) & (OutboundTransfer.claimed_by == row.claimed_by)
            )
            .execute()
        )
        return OutboundTransfer.get_by_id(row.id) if taken else None


def _staged_before(row: OutboundTransfer) -> OrderFile | None:
    """The portal file an interrupted run staged from this source, if it got that far."""
    return (
        OrderFile.select()
        .join(FileEvent)
        .where(
            (FileEvent.kind == EVENT_FROM_HOTFOLDER)
            & (FileEvent.detail == row.source_path)
            & (OrderFile.order == row.order_id)
            & (OrderFile.created_at >= row.created_at)
            & (OrderFile.state != OrderFile.STATE_DELETED)
        )
        .order_by(OrderFile.id.desc())
        .first()
    )


def _stage(ctx: AgentContext, row: OutboundTransfer, dropped: OutboundPath) -> OrderFile:
    file = _staged_before(row)
    if file is not None and file.state == OrderFile.STATE_UPLOADING:
        abort_upload(ctx.settings, file)  # killed mid-copy: start the copy again
        file = None
    if file is None:
        try:
            file = stage_local_file(ctx.settings, row.order, dropped.path, dropped.folder)
        except OSError as exc:
            raise SendFailed(dropped.path, reason(exc)) from None
        except ServiceError as exc:
            raise SendFailed(dropped.path, str(exc)) from None
    with write_transaction():
        OutboundTransfer.update(file=file, state=OutboundTransfer.STATE_STAGED).where(
            OutboundTransfer.id == row.id
        ).execute()
    ctx.tasks.scan_soon(file.id)
    return file


def _linked_copy_in(directory: Path, source: Path) -> Path | None:
    """After a kill between link and unlink: the name ``source`` already has in ``directory``."""
    try:
        inode = source.stat().st_ino
        entries = [entry for entry in os.scandir(directory) if entry.inode() == inode]
    except FileNotFoundError:
        return None
    for entry in entries:
        if os.path.samefile(entry.path, source):
            source.unlink()
            sync_directory(source.parent)
            return Path(entry.path)
    return None


def send_outbound(ctx: AgentContext, dropped: OutboundPath) -> SendOutcome:
    """Hand one dropped file to the portal and move it into ``sent``."""
    order = find_order(dropped)
    if order is None:
        raise SendFailed(dropped.path, f"no order {dropped.project_no} for this folder")
    try:
        row = _claim(ctx, dropped, order)
    except FileNotFoundError:
        return SendOutcome(CLAIMED_ELSEWHERE)  # moved away meanwhile
    if row is None:
        return SendOutcome(CLAIMED_ELSEWHERE)
    file = row.file if row.file_id else _stage(ctx, row, dropped)
    sent_dir = dropped.path.parent / SENT_FOLDER
    try:
        sent_path = _linked_copy_in(sent_dir, dropped.path) or move_into(dropped.path, sent_dir)
    except OSError as exc:
        raise SendFailed(
            dropped.path, f"in the portal, but not moved to sent: {reason(exc)}"
        ) from None
    with write_transaction():
        OutboundTransfer.update(
            state=OutboundTransfer.STATE_SENT,
            active_source=None,
            sent_path=str(sent_path),
            done_at=utcnow(),
            error="",
        ).where(OutboundTransfer.id == row.id).execute()
    log.info(
        "order=%s file=%s action=sent_to_portal folder=%s portal_file=%s",
        order.project_no,
        dropped.name,
        dropped.folder,
        file.id,
    )
    return SendOutcome(SENT, file, sent_path)


def finish_interrupted(ctx: AgentContext) -> int:
    """Close transfers whose dropped file is gone already (killed after the move to ``sent``)."""
    finished = 0
    for row in OutboundTransfer.select().where(OutboundTransfer.active_source.is_null(False)):
        if Path(row.source_path).exists():
            continue
        if row.claimed_by != ctx.agent_id and not holder_is_gone(
            row.claimed_by, ctx.agent_id, ctx.stale_after
        ):
            continue
        with write_transaction():
            OutboundTransfer.update(
                state=OutboundTransfer.STATE_SENT if row.file_id else row.state,
                active_source=None,
                done_at=utcnow(),
                error="" if row.file_id else "the dropped file disappeared before it was sent",
            ).where(OutboundTransfer.id == row.id).execute()
        finished += 1
    return finished
