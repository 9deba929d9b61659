"""Read-only queries behind the staff page "Hotfolder": each upload's way, the agents, their errors.

An upload goes uploading → scanning → clean or rejected (or held as too large) →
in the hotfolder. ``STAGES`` names those steps for the filter; ``stage_of`` says
where a file is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from peewee import JOIN

from shared.clock import utcnow
from shared.listing import PER_PAGE, Page
from shared.models import (
    AgentError,
    AgentHeartbeat,
    Customer,
    Delivery,
    Order,
    OrderFile,
    OutboundTransfer,
)
from shared.storage import FOLDER_INCOMING

STAGE_UPLOADING = "uploading"
STAGE_SCANNING = "scanning"
STAGE_CLEAN = "clean"
STAGE_REJECTED = "rejected"
STAGE_TOO_LARGE = "too_large"
STAGE_IN_HOTFOLDER = "in_hotfolder"
STAGE_DELIVERY_FAILED = "delivery_failed"
STAGES = (
    STAGE_UPLOADING,
    STAGE_SCANNING,
    STAGE_CLEAN,
    STAGE_REJECTED,
    STAGE_TOO_LARGE,
    STAGE_IN_HOTFOLDER,
    STAGE_DELIVERY_FAILED,
)


@dataclass(frozen=True)
class FileJourney:
    """One customer upload and, once it got there, its delivery into the hotfolder."""

    file: OrderFile
    delivery: Delivery | None

    @property
    def stage(self) -> str:
        return stage_of(self.file, self.delivery)


def stage_of(file: OrderFile, delivery: Delivery | None) -> str:
    """Where ``file`` is on its way: one of ``STAGES``."""
    if delivery is not None and delivery.state == Delivery.STATE_DONE:
        return STAGE_IN_HOTFOLDER
    if file.state == OrderFile.STATE_CLEAN:
        return STAGE_DELIVERY_FAILED if delivery is not None and delivery.error else STAGE_CLEAN
    if file.state == OrderFile.STATE_UPLOADING:
        return STAGE_UPLOADING
    if file.state in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
        return STAGE_SCANNING
    if file.state == OrderFile.STATE_TOO_LARGE:
        return STAGE_TOO_LARGE
    return STAGE_REJECTED


def _stage_condition(stage: str):
    delivered = Delivery.state == Delivery.STATE_DONE
    not_delivered = Delivery.id.is_null() | (Delivery.state != Delivery.STATE_DONE)
    clean = OrderFile.state == OrderFile.STATE_CLEAN
    failed = (Delivery.state == Delivery.STATE_INTENT) & (Delivery.error != "")
    return {
        STAGE_UPLOADING: OrderFile.state == OrderFile.STATE_UPLOADING,
        STAGE_SCANNING: OrderFile.state.in_([OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING]),
        STAGE_CLEAN: clean & not_delivered & (Delivery.id.is_null() | (Delivery.error == "")),
        STAGE_REJECTED: OrderFile.state == OrderFile.STATE_REJECTED,
        STAGE_TOO_LARGE: OrderFile.state == OrderFile.STATE_TOO_LARGE,
        STAGE_IN_HOTFOLDER: delivered,
        STAGE_DELIVERY_FAILED: clean & failed,
    }.get(stage)


def file_journeys(
    customer: str = "", query: str = "", stage: str = "", page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Customer uploads (newest first), filtered by customer, order number and stage."""
    files = (
        OrderFile.select(OrderFile, Order, Customer, Delivery)
        .join(Order)
        .join(Customer)
        .switch(OrderFile)
        .join(Delivery, JOIN.LEFT_OUTER, on=(Delivery.file == OrderFile.id))
        .where((OrderFile.folder == FOLDER_INCOMING) & (OrderFile.state != OrderFile.STATE_DELETED))
    )
    customer = customer.strip()[:100]
    if customer:
        files = files.where((Customer.customer_no == customer) | (Customer.name ** f"%{customer}%"))
    query = query.strip()[:100]
    if query:
        files = files.where(Order.project_no ** f"%{query}%")
    condition = _stage_condition(stage)
    if condition is not None:
        files = files.where(condition)
    total = files.count()
    number = min(max(page, 1), max(1, ceil(total / per_page)))
    rows = files.order_by(OrderFile.id.desc()).paginate(number, per_page)
    journeys = [FileJourney(row, getattr(row, "delivery", None)) for row in rows]
    return Page(journeys, total, number, per_page)


@dataclass(frozen=True)
class AgentStatus:
    heartbeat: AgentHeartbeat
    alive: bool


def agent_statuses(stale_after: timedelta, now: datetime | None = None) -> list[AgentStatus]:
    """The agents seen in the last week, most recent first; ``alive`` if beating and not stopped."""
    now = now or utcnow()
    beats = (
        AgentHeartbeat.select()
        .where(AgentHeartbeat.seen_at >= now - timedelta(days=7))
        .order_by(AgentHeartbeat.seen_at.desc())
        .limit(10)
    )
    return [
        AgentStatus(beat, beat.stopped_at is None and beat.seen_at >= now - stale_after)
        for beat in beats
    ]


def open_agent_errors(limit: int = 50) -> list[AgentError]:
    """Problems the agent could not solve, newest first."""
    return list(
        AgentError.select(AgentError, Order)
        .join(Order, JOIN.LEFT_OUTER)
        .where(AgentError.resolved_at.is_null())
        .order_by(AgentError.last_seen_at.desc())
        .limit(limit)
    )


def recent_transfers(limit: int = 20) -> list[OutboundTransfer]:
    """Files staff sent back to customers through the outbound folders, newest first."""
    return list(
        OutboundTransfer.select(OutboundTransfer, Order)
        .join(Order)
        .order_by(OutboundTransfer.id.desc())
        .limit(limit)
    )
