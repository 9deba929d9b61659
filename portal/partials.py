"""What list views share: whether htmx wants the partial, and which page is asked for."""

from flask import request

from portal.extensions import htmx


def wants_fragment() -> bool:
    """True for htmx asking for a partial; a history restore (cache miss) needs the full page."""
    return bool(htmx) and not htmx.history_restore_request


def page_number() -> int:
    """The ``page`` query argument, 1 when missing or not a positive number."""
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1
