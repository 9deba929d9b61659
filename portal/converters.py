"""URL converters that refuse, with a 404, what no row can match.

- ``int``: at most 2**63 - 1, the largest id a database column holds; a larger number
  would make the database driver fail (a 500) instead of finding nothing.
- ``default``/``string``: a path segment without control characters: no customer or order
  number contains one, and PostgreSQL refuses a NUL in a query.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter

LARGEST_ID = 2**63 - 1


class DatabaseId(IntegerConverter):
    """A non-negative integer a 64-bit database column can hold."""

    def __init__(self, map: Map, *args, **kwargs) -> None:
        super().__init__(map, *args, **kwargs)
        if self.max is None:
            self.max = LARGEST_ID


class Segment(UnicodeConverter):
    """One path segment without control characters."""

    def __init__(self, map: Map, *args, **kwargs) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f]", 1)


def register(app: Flask) -> None:
    """Install the converters on ``app``; before any route is added."""
    app.url_map.converters.update(int=DatabaseId, default=Segment, string=Segment)
