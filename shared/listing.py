"""Read-only queries behind the order and file pages: paged, searchable, constant in count."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from math import ceil

from peewee import SQL, fn

from shared.models import Customer, Order, OrderFile
from shared.prepared import Fetched, PreparedSelect
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


# Columns the order lists show; the customer's own list needs no customer columns.
_ORDER_COLUMNS = (Order.id, Order.project_no, Order.job_description, Order.due_date)
_CUSTOMER_COLUMNS = (Customer.id, Customer.customer_no, Customer.name)
# Stand-ins for prepared queries: values no query holds otherwise.
_SOME_CUSTOMER, _SOME_LIMIT, _SOME_OFFSET = -9_000_001, 9_000_003, 9_000_005


def _in_order(query, newest_first: bool):
    if newest_first:
        return query.order_by(Order.created_at.desc(), Order.id.desc())
    return query.order_by(Order.created_at, Order.id)


# Listing without a search is what every visit of the order pages does: prepared, and
# read from whichever end of the index is nearer (OFFSET walks every row it skips).
# COUNT(*) only counts index entries; COUNT(id) reads each one's id (twice the time).
_count_of_customer = PreparedSelect(
    lambda customer_id: (
        Order.select(fn.COUNT(SQL("*"))).where(Order.customer == customer_id).tuples()
    ),
    _SOME_CUSTOMER,
)


def _customer_page(customer_id: int, limit: int, offset: int, newest_first: bool):
    query = Order.select(*_ORDER_COLUMNS).where(Order.customer == customer_id)
    return _in_order(query, newest_first).limit(limit).offset(offset)


def _everybodys_page(limit: int, offset: int, newest_first: bool):
    query = Order.select(*_ORDER_COLUMNS, *_CUSTOMER_COLUMNS).join(Customer)
    return _in_order(query, newest_first).limit(limit).offset(offset)


_page_of_customer = {
    newest_first: PreparedSelect(
        partial(_customer_page, newest_first=newest_first),
        _SOME_CUSTOMER,
        _SOME_LIMIT,
        _SOME_OFFSET,
    )
    for newest_first in (True, False)
}
_count_of_all = PreparedSelect(lambda: Order.select(fn.COUNT(SQL("*"))).tuples())
_page_of_all = {
    newest_first: PreparedSelect(
        partial(_everybodys_page, newest_first=newest_first), _SOME_LIMIT, _SOME_OFFSET
    )
    for newest_first in (True, False)
}


def search_orders(
    customer: Customer | None, query: str = "", page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Orders of ``customer`` (all customers for staff) matching ``query``, newest first."""
    query = query.strip()[:100]
    if query:
        return _search(customer, query, page, per_page)
    return _unfiltered(customer, page, per_page).page()


@dataclass(frozen=True)
class OrderListing:
    """One page of an order list with its orders' states, as the database returned them.

    Equal listings show the same (``shared.prepared.Fetched``): the order pages keep the
    rendered list by it, and build models only to render anew.
    """

    total: int
    number: int
    per_page: int
    newest_first: bool
    orders: Fetched
    folder_states: tuple[tuple, ...] = ()  # (order id, folder, state), see list_orders

    def page(self) -> Page:
        items = self.orders.rows()
        return Page(
            items if self.newest_first else items[::-1], self.total, self.number, self.per_page
        )

    def states(self) -> dict[int, str]:
        """Each listed order's state (see ``order_states``)."""
        return _states_of([row[0] for row in self.orders.raw], self.folder_states)


def list_orders(customer: Customer | None, page: int = 1, per_page: int = PER_PAGE) -> OrderListing:
    """A page of ``customer``'s orders (everybody's for staff), newest first, with states."""
    listing = _unfiltered(customer, page, per_page)
    ids = [row[0] for row in listing.orders.raw]
    return replace(listing, folder_states=_folder_states_of(ids))


def _unfiltered(customer: Customer | None, page: int, per_page: int) -> OrderListing:
    if customer is None:
        total = _count_of_all.first()[0]
    else:
        total = _count_of_customer.first(customer.id)[0]
    number = page_within(page, total, per_page)
    offset = (number - 1) * per_page
    count = max(0, min(per_page, total - offset))
    newest_first = offset <= total - offset - count
    if not newest_first:  # the same rows, counted from the oldest
        offset = total - offset - count
    arguments = (count, offset) if customer is None else (customer.id, count, offset)
    pages = _page_of_all if customer is None else _page_of_customer
    orders = pages[newest_first].fetch(*arguments)
    return OrderListing(total, number, per_page, newest_first, orders)


