"""What list views share: whether htmx wants the partial, which page, order lists, folders."""

from flask import render_template, request
from markupsafe import Markup

from portal.extensions import htmx
from shared.accounts.defaults import portal_shows
from shared.files.folders import ORDER_FOLDERS
from shared.models import Customer, Order
from shared.orders.listing import (
    by_folder,
    has_open_files,
    order_files,
    order_states,
    search_orders,
)
from shared.paging import PER_PAGE


def wants_fragment() -> bool:
    """True for htmx asking for a partial; a history restore (cache miss) needs the full page."""
    return bool(htmx) and not htmx.history_restore_request


def page_number() -> int:
    """The ``page`` query argument, 1 when missing or not a positive number."""
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def order_list(
    template: str, customer: Customer | None, query: str, per_page: int = PER_PAGE
) -> Markup:
    """A page of ``customer``'s orders (everybody's for staff) rendered with ``template``."""
    page = search_orders(customer, query, page_number(), per_page)
    states = order_states(page.items)
    # What a customer's list shows is configured; staff see every column, without asking.
    shows = portal_shows() if customer is not None else None
    return Markup(render_template(template, page=page, query=query, states=states, shows=shows))


def folder_listing(order: Order, for_customer: bool) -> dict:
    """What ``orders/_files.html`` needs: the folders' files and whether to keep polling."""
    folders = by_folder(order_files(order, for_customer))
    return {
        "order": order,
        "folders": folders,
        "polling": has_open_files(folders),
        "folder_names": ORDER_FOLDERS,
    }
