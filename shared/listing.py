"""Read-only queries behind the order and file pages: paged, searchable, constant in count."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from peewee import fn

from shared.models import Customer, Order, OrderFile
from shared.storage import FOLDER_FINAL, FOLDER_INCOMING, ORDER_FOLDERS

ORDER_WAITING = "waiting_for_data"
ORDER_CHECKING = "checking"
ORDER_RECEIVED = "data_received"
ORDER_FINAL = "final_ready"

PER_PAGE = 25


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    number: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def search_orders(
    customer: Customer | None, query: str = "", page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Orders of ``customer`` (all customers for staff) matching ``query``, newest first."""
    orders = Order.select(Order, Customer).join(Customer)
    if customer is not None:
        orders = orders.where(Order.customer == customer)
    query = query.strip()[:100]
    if query:
        # "%" or "_" typed by a user only widen their own search; no escaping needed.
        pattern = f"%{query}%"
        condition = (Order.project_no**pattern) | (Order.job_description**pattern)
        if customer is None:
            condition |= (Customer.name**pattern) | (Customer.customer_no**pattern)
        orders = orders.where(condition)
    total = orders.count()
    number = min(max(page, 1), max(1, ceil(total / per_page)))
    items = list(
        orders.order_by(Order.created_at.desc(), Order.id.desc()).paginate(number, per_page)
    )
    return Page(items, total, number, per_page)


def order_states(orders: list[Order]) -> dict[int, str]:
    """Each order's state, from one aggregate query over its files."""
    if not orders:
        return {}
    rows = (
        OrderFile.select(OrderFile.order, OrderFile.folder, OrderFile.state, fn.COUNT(OrderFile.id))
        .where(OrderFile.order.in_([order.id for order in orders]))
        .group_by(OrderFile.order, OrderFile.folder, OrderFile.state)
        .tuples()
    )
    seen: dict[int, set[tuple[str, str]]] = {}
    for order_id, folder, state, _count in rows:
        seen.setdefault(order_id, set()).add((folder, state))
    return {order.id: _state(seen.get(order.id, set())) for order in orders}


def _state(seen: set[tuple[str, str]]) -> str:
    if (FOLDER_FINAL, OrderFile.STATE_CLEAN) in seen:
        return ORDER_FINAL
    if any(state in OrderFile.OPEN_STATES for _folder, state in seen):
        return ORDER_CHECKING
    if (FOLDER_INCOMING, OrderFile.STATE_CLEAN) in seen:
        return ORDER_RECEIVED
    return ORDER_WAITING


def _customer_sees(for_customer: bool):
    """Customers see everything in Eingehend (their own uploads) but only clean staff files."""
    if not for_customer:
        return True
    return (OrderFile.folder == FOLDER_INCOMING) | (OrderFile.state == OrderFile.STATE_CLEAN)


def files_by_folder(order: Order, for_customer: bool = False) -> dict[str, list[OrderFile]]:
    """The order's files that still exist, per folder, newest first."""
    folders: dict[str, list[OrderFile]] = {folder: [] for folder in ORDER_FOLDERS}
    files = (
        OrderFile.select()
        .where(
            (OrderFile.order == order)
            & (OrderFile.state != OrderFile.STATE_DELETED)
            & _customer_sees(for_customer)
        )
        .order_by(OrderFile.created_at.desc(), OrderFile.id.desc())
    )
    for file in files:
        folders.setdefault(file.folder, []).append(file)
    return folders


def has_open_files(order: Order, for_customer: bool = False) -> bool:
    """True while a file of the order (that the viewer sees) is uploading or being scanned."""
    return (
        OrderFile.select()
        .where(
            (OrderFile.order == order)
            & OrderFile.state.in_(OrderFile.OPEN_STATES)
            & _customer_sees(for_customer)
        )
        .exists()
    )


def backlog() -> dict[str, list[OrderFile]]:
    """What staff must watch: files waiting for clamd, held as too large, recently rejected."""
    base = OrderFile.select(OrderFile, Order, Customer).join(Order).join(Customer)
    return {
        "waiting": list(
            base.where(OrderFile.state.in_([OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING]))
            .order_by(OrderFile.received_at)
            .limit(200)
        ),
        "held": list(
            base.where(OrderFile.state == OrderFile.STATE_TOO_LARGE)
            .order_by(OrderFile.received_at)
            .limit(200)
        ),
        "rejected": list(
            base.where(OrderFile.state == OrderFile.STATE_REJECTED)
            .order_by(OrderFile.scanned_at.desc())
            .limit(50)
        ),
    }
