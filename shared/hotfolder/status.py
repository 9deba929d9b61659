"""Read-only queries behind the staff page "Hotfolder": each upload's way, the agents, their errors.

An upload goes uploading → scanning → clean or rejected (or held as too large) →
in the hotfolder. ``STAGES`` names those steps for the filter; ``stage_of`` says
where a file is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import JOIN

from shared.clock import utcnow
from shared.files.folders import FOLDER_INCOMING
from shared.hotfolder.agents import is_alive
from shared.models import (
    AgentError,
    AgentHeartbeat,
    ApiToken,
    Customer,
    Delivery,
    Order,
    OrderFile,
    OutboundTransfer,
)
from shared.paging import PER_PAGE

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
    """One customer upload and, once it got there, its delivery into the hotfolder.

    A flat row with just the columns the page shows: the page lists 25 of them on every
    refresh, and whole models with their joined models cost more than the query.
    """

    id: int
    display_name: str
    size: int
    state: str
    created_at: datetime
    received_at: datetime | None
    scanned_at: datetime | None
    released_at: datetime | None
    project_no: str
    customer_no: str
    customer_name: str
    delivery_state: str | None
    delivery_done_at: datetime | None
    hotfolder_path: str | None
    delivery_error: str | None

    @property
    def stage(self) -> str:
        return stage_of(self.state, self.delivery_state, self.delivery_error)

    @property
    def scan_outcome(self) -> str:
        """What the virus scan (or staff, for a held file) decided: a stage."""
        if self.state in (OrderFile.STATE_REJECTED, OrderFile.STATE_TOO_LARGE):
            return self.state
        return STAGE_CLEAN


def stage_of(file_state: str, delivery_state: str | None, delivery_error: str | None) -> str:
    """Where a file is on its way, from its state and its delivery's: one of ``STAGES``."""
    if delivery_state == Delivery.STATE_DONE:
        return STAGE_IN_HOTFOLDER
    if file_state == OrderFile.STATE_CLEAN:
        return STAGE_DELIVERY_FAILED if delivery_error else STAGE_CLEAN
    if file_state == OrderFile.STATE_UPLOADING:
        return STAGE_UPLOADING
    if file_state in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING):
        return STAGE_SCANNING
    if file_state == OrderFile.STATE_TOO_LARGE:
        return STAGE_TOO_LARGE
    return STAGE_REJECTED


@dataclass(frozen=True)
class JourneyPage:
    """A page of uploads, newest first.

    Whether more follow is known, how many there are in all is not: counting means
    joining every upload ever, on every refresh of the page, for a number nobody acts on.
    """

    items: list[FileJourney]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


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


_JOURNEY_COLUMNS = (
    OrderFile.id,
    OrderFile.display_name,
    OrderFile.size,
    OrderFile.state,
    OrderFile.created_at,
    OrderFile.received_at,
    OrderFile.scanned_at,
    OrderFile.released_at,
    Order.project_no,
    Customer.customer_no,
    Customer.name,
    Delivery.state,
    Delivery.done_at,
    Delivery.hotfolder_path,
    Delivery.error,
)


def _uploads():
    """Customer uploads that still exist with their delivery, if any, newest first."""
    return (
        OrderFile.select(*_JOURNEY_COLUMNS)
        .join(Order)
        .join(Customer)
        .switch(OrderFile)
        .join(Delivery, JOIN.LEFT_OUTER, on=(Delivery.file == OrderFile.id))
        .where((OrderFile.folder == FOLDER_INCOMING) & (OrderFile.state != OrderFile.STATE_DELETED))
        .order_by(OrderFile.id.desc())
        .tuples()
    )


# Far beyond any real page, and small enough for SQLite's integers whatever the URL says.
LAST_PAGE = 1_000_000


def file_journeys(
    customer: str = "", query: str = "", stage: str = "", page: int = 1, per_page: int = PER_PAGE
) -> JourneyPage:
    """Customer uploads (newest first), filtered by customer, order number and stage."""
    number = min(max(page, 1), LAST_PAGE)
    customer, query = customer.strip()[:100], query.strip()[:100]
    files = _uploads()
    if customer:
        files = files.where((Customer.customer_no == customer) | (Customer.name ** f"%{customer}%"))
    if query:
        files = files.where(Order.project_no ** f"%{query}%")
    condition = _stage_condition(stage)
    if condition is not None:
        files = files.where(condition)
    # One row more than a page tells whether a next page exists, without counting.
    rows = list(files.limit(per_page + 1).offset((number - 1) * per_page))
    journeys = [FileJourney(*row) for row in rows[:per_page]]
    return JourneyPage(journeys, number, has_next=len(rows) > per_page)


# Of a joined order the page shows only its number (and of an agent's token its name): every
# column more is SQL to build and a field to fill on every refresh of the page.
_ORDER_NUMBER = (Order.id, Order.project_no)


@dataclass(frozen=True)
class AgentStatus:
    heartbeat: AgentHeartbeat
    alive: bool


def agent_statuses(now: datetime | None = None) -> list[AgentStatus]:
    """The agents seen in the last week, most recent first; ``alive`` if beating and not stopped."""
    now = now or utcnow()
    return [
        AgentStatus(beat, is_alive(beat, now))
        for beat in AgentHeartbeat.select(AgentHeartbeat, ApiToken.id, ApiToken.name)
        .join(ApiToken, JOIN.LEFT_OUTER)
        .where(AgentHeartbeat.seen_at >= now - timedelta(days=7))
        .order_by(AgentHeartbeat.seen_at.desc())
        .limit(10)
    ]


def open_agent_errors(limit: int = 50) -> list[AgentError]:
    """Problems the agent could not solve, newest first, with their order's number."""
    return list(
        AgentError.select(AgentError, *_ORDER_NUMBER)
        .join(Order, JOIN.LEFT_OUTER)
        .where(AgentError.resolved_at.is_null())
        .order_by(AgentError.last_seen_at.desc())
        .limit(limit)
    )


def recent_transfers(limit: int = 20) -> list[OutboundTransfer]:
    """Files staff sent back to customers through the outbound folders, newest first, with
    their order's number."""
    return list(
        OutboundTransfer.select(OutboundTransfer, *_ORDER_NUMBER)
        .join(Order)
        .order_by(OutboundTransfer.id.desc())
        .limit(limit)
    )