def _search(customer: Customer | None, query: str, page: int, per_page: int) -> Page:
    orders = Order.select(*_ORDER_COLUMNS, *_CUSTOMER_COLUMNS).join(Customer)
    if customer is not None:
        orders = orders.where(Order.customer == customer)
    # "%" or "_" typed by a user only widen their own search; no escaping needed.
    pattern = f"%{query}%"
    condition = (Order.project_no**pattern) | (Order.job_description**pattern)
    if customer is None:
        condition |= (Customer.name**pattern) | (Customer.customer_no**pattern)
    orders = orders.where(condition)
    total = orders.count()
    number = page_within(page, total, per_page)
    return Page(
        list(_in_order(orders, newest_first=True).paginate(number, per_page)),
        total,
        number,
        per_page,
    )


def page_within(page: int, total: int, per_page: int) -> int:
    """``page`` moved into 1 … the last page of ``total`` items (1 when there are none)."""
    return min(max(page, 1), max(1, ceil(total / per_page)))


def order_states(orders: list[Order]) -> dict[int, str]:
    """Each order's state, from one aggregate query over its files per page of orders."""
    ids = [order.id for order in orders]
    return _states_of(ids, _folder_states_of(ids))


def _folder_states_of(order_ids: list[int]) -> tuple[tuple, ...]:
    """(order id, folder, state) of the orders' files, each combination once."""
    rows: tuple[tuple, ...] = ()
    for start in range(0, len(order_ids), PER_PAGE):
        ids = order_ids[start : start + PER_PAGE]
        # Padded to a full page with ids no order has, so one prepared query fits all.
        rows += _folder_states.fetch(*ids, *_NO_ORDER_IDS[len(ids) :]).raw
    return rows


def _states_of(order_ids: list[int], folder_states: tuple[tuple, ...]) -> dict[int, str]:
    seen: dict[int, set[tuple[str, str]]] = {}
    for order_id, folder, state in folder_states:
        seen.setdefault(order_id, set()).add((folder, state))
    return {order_id: _state(seen.get(order_id, set())) for order_id in order_ids}


_NO_ORDER_IDS = [-9_100_000 - index for index in range(PER_PAGE)]
_folder_states = PreparedSelect(
    lambda *order_ids: (
        OrderFile.select(OrderFile.order, OrderFile.folder, OrderFile.state)
        .where(OrderFile.order.in_(order_ids))
        .group_by(OrderFile.order, OrderFile.folder, OrderFile.state)
        .tuples()
    ),
    *_NO_ORDER_IDS,
)


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


def _files_query(order_id: int, for_customer: bool):
    return (
        OrderFile.select()
        .where(
            (OrderFile.order == order_id)
            & (OrderFile.state != OrderFile.STATE_DELETED)
            & _customer_sees(for_customer)
        )
        .order_by(OrderFile.created_at.desc(), OrderFile.id.desc())
    )


# An order's page and its polling fragment ask for this every few seconds: prepared.
_SOME_ORDER = -9_200_001
_files_for = {
    for_customer: PreparedSelect(partial(_files_query, for_customer=for_customer), _SOME_ORDER)
    for for_customer in (True, False)
}


def order_files(order: Order, for_customer: bool = False) -> Fetched:
    """The order's files that still exist, newest first, as the database returned them."""
    return _files_for[for_customer].fetch(order.id)


def by_folder(files: list[OrderFile]) -> dict[str, list[OrderFile]]:
    """``files`` per folder, every order folder present, in their order."""
    folders: dict[str, list[OrderFile]] = {folder: [] for folder in ORDER_FOLDERS}
    for file in files:
        folders.setdefault(file.folder, []).append(file)
    return folders


def has_open_files(folders: dict[str, list[OrderFile]]) -> bool:
    """True while a listed file is uploading or being scanned (the page keeps polling)."""
    return any(file.state in OrderFile.OPEN_STATES for files in folders.values() for file in files)
