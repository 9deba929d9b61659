"""The portal's side of delivering clean uploads to the hotfolder agents over HTTPS.

An agent never sees the database or the order folders; it asks (``portal/agent_api.py``
parses and authorises, the work is here):

1. **lease**: the files it may take (``access.for_hotfolder``: clean, in Eingehend, of a
   customer with a hotfolder), preflighted (``checked``), not delivered yet and not
   leased by a live agent, are leased to it: the file's ``Delivery`` row names the agent
   and ``lease_until``. Two agents never hold the same file; an agent that dies loses its
   leases when they run out (``agents.silence_allowed``), and every heartbeat extends
   them. ``wait_for_leases`` waits up to ``wait`` seconds for work by asking the database
   every ``POLL_SECONDS`` (an indexed query): the wake-up is the row the worker commits
   when a file turns clean and checked, so it reaches an agent through any gunicorn worker, any
   process and any host that shares the database, and nothing is held in memory.
2. **download**: any portal process serves the bytes (``files.access.agent_may_download``).
3. **confirm**: the agent says where it placed the file, when, and its SHA-256; the file
   is "in hotfolder" from then on (the staff page, the ``files_delivered`` event).
   Confirming again with the same path is harmless (a restarted agent does).

Heartbeats (which extend the leases), problems and notifications are ``reports``; staff
files going the other way are ``outbound``.

An agent tells with each lease request which files it holds in hand (``holding``);
leases of its own that it does not hold were lost on the way (an answer that never
arrived) and are handed to it again, so no file stays leased to an agent that does not
know it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from peewee import JOIN, Case, IntegrityError

from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.events import FILES_DELIVERED, notify_files
from shared.files.access import agent_may_download, for_hotfolder
from shared.files.folders import order_dir
from shared.hotfolder.agents import lease_end
from shared.models import (
    AgentError,
    AgentHeartbeat,
    Customer,
    Delivery,
    Order,
    OrderFile,
)

log = logging.getLogger(__name__)

# How often a waiting lease request asks the database again: the most a clean file
# waits for an agent that is waiting for work.
POLL_SECONDS = 0.1
# The longest an agent may ask to wait (nginx's proxy_read_timeout must be longer).
MAX_WAIT_SECONDS = 30.0
MAX_FILES = 64

REFUSED_DELIVERED = "delivered"
REFUSED_LEASED = "leased"
REFUSED_GONE = "gone"

CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Refusal:
    """A file an agent asked for by id and may not (or need not) work on."""

    file_id: int
    reason: str  # REFUSED_*
    path: str = ""  # where it is in a hotfolder (REFUSED_DELIVERED)
    mine: bool = False  # delivered (or leased) by the asking agent


@dataclass
class Leases:
    """What a lease request got: files (with order and customer) leased until ``until``."""

    files: list[OrderFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    until: datetime | None = None


def files_with_orders(ids: Iterable[int]) -> list[OrderFile]:
    """The files ``ids`` with their order and customer, in id order."""
    ids = list(ids)
    if not ids:
        return []
    return list(
        OrderFile.select(OrderFile, Order, Customer)
        .join(Order)
        .join(Customer)
        .where(OrderFile.id.in_(ids))
        .order_by(OrderFile.id)
    )


# A clean file waits for its preflight (which the worker starts right after the scan) so
# that its job notification carries the result; the preflight ends within
# [preflight] wall_seconds, but a worker that is down must not hold files back for ever.
PREFLIGHT_WAIT = timedelta(minutes=5)


def _checked(now: datetime):
    """A file whose preflight is over (or never ran), or that waited long enough for it."""
    return (OrderFile.preflight_status != OrderFile.PREFLIGHT_PENDING) | (
        OrderFile.scanned_at < now - PREFLIGHT_WAIT
    )


def _free(now: datetime):
    """A delivery row that is nobody's: no row, or an open one whose lease ran out."""
    return Delivery.id.is_null() | (
        (Delivery.state == Delivery.STATE_INTENT)
        & (Delivery.lease_until.is_null() | (Delivery.lease_until < now))
    )


def _waiting(now: datetime, holding: Collection[int]):
    """Files for the hotfolder that nobody delivers or holds (a query of ids, oldest first)."""
    query = (
        OrderFile.select(OrderFile.id)
        .join(Order)
        .join(Customer)
        .switch(OrderFile)
        .join(Delivery, JOIN.LEFT_OUTER, on=(Delivery.file == OrderFile.id))
        .where(for_hotfolder() & OrderFile.delivered_at.is_null() & _checked(now) & _free(now))
        .order_by(OrderFile.id)
    )
    if holding:
        query = query.where(OrderFile.id.not_in(list(holding)))
    return query


