"""Read-only queries behind the order and file pages: paged, searchable, constant in count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.files.access import visible_to_customer
from shared.files.folders import FOLDER_FINAL, FOLDER_INCOMING, ORDER_FOLDERS
from shared.models import Customer, FileEvent, Order, OrderFile, StaffUser
from shared.paging import PER_PAGE, Page, page_within

ORDER_WAITING = "waiting_for_data"
ORDER_CHECKING = "checking"
ORDER_RECEIVED = "data_received"
ORDER_FINAL = "final_ready"
ORDER_CLOSED = Order.STATE_CLOSED
ORDER_CANCELLED = Order.STATE_CANCELLED
MAX_PER_PAGE = 200
# The staff overview shows the newest orders only, a page at a time; the orders page has all.
OVERVIEW_ORDERS = 10


# What the order lists show: rows with only these are half the work of whole models.
_LISTED = (Order.id, Order.project_no, Order.job_description, Order.due_date, Order.state)


def search_orders(
    customer: Customer | None, query: str = "", page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Orders of ``customer`` (all customers for staff) matching ``query``, newest first."""
    query = query.strip()[:100]
    if customer is None:
        orders = Order.select(*_LISTED, Customer.customer_no, Customer.name).join(Customer)
    else:
        orders = Order.select(*_LISTED).where(Order.customer == customer)
    if query:
        # "%" or "_" typed by a user only widen their own search; no escaping needed.
        pattern = f"%{query}%"
        condition = (Order.project_no**pattern) | (Order.job_description**pattern)
        if customer is None:
            condition |= (Customer.name**pattern) | (Customer.customer_no**pattern)
        orders = orders.where(condition)
        total = orders.count()
    else:
        # Every order has a customer: the count needs no join.
        everybody = Order.select()
        total = (everybody if customer is None else orders).count()
    number = page_within(page, total, per_page)
    newest_first = orders.order_by(Order.created_at.desc(), Order.id.desc())
    return Page(list(newest_first.paginate(number, per_page)), total, number, per_page)


@dataclass(frozen=True)
class OrderFilter:
    """What staff and the API narrow the order list to; empty fields do not narrow."""

    query: str = ""
    customer_no: str = ""
    state: str = ""
    owner: str = ""
    due_from: date | None = None
    due_until: date | None = None


NO_OWNER = "-"


def filter_orders(filters: OrderFilter, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Orders matching ``filters``, newest first, with their customer (and owner)."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    orders = Order.select(Order, Customer).join(Customer)
    conditions = []
    query = filters.query.strip()[:100]
    if query:
        pattern = f"%{query}%"
        conditions.append(
            (Order.project_no**pattern)
            | (Order.job_description**pattern)
            | (Customer.name**pattern)
            | (Customer.customer_no**pattern)
        )
    if filters.customer_no:
        conditions.append(Customer.customer_no == filters.customer_no)
    if filters.state in Order.STATES:
        conditions.append(Order.state == filters.state)
    if filters.owner == NO_OWNER:
        conditions.append(Order.owner.is_null())
    elif filters.owner:
        owner = StaffUser.select(StaffUser.id).where(StaffUser.username == filters.owner)
        conditions.append(Order.owner.in_(owner))
    if filters.due_from is not None:
        conditions.append(Order.due_date >= filters.due_from)
    if filters.due_until is not None:
        conditions.append(Order.due_date <= filters.due_until)
    if conditions:
        orders = orders.where(*conditions)
    total = orders.count()
    number = page_within(page, total, per_page)
    newest_first = orders.order_by(Order.created_at.desc(), Order.id.desc())
    return Page(list(newest_first.paginate(number, per_page)), total, number, per_page)


def order_states(orders: list[Order]) -> dict[int, str]:
    """Each order's state, from one aggregate query over the files of the listed orders.

    A closed or cancelled order shows just that, whatever its files.
    """
    ids = [order.id for order in orders]
    seen: dict[int, set[tuple[str, str]]] = {order_id: set() for order_id in ids}
    if ids:
        folder_states = (
            OrderFile.select(OrderFile.order, OrderFile.folder, OrderFile.state)
            .where(OrderFile.order.in_(ids))
            .group_by(OrderFile.order, OrderFile.folder, OrderFile.state)
            .tuples()
        )
        for order_id, folder, state in folder_states:
            seen[order_id].add((folder, state))
    states = {order_id: _state(folders) for order_id, folders in seen.items()}
    for order in orders:
        if not order.is_open:
            states[order.id] = order.state
    return states


def _state(seen: set[tuple[str, str]]) -> str:
    if (FOLDER_FINAL, OrderFile.STATE_CLEAN) in seen:
        return ORDER_FINAL
    if any(state in OrderFile.OPEN_STATES for _folder, state in seen):
        return ORDER_CHECKING
    if (FOLDER_INCOMING, OrderFile.STATE_CLEAN) in seen:
        return ORDER_RECEIVED
    return ORDER_WAITING


# What a folder listing shows of each file, and what decides whether it may be downloaded.
_LISTED_FILE = (
    OrderFile.id,
    OrderFile.order,
    OrderFile.folder,
    OrderFile.display_name,
    OrderFile.stored_name,
    OrderFile.size,
    OrderFile.received_bytes,
    OrderFile.state,
    OrderFile.signature,
    OrderFile.created_at,
    OrderFile.received_at,
    OrderFile.released_at,
    OrderFile.scanned_at,
    OrderFile.upload_key,
    OrderFile.preflight_status,
    OrderFile.preflight_report,
)


def order_files(order: Order, for_customer: bool = False) -> list[OrderFile]:
    """The order's files that still exist, newest first (what the viewer may see)."""
    condition = (OrderFile.order == order) & (OrderFile.state != OrderFile.STATE_DELETED)
    if for_customer:
        condition &= visible_to_customer()
    newest_first = OrderFile.select(*_LISTED_FILE).where(condition)
    return list(newest_first.order_by(OrderFile.created_at.desc(), OrderFile.id.desc()))


def by_folder(files: list[OrderFile]) -> dict[str, list[OrderFile]]:
    """``files`` per folder, every order folder present, in their order."""
    folders: dict[str, list[OrderFile]] = {folder: [] for folder in ORDER_FOLDERS}
    for file in files:
        folders.setdefault(file.folder, []).append(file)
    return folders


def has_open_files(folders: dict[str, list[OrderFile]]) -> bool:
    """True while a listed file is uploading, being scanned or waiting for its preflight
    (the page keeps polling)."""
    return any(
        file.state in OrderFile.OPEN_STATES
        or (
            file.state == OrderFile.STATE_CLEAN
            and file.preflight_status == OrderFile.PREFLIGHT_PENDING
        )
        for files in folders.values()
        for file in files
    )


def file_history(order: Order, limit: int = 50) -> list[FileEvent]:
    """What happened to the order's files (rejections, releases, deletions), newest first."""
    return list(
        FileEvent.select(FileEvent, OrderFile)
        .join(OrderFile)
        .where(OrderFile.order == order)
        .order_by(FileEvent.created_at.desc())
        .limit(limit)
    )
