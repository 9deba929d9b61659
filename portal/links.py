"""Links for every row of a list: ``url_for`` once, then only the row's value put in.

``url_for`` matches the endpoint's rules and builds the URL anew for each call (≈ 17 µs);
a list page with a link per row spends more on that than on its query.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, url_for
from werkzeug.routing import BaseConverter

# A number no id reaches: string, path and int converters all pass it through unchanged.
_MARKER = 987_654_321_987_654_321


def link_for(endpoint: str, name: str, **values: object) -> Callable[[object], str]:
    """A function giving ``url_for(endpoint, name=value, **values)`` for each ``value``.

    ``name`` must be a path argument of the endpoint with a string, path or int converter
    (quoted the same way); anything else is refused when the function is made.
    """
    marker = str(_MARKER)
    url = url_for(endpoint, **values, **{name: _MARKER})
    prefix, found, suffix = url.partition(marker)
    if not found or "?" in prefix or marker in suffix:
        raise ValueError(f"{name!r} is not a path argument of {endpoint!r}")
    to_url = BaseConverter(current_app.url_map).to_url

    def link(value: object) -> str:
        return f"{prefix}{to_url(value)}{suffix}"

    return link