def _lost_on_the_way(agent_id: str, holding: Collection[int]):
    """This agent's open leases that it does not hold (the answer never reached it)."""
    query = Delivery.select(Delivery.file).where(
        (Delivery.claimed_by == agent_id) & (Delivery.state == Delivery.STATE_INTENT)
    )
    if holding:
        query = query.where(Delivery.file.not_in(list(holding)))
    return query


def waiting_files(limit: int, now: datetime | None = None) -> list[OrderFile]:
    """Files for the hotfolder that no live agent holds, oldest first (not leased)."""
    now = now or utcnow()
    return files_with_orders(row.id for row in _waiting(now, ()).limit(limit))


def _has_work(agent_id: str, holding: Collection[int], now: datetime) -> bool:
    return _waiting(now, holding).exists() or _lost_on_the_way(agent_id, holding).exists()


def _take(agent_id: str, file: OrderFile, until: datetime, now: datetime) -> Refusal | None:
    """Lease one file to the agent (inside a transaction); a Refusal says why not."""
    row = Delivery.get_or_none(Delivery.file == file.id)
    if row is None:
        try:
            with database.atomic():  # a savepoint: PostgreSQL aborts the rest otherwise
                Delivery.create(file=file, claimed_by=agent_id, lease_until=until, attempts=1)
            return None
        except IntegrityError:
            row = Delivery.get(Delivery.file == file.id)  # another agent, just now
    if row.state == Delivery.STATE_DONE:
        return Refusal(file.id, REFUSED_DELIVERED, row.hotfolder_path, row.claimed_by == agent_id)
    if row.claimed_by == agent_id:
        Delivery.update(lease_until=until).where(Delivery.id == row.id).execute()
        return None
    if row.lease_until is not None and row.lease_until >= now:
        return Refusal(file.id, REFUSED_LEASED)
    taken = (
        Delivery.update(claimed_by=agent_id, lease_until=until, attempts=Delivery.attempts + 1)
        .where(
            (Delivery.id == row.id)
            & (Delivery.claimed_by == row.claimed_by)
            & (Delivery.state == Delivery.STATE_INTENT)
        )
        .execute()
    )
    if not taken:
        return Refusal(file.id, REFUSED_LEASED)
    log.info(
        "order=%s file=%s action=takeover agent=%s from=%s",
        file.order.project_no,
        file.stored_name,
        agent_id,
        row.claimed_by,
    )
    return None


def lease_files(
    agent_id: str,
    heartbeat_seconds: float,
    *,
    limit: int,
    holding: Collection[int] = (),
    file_ids: Collection[int] = (),
    now: datetime | None = None,
) -> Leases:
    """Lease files to ``agent_id``: those it asks for by id (after a restart), its own it
    lost on the way, then new ones, ``limit`` in all (ids asked for always get an answer)."""
    now = now or utcnow()
    until = lease_end(heartbeat_seconds, now)
    leases = Leases(until=until)
    granted: list[int] = []
    with write_transaction():
        asked = {file.id: file for file in files_with_orders(file_ids)}
        for file_id in file_ids:
            refusal = _answer(agent_id, asked.get(file_id), file_id, until, now)
            if refusal is None:
                granted.append(file_id)
            else:
                leases.refused.append(refusal)
        keep = {*holding, *file_ids}
        lost = files_with_orders(row.file_id for row in _lost_on_the_way(agent_id, keep))
        gone = [file.id for file in lost if not agent_may_download(file)]
        # Deleted meanwhile, or the customer's hotfolder was switched off:
        release_in_transaction(agent_id, gone)
        lost = [file.id for file in lost if file.id not in gone][: max(limit - len(granted), 0)]
        if lost:
            Delivery.update(lease_until=until).where(
                Delivery.file.in_(lost) & (Delivery.claimed_by == agent_id)
            ).execute()
            granted += lost
        room = max(limit - len(granted), 0)
        if room:
            keep.update(granted)
            granted += _take_waiting(agent_id, keep, room, until, now)
    leases.files = files_with_orders(granted)
    return leases


def _take_waiting(
    agent_id: str, keep: Collection[int], room: int, until: datetime, now: datetime
) -> list[int]:
    """Lease up to ``room`` waiting files; the usual case, files nobody ever touched, with
    one INSERT for all of them (inside the caller's transaction)."""
    waiting = list(
        _waiting(now, keep).select(OrderFile.id, Delivery.id.alias("delivery")).limit(room).dicts()
    )
    untouched = [row["id"] for row in waiting if row["delivery"] is None]
    taken: list[int] = []
    if untouched:
        try:
            with database.atomic():  # a savepoint: PostgreSQL aborts the rest otherwise
                Delivery.insert_many(
                    [
                        {
                            "file": file_id,
                            "claimed_by": agent_id,
                            "lease_until": until,
                            "attempts": 1,
                        }
                        for file_id in untouched
                    ]
                ).execute()
            taken += untouched
            untouched = []
        except IntegrityError:
            pass  # another agent took one of them just now: one by one
    for file in files_with_orders(
        [row["id"] for row in waiting if row["delivery"] is not None] + untouched
    ):
        if _take(agent_id, file, until, now) is None:
            taken.append(file.id)
    return taken


