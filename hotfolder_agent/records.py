"""The database side of deliveries: upload records, claims, planned names, done.

Each function takes a whole batch and writes it in one transaction, so a batch
costs a handful of transactions instead of several per file. Every row still goes
through the states it goes through alone: intent (claimed by one agent), planned
target name, done (with its ``files_delivered`` event).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from peewee import Case, Expression, IntegrityError

from hotfolder_agent.claims import holder_is_gone
from hotfolder_agent.context import AgentContext
from hotfolder_agent.copying import DeliveryFailed
from hotfolder_agent.layout import IncomingPath
from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.events import FILES_DELIVERED, notify_files
from shared.files.folders import FOLDER_INCOMING
from shared.models import Customer, Delivery, Order, OrderFile

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """Another agent took the delivery over (this one was thought dead)."""


def find_uploads(incomings: Iterable[IncomingPath]) -> dict[Path, OrderFile]:
    """The upload records of files in Eingehend, by path (files without one are left out)."""
    by_key = {(i.customer_no, i.project_no, i.name): i.path for i in incomings}
    if not by_key:
        return {}
    customers, projects, names = (set(part) for part in zip(*by_key, strict=True))
    query = (
        OrderFile.select(OrderFile, Order, Customer)
        .join(Order)
        .join(Customer)
        .where(
            Customer.customer_no.in_(customers)
            & Order.project_no.in_(projects)
            & (OrderFile.folder == FOLDER_INCOMING)
            & OrderFile.stored_name.in_(names)
        )
    )
    found = {}
    for file in query:
        # The IN lists may combine parts of different paths: keep exact matches only.
        order = file.order
        path = by_key.get((order.customer.customer_no, order.project_no, file.stored_name))
        if path is not None:
            found[path] = file
    return found


def is_deliverable(file: OrderFile) -> bool:
    """Only clean files placed in Eingehend are ever handed on (the portal's contract)."""
    return (
        file.state == OrderFile.STATE_CLEAN
        and file.folder == FOLDER_INCOMING
        and bool(file.stored_name)
        and bool(file.sha256)
    )


def claim_deliveries(
    ctx: AgentContext, files: list[OrderFile]
) -> tuple[dict[int, Delivery], set[int]]:
    """This agent's delivery rows by file id (new, own, taken over, or done; busy ones left
    out), and the ids of the files claimed for the first time (nothing of theirs on disk yet).
    """
    by_id = {file.id: file for file in files}
    ids = list(by_id)
    with write_transaction():
        existing = {row.file_id: row for row in Delivery.select().where(Delivery.file.in_(ids))}
        new = [file_id for file_id in ids if file_id not in existing]
        if new:
            _create_claims(ctx, new)
        claimed = {
            row.file_id: row
            for row in Delivery.select().where(
                Delivery.file.in_(new) & (Delivery.claimed_by == ctx.agent_id)
            )
        }
        gone: dict[str, bool] = {}
        for file_id, row in existing.items():
            if row.state == Delivery.STATE_DONE or row.claimed_by == ctx.agent_id:
                claimed[file_id] = row
                continue
            if row.claimed_by not in gone:
                gone[row.claimed_by] = holder_is_gone(row.claimed_by, ctx.agent_id, ctx.stale_after)
            if gone[row.claimed_by] and _take_over(ctx, row, by_id[file_id]):
                claimed[file_id] = Delivery.get_by_id(row.id)
    return claimed, set(new) & set(claimed)


def _create_claims(ctx: AgentContext, file_ids: list[int]) -> None:
    rows = [{"file": file_id, "claimed_by": ctx.agent_id, "attempts": 1} for file_id in file_ids]
    try:
        with database.atomic():  # a savepoint: PostgreSQL aborts the rest otherwise
            Delivery.insert_many(rows).execute()
        return
    except IntegrityError:
        pass  # another agent claimed one of them meanwhile: claim one by one
    for row in rows:
        try:
            with database.atomic():
                Delivery.insert(row).execute()
        except IntegrityError:
            continue


def _take_over(ctx: AgentContext, row: Delivery, file: OrderFile) -> bool:
    taken = (
        Delivery.update(claimed_by=ctx.agent_id, attempts=Delivery.attempts + 1)
        .where(
            (Delivery.id == row.id)
            & (Delivery.claimed_by == row.claimed_by)
            & (Delivery.state == Delivery.STATE_INTENT)
        )
        .execute()
    )
    if taken:
        log.info(
            "order=%s file=%s action=takeover from=%s",
            file.order.project_no,
            file.stored_name,
            row.claimed_by,
        )
    return bool(taken)


def record_plans(ctx: AgentContext, plans: list[tuple[Delivery, Path]]) -> set[int]:
    """Write down the target names before linking, so a restart knows where to look.

    Returns the ids of the rows another agent has taken over meanwhile (not written).
    """
    targets = {row.id: str(target) for row, target in plans}
    with write_transaction():
        held = _held(ctx, list(targets))
        if held:
            # One statement for the batch: each row gets its own name.
            Delivery.update(
                hotfolder_path=Case(Delivery.id, [(i, targets[i]) for i in held])
            ).where(_holds(ctx, held)).execute()
    for row, _target in plans:
        if row.id in held:
            row.hotfolder_path = targets[row.id]
    return set(targets) - set(held)


def _held(ctx: AgentContext, ids: list[int]) -> list[int]:
    """Those of the delivery rows ``ids`` this agent still holds open (inside a transaction)."""
    query = Delivery.select(Delivery.id).where(_holds(ctx, ids))
    return [row_id for (row_id,) in query.tuples()]


def _holds(ctx: AgentContext, ids: list[int]) -> Expression:
    return (
        Delivery.id.in_(ids)
        & (Delivery.claimed_by == ctx.agent_id)
        & (Delivery.state == Delivery.STATE_INTENT)
    )


def record_done(placed: list[tuple[Delivery, OrderFile, Path]]) -> None:
    """Record the files as delivered (their planned names are where they are now)."""
    if not placed:
        return
    now = utcnow()
    ids = [row.id for row, _file, _path in placed]
    with write_transaction():
        still_open = {
            row_id
            for (row_id,) in Delivery.select(Delivery.id)
            .where(Delivery.id.in_(ids) & (Delivery.state == Delivery.STATE_INTENT))
            .tuples()
        }
        Delivery.update(state=Delivery.STATE_DONE, done_at=now, error="").where(
            Delivery.id.in_(list(still_open))
        ).execute()
        OrderFile.update(delivered_at=now).where(
            OrderFile.id.in_([file.id for _row, file, _path in placed])
        ).execute()
        notify_files(
            FILES_DELIVERED,
            [(file, str(path)) for row, file, path in placed if row.id in still_open],
        )
    for row, file, _path in placed:
        if row.id not in still_open:
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
