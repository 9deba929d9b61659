"""Rendered lists kept per worker and found again by everything they show.

A list fragment (the order list, an order's files, the hotfolder's uploads) is a pure
function of its template, the page's language and what it lists. The key is exactly
that: the rows as the database returned them, or the version the database keeps of a
list (``shared.list_versions``). A changed row or version is a new key, so no entry is
ever stale and nothing needs invalidating. A hit skips building row objects and
rendering, which is most of such a page's cost (see bench/README.md). Keys are compared
by value, not digested: hashing plain values costs far less than spelling them out.

Only templates that read nothing else may be kept: no ``current_user``, no ``request``,
no CSRF token, no time of day.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from typing import ClassVar

from flask import Flask, current_app, render_template, request
from flask_babel import get_locale
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from shared.prepared import Fetched

EXTENSION = "ptportal.fragments"
DEFAULT_BUDGET_BYTES = 4 * 1024 * 1024


class FragmentCache:
    """Least recently used fragments up to ``budget_bytes`` (text and keys); thread-safe."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._entries: OrderedDict[Hashable, tuple[Markup, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Markup | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, html: Markup) -> None:
        size = sys.getsizeof(html) + _footprint(key)
        if size > self.budget_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.used_bytes -= previous[1]
            self._entries[key] = (html, size)
            self.used_bytes += size
            while self.used_bytes > self.budget_bytes:
                _, (_dropped, dropped_size) = self._entries.popitem(last=False)
                self.used_bytes -= dropped_size


def _footprint(value: object) -> int:
    """Bytes held by a key: its tuples and the values in them."""
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(_footprint(item) for item in value)
    return sys.getsizeof(value)


def install(app: Flask, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
    app.extensions[EXTENSION] = FragmentCache(budget_bytes)
    app.jinja_env.add_extension(KeptParts)


def rendered(template: str, shown: object, context: Callable[[], dict]) -> Markup:
    """``template`` rendered with ``context()``, or the same text kept from before.

    ``shown`` must hold everything the template shows besides texts in the page's
    language: the rows as fetched (``shared.prepared.Fetched``) or a list version,
    numbers, names; in tuples, dicts or frozen dataclasses.
    """
    return _kept((template, _plain(shown)), lambda: render_template(template, **context()))


def _kept(shown: tuple, render: Callable[[], str]) -> Markup:
    cache: FragmentCache = current_app.extensions[EXTENSION]
    key = (*shown, str(get_locale()), request.script_root)
    html = cache.get(key)
    if html is None:
        html = Markup(render())
        cache.put(key, html)
    return html


class KeptParts(Extension):
    """``{% kept "name", value, … %}…{% endkept %}``: a part of a page, rendered once.

    The part is kept by its template, name and values, the page's language and the
    script root, like the lists above. It may show only those values, texts, URLs and
    the shop's settings: never a CSRF token, the user, a flashed message or the time.
    """

    tags: ClassVar[set[str]] = {"kept"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        shown: list[nodes.Expr] = [nodes.Const(parser.name), parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            shown.append(parser.parse_expression())
        body = parser.parse_statements(("name:endkept",), drop_needle=True)
        call = self.call_method("_part", [nodes.Tuple(shown, "load")])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _part(self, shown: tuple, caller: Callable[[], str]) -> Markup:
        return _kept(_plain(shown), caller)


def _plain(shown: object) -> Hashable:
    """``shown`` as tuples of plain values: the rows, not the query objects around them."""
    if isinstance(shown, Fetched):
        return shown.raw
    if isinstance(shown, tuple):
        return tuple(_plain(item) for item in shown)
    if isinstance(shown, dict):
        return tuple((name, _plain(value)) for name, value in shown.items())
    if is_dataclass(shown):
        return (type(shown).__name__, *(_plain(getattr(shown, f.name)) for f in fields(shown)))
    return shown
