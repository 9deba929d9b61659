"""What list views share: whether htmx wants the partial, which page, an order's folders."""

from flask import request

from portal.extensions import htmx
from shared.listing import files_by_folder, has_open_files
from shared.models import Order
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


def folder_listing(order: Order, for_customer: bool) -> dict:
    """What ``orders/_files.html`` needs: the folders' files and whether to keep polling."""
    folders = files_by_folder(order, for_customer=for_customer)
    return {
        "order": order,
        "folders": folders,
        "polling": has_open_files(folders),
        "folder_names": ORDER_FOLDERS,
    }
