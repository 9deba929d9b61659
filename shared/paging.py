"""Lists shown a page at a time: which page, and how many there are."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

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


def page_within(page: int, total: int, per_page: int) -> int:
    """``page`` moved into 1 … the last page of ``total`` items (1 when there are none)."""
    return min(max(page, 1), max(1, ceil(total / per_page)))
