"""What list views share: whether htmx wants the partial, which page, order lists, folders."""

from flask import render_template, request
from markupsafe import Markup

from portal import fragments
from portal.extensions import htmx
from shared.listing import (
    OrderListing,
    by_folder,
    has_open_files,
    list_orders,
    order_files,
    order_states,
    search_orders,
)
from shared.models import Customer, Order
from shared.storage import ORDER_FOLDERS


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
    template: str, customer: Customer | None, query: str, version: int | None = None
) -> Markup:
    """A page of ``customer``'s orders (everybody's for staff) rendered with ``template``.

    Search results are rendered anew. The unfiltered list is kept: a customer's under
    the ``version`` of their order list (``shared.list_versions``), so a kept page needs
    no query at all; staff's, or one without a version, under its rows as fetched.
    """
    if query:
        page = search_orders(customer, query, page_number())
        states = order_states(page.items)
        return Markup(render_template(template, page=page, query=query, states=states))
    number = page_number()
    if customer is not None and version is not None:
        return fragments.rendered(
            template,
            ("order list version", customer.id, version, number),
            lambda: _listing_context(list_orders(customer, number)),
        )
    listing = list_orders(customer, number)
    return fragments.rendered(
        template, (customer.id if customer else None, listing), lambda: _listing_context(listing)
    )


def _listing_context(listing: OrderListing) -> dict:
    return {"page": listing.page(), "query": "", "states": listing.states()}


def folder_listing(order: Order, for_customer: bool) -> dict:
    """What ``orders/_files.html`` needs: the folders' files and whether to keep polling."""
    return listing_of_files(order, order_files(order, for_customer).rows())


def listing_of_files(order: Order, files: list) -> dict:
    """``folder_listing`` for files already read."""
    folders = by_folder(files)
    return {
        "order": order,
        "folders": folders,
        "polling": has_open_files(folders),
        "folder_names": ORDER_FOLDERS,
    }
