"""What staff must watch: files waiting for the virus scan, held as too large, rejected.

The overview shows the most urgent few of each section with how many there are in all;
a paged list per section shows every one. Counts and rows are found through the index
on ``OrderFile.state``, so neither grows with the clean files around them, and a row
carries only the columns the tables show (no models with their joined models).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from peewee import fn

from shared.models import Customer, Order, OrderFile
from shared.paging import PER_PAGE, Page, page_within

SECTION_WAITING = "waiting"
SECTION_HELD = "held"
SECTION_REJECTED = "rejected"
SECTIONS = (SECTION_WAITING, SECTION_HELD, SECTION_REJECTED)

# Enough to act on at a glance; the rest is one click away.
OVERVIEW_ROWS = 5

_STATES = {
    SECTION_WAITING: (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING),
    SECTION_HELD: (OrderFile.STATE_TOO_LARGE,),
    SECTION_REJECTED: (OrderFile.STATE_REJECTED,),
}
_SECTION_OF_STATE = {state: section for section, states in _STATES.items() for state in states}


@dataclass(frozen=True)
class BacklogFile:
    """One row of a backlog table: what it shows and what the file actions need."""

    id: int
    state: str
    display_name: str
    size: int
    signature: str
    received_at: datetime | None
    project_no: str
    customer_name: str


@dataclass(frozen=True)
class BacklogSection:
    """The first files of a section, most urgent first, and how many it holds in all."""

    name: str
    files: list[BacklogFile]
    total: int


_COLUMNS = (
    OrderFile.id,
    OrderFile.state,
    OrderFile.display_name,
    OrderFile.size,
    OrderFile.signature,
    OrderFile.received_at,
    Order.project_no,
    Customer.name,
)


def _most_urgent_first(section: str, limit: int, offset: int):
    """The oldest waiting and held files first; of the rejected, the latest.

    Upload order (the id) stands in for the time received or scanned: the index on
    ``state`` keeps it, so a page needs no sort of the whole section.
    """
    urgency = OrderFile.id.desc() if section == SECTION_REJECTED else OrderFile.id
    return (
        OrderFile.select(*_COLUMNS)
        .join(Order)
        .join(Customer)
        .where(OrderFile.state.in_(_STATES[section]))
        .order_by(urgency)
        .limit(limit)
        .offset(offset)
        .tuples()
    )


def backlog_counts() -> dict[str, int]:
    """How many files each section holds, from one query."""
    counts = dict.fromkeys(SECTIONS, 0)
    by_state = (
        OrderFile.select(OrderFile.state, fn.COUNT(OrderFile.id))
        .where(OrderFile.state.in_(list(_SECTION_OF_STATE)))
        .group_by(OrderFile.state)
        .tuples()
    )
    for state, count in by_state:
        counts[_SECTION_OF_STATE[state]] += count
    return counts


def backlog_overview(rows: int = OVERVIEW_ROWS) -> dict[str, BacklogSection]:
    """Each section's ``rows`` most urgent files and its total, by section name."""
    counts = backlog_counts()
    return {
        section: BacklogSection(section, _files(section, rows, 0), counts[section])
        for section in SECTIONS
    }


def backlog_page(section: str, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of all files in ``section`` (one of ``SECTIONS``), most urgent first."""
    total = OrderFile.select().where(OrderFile.state.in_(_STATES[section])).count()
    number = page_within(page, total, per_page)
    return Page(_files(section, per_page, (number - 1) * per_page), total, number, per_page)


def _files(section: str, limit: int, offset: int) -> list[BacklogFile]:
    return [BacklogFile(*row) for row in _most_urgent_first(section, limit, offset)]


def backlog_file(file_id: int) -> OrderFile | None:
    """The file staff act on from a backlog list (release, delete), if it exists."""
    return OrderFile.get_or_none(OrderFile.id == file_id)
