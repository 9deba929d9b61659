"""What an order says about its print data: trim size and page count.

The preflight compares every file of the order's ``Eingehend`` with them and warns about a
mismatch (``shared.files.preflight.expectations``; the trim size in either orientation,
within ``[preflight] trim_tolerance_mm``). Both are optional; the workflow API and the staff
order page set them, and a change has the order's checked files preflighted again.

A trim size is written ``210 x 297`` (mm, width × height; ``×`` and ``,`` work too) or as
a DIN A name (``A4``).
"""

from __future__ import annotations

import re

from shared.db import write_transaction
from shared.errors import Invalid
from shared.files.preflighting import preflight_again
from shared.models import Order

DIN_A = {
    "A0": (841.0, 1189.0),
    "A1": (594.0, 841.0),
    "A2": (420.0, 594.0),
    "A3": (297.0, 420.0),
    "A4": (210.0, 297.0),
    "A5": (148.0, 210.0),
    "A6": (105.0, 148.0),
    "A7": (74.0, 105.0),
}
MAX_SIDE_MM = 10_000.0
MAX_PAGES = 100_000
_SIZE = re.compile(r"(\d{1,5}(?:[.,]\d{1,2})?)\s*[x×X*]\s*(\d{1,5}(?:[.,]\d{1,2})?)(?:\s*mm)?")
TRIM_SIZE_FORMAT = "width x height in mm, like 210 x 297, or A0 to A7; empty for none"


def parse_trim_size(text: str, field: str = "trim_size") -> tuple[float, float] | None:
    """``"210 x 297"`` → ``(210.0, 297.0)``; ``"A5"`` → ``(148.0, 210.0)``; ``""`` → None."""
    text = text.strip()
    if not text:
        return None
    if text.upper() in DIN_A:
        return DIN_A[text.upper()]
    match = _SIZE.fullmatch(text)
    if match is None:
        raise Invalid(field, TRIM_SIZE_FORMAT)
    width, height = (float(value.replace(",", ".")) for value in match.groups())
    if not (0 < width <= MAX_SIDE_MM and 0 < height <= MAX_SIDE_MM):
        raise Invalid(field, f"each side from 0.01 to {MAX_SIDE_MM:g} mm")
    return width, height


def trim_size_text(order: Order) -> str:
    """The order's trim size as ``210 x 297`` (mm), or "" when it names none."""
    if order.trim_width_mm is None or order.trim_height_mm is None:
        return ""
    return f"{order.trim_width_mm:g} x {order.trim_height_mm:g}"


def check_page_count(value: int | None, field: str = "page_count") -> int | None:
    """A page count from 1 to ``MAX_PAGES``; 0 or None: the order names none."""
    if not value:
        return None
    if not 1 <= value <= MAX_PAGES:
        raise Invalid(field, f"a whole number from 1 to {MAX_PAGES} (0: none)")
    return value


def apply_print_spec(
    order: Order, trim_size: tuple[float, float] | None, page_count: int | None
) -> bool:
    """Set both on ``order`` (inside the caller's transaction); True when anything changed."""
    width, height = trim_size if trim_size else (None, None)
    changed = (order.trim_width_mm, order.trim_height_mm, order.page_count) != (
        width,
        height,
        page_count,
    )
    order.trim_width_mm, order.trim_height_mm, order.page_count = width, height, page_count
    return changed


def set_print_spec(
    order: Order, trim_size: tuple[float, float] | None, page_count: int | None
) -> list[int]:
    """Store the order's trim size and page count; returns the files to preflight again."""
    with write_transaction():
        order = Order.get_by_id(order.id)
        if not apply_print_spec(order, trim_size, check_page_count(page_count)):
            return []
        order.save(only=[Order.trim_width_mm, Order.trim_height_mm, Order.page_count])
        return preflight_again(order)


def update_print_spec(order: Order, values: dict) -> list[int]:
    """``set_print_spec`` with only what ``values`` names (``trim_size``: text, "" clears;
    ``page_count``: 0 clears); returns the files to preflight again."""
    if "trim_size" in values:
        trim_size = parse_trim_size(values["trim_size"])
    elif order.trim_width_mm is not None and order.trim_height_mm is not None:
        trim_size = (order.trim_width_mm, order.trim_height_mm)
    else:
        trim_size = None
    page_count = values.get("page_count", order.page_count)
    return set_print_spec(order, trim_size, check_page_count(page_count))