def _answer(
    agent_id: str, file: OrderFile | None, file_id: int, until: datetime, now: datetime
) -> Refusal | None:
    """Lease a file an agent asked for by id, or say why not."""
    if file is None:
        return Refusal(file_id, REFUSED_GONE)
    row = Delivery.get_or_none(Delivery.file == file.id)
    if row is not None and row.state == Delivery.STATE_DONE:
        return Refusal(file.id, REFUSED_DELIVERED, row.hotfolder_path, row.claimed_by == agent_id)
    if not agent_may_download(file):
        release_in_transaction(agent_id, [file.id])
        return Refusal(file.id, REFUSED_GONE)
    return _take(agent_id, file, until, now)


def wait_for_leases(
    agent_id: str,
    heartbeat_seconds: float,
    *,
    limit: int,
    wait: float,
    holding: Collection[int] = (),
    file_ids: Collection[int] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Leases:
    """``lease_files``, waiting up to ``wait`` seconds for something to lease.

    Between tries only a read is made (no write lock is taken while nothing waits). A
    request goes on here when its agent has gone away (the server cannot tell): it ends
    as soon as the agent says it stops, so that it does not lease files to an agent that
    will never fetch them.
    """
    deadline = clock() + min(max(wait, 0.0), MAX_WAIT_SECONDS)
    asked_at = utcnow()
    while True:
        now = utcnow()
        if _stopped_since(agent_id, asked_at):
            return Leases(until=now)
        if file_ids or _has_work(agent_id, holding, now):
            leases = lease_files(
                agent_id, heartbeat_seconds, limit=limit, holding=holding, file_ids=file_ids
            )
            if leases.files or leases.refused:
                return leases
            file_ids = ()  # answered: from now on only new work counts
        if clock() >= deadline:
            return Leases(until=lease_end(heartbeat_seconds, now))
        sleep(POLL_SECONDS)


def _stopped_since(agent_id: str, moment: datetime) -> bool:
    return (
        AgentHeartbeat.select()
        .where((AgentHeartbeat.agent_id == agent_id) & (AgentHeartbeat.stopped_at >= moment))
        .exists()
    )


def release_in_transaction(agent_id: str, file_ids: Collection[int]) -> int:
    """``release`` inside the caller's transaction."""
    if not file_ids:
        return 0
    return (
        Delivery.update(lease_until=None)
        .where(
            Delivery.file.in_(list(file_ids))
            & (Delivery.claimed_by == agent_id)
            & (Delivery.state == Delivery.STATE_INTENT)
        )
        .execute()
    )


def release(agent_id: str, file_ids: Collection[int]) -> int:
    """Give leases back (the agent stops, or will not deliver them): others may take them."""
    with write_transaction():
        return release_in_transaction(agent_id, file_ids)


# --- confirming ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What an agent reports for one file it placed in a hotfolder."""

    file_id: int
    path: str
    placed_at: datetime
    sha256: str


@dataclass(frozen=True)
class Confirmation:
    file_id: int
    outcome: str  # CONFIRMED or a REFUSED_*
    path: str = ""
    message: str = ""


def _judge(
    agent_id: str, placed: Placed, file: OrderFile | None, row: Delivery | None, now: datetime
) -> Confirmation:
    """Whether ``placed`` may be recorded as delivered (CONFIRMED) or why not."""
    if file is None:
        return Confirmation(placed.file_id, REFUSED_GONE, message="no such file")
    if placed.sha256 != file.sha256:
        message = "the SHA-256 differs from the upload's"
        return Confirmation(placed.file_id, REFUSED_GONE, message=message)
    if row is not None and row.state == Delivery.STATE_DONE:
        if row.claimed_by == agent_id and row.hotfolder_path == placed.path:
            return Confirmation(file.id, CONFIRMED, row.hotfolder_path, "again")
        message = "delivered already by another agent or to another path"
        return Confirmation(file.id, REFUSED_DELIVERED, row.hotfolder_path, message)
    if (
        row is not None
        and row.claimed_by != agent_id
        and row.lease_until is not None
        and row.lease_until >= now
    ):
        return Confirmation(file.id, REFUSED_LEASED, message="another agent holds this file now")
    return Confirmation(file.id, CONFIRMED, placed.path)


def confirm(agent_id: str, placed: list[Placed], now: datetime | None = None) -> list[Confirmation]:
    """Record files as in their hotfolders (one transaction); an outcome per file.

    A file is confirmed when the agent holds it, or when nobody holds it any more (its
    lease ran out, but the file is in place: that is what counts). It is refused when
    another agent holds or delivered it, or the checksum is not the upload's. A few
    statements serve the whole batch, whatever its size.
    """
    now = now or utcnow()
    files = {file.id: file for file in files_with_orders(item.file_id for item in placed)}
    with write_transaction():
        rows = {row.file_id: row for row in Delivery.select().where(Delivery.file.in_(list(files)))}
        outcomes = [
            _judge(agent_id, item, files.get(item.file_id), rows.get(item.file_id), now)
            for item in placed
        ]
        new = [
            (item, files[item.file_id])
            for item, outcome in zip(placed, outcomes, strict=True)
            if outcome.outcome == CONFIRMED and outcome.message != "again"
        ]
        if new:
            _record_delivered(agent_id, new, rows, now)
    for item, file in new:
        log.info(
            "order=%s file=%s action=delivered agent=%s path=%s",
            file.order.project_no,
            file.stored_name,
            agent_id,
            item.path,
        )
    return [
        Confirmation(o.file_id, o.outcome, o.path, "" if o.message == "again" else o.message)
        for o in outcomes
    ]


def _record_delivered(
    agent_id: str,
    new: list[tuple[Placed, OrderFile]],
    rows: dict[int, Delivery],
    now: datetime,
) -> None:
    """Mark the files delivered: their delivery rows (one UPDATE for those that exist, one
    INSERT for the others), the files, the ``files_delivered`` event, their problems."""
    values = {
        Delivery.state: Delivery.STATE_DONE,
        Delivery.claimed_by: agent_id,
        Delivery.done_at: now,
        Delivery.error: "",
        Delivery.lease_until: None,
    }
    existing = [(item, rows[item.file_id].id) for item, _file in new if item.file_id in rows]
    if existing:
        Delivery.update(
            {
                **values,
                Delivery.hotfolder_path: Case(
                    Delivery.id, [(i, item.path) for item, i in existing]
                ),
                Delivery.placed_at: Case(
                    Delivery.id, [(i, item.placed_at) for item, i in existing]
                ),
            }
        ).where(Delivery.id.in_([i for _item, i in existing])).execute()
    missing = [item for item, _file in new if item.file_id not in rows]
    if missing:
        Delivery.insert_many(
            [
                {
                    "file": item.file_id,
                    "attempts": 1,
                    "hotfolder_path": item.path,
                    "placed_at": item.placed_at,
                    **{field.name: value for field, value in values.items()},
                }
                for item in missing
            ]
        ).execute()
    ids = [file.id for _item, file in new]
    OrderFile.update(delivered_at=now).where(OrderFile.id.in_(ids)).execute()
    notify_files(FILES_DELIVERED, [(file, item.path) for item, file in new])
    AgentError.update(resolved_at=now).where(
        AgentError.file.in_(ids) & AgentError.resolved_at.is_null()
    ).execute()


# --- what the agent needs besides files ------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """A file an agent may download: where its bytes are, its name and checksum."""

    path: Path
    stored_name: str
    sha256: str


def downloads_for_agent(order_root: Path, file_ids: Collection[int]) -> dict[int, Download]:
    """Those of the files ``file_ids`` an agent may download (``access.for_hotfolder``).

    One lean query: every download asks it, and model objects would cost more than the
    query.
    """
    rows = (
        OrderFile.select(
            OrderFile.id,
            OrderFile.folder,
            OrderFile.stored_name,
            OrderFile.sha256,
            Order.project_no,
            Customer.customer_no,
        )
        .join(Order)
        .join(Customer)
        .where(OrderFile.id.in_(list(file_ids)) & for_hotfolder())
        .tuples()
    )
    return {
        file_id: Download(
            order_dir(order_root, customer_no, project_no) / folder / stored_name,
            stored_name,
            sha256,
        )
        for file_id, folder, stored_name, sha256, project_no, customer_no in rows
    }


def hotfolder_orders(after: int, limit: int) -> list[tuple[Order, str]]:
    """Orders (with their customer number) whose folders exist, of customers with a
    hotfolder, by id after ``after``: the agent makes their hotfolders and drop folders."""
    query = (
        Order.select(Order, Customer)
        .join(Customer)
        .where(
            (Order.id > after)
            & (Order.folders_created == True)  # noqa: E712  (SQL, not Python)
            & (Customer.create_hotfolder == True)  # noqa: E712
        )
        .order_by(Order.id)
        .limit(limit)
    )
    return [(order, order.customer.customer_no) for order in query]
