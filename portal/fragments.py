"""Rendered lists kept per worker and found again by everything they show.

A list fragment (the order list, an order's files, the hotfolder's uploads) is a pure
function of its template, the page's language and the rows it lists. The key is exactly
that, with the rows as the database returned them, so a changed row is a new key: no
entry is ever stale and nothing needs invalidating. A hit skips building row objects and
rendering, which is most of such a page's cost (see bench/README.md).

Only templates that read nothing else may be kept: no ``current_user``, no ``request``,
no CSRF token, no time of day.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import Flask, current_app, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

EXTENSION = "ptportal.fragments"
DEFAULT_BUDGET_BYTES = 4 * 1024 * 1024


class FragmentCache:
    """Least recently used fragments up to ``budget_bytes`` of text; safe across threads."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._entries: OrderedDict[bytes, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Markup | None:
        with self._lock:
            html = self._entries.get(key)
            if html is not None:
                self._entries.move_to_end(key)
            return html

    def put(self, key: bytes, html: Markup) -> None:
        size = sys.getsizeof(html)
        if size > self.budget_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.used_bytes -= sys.getsizeof(previous)
            self._entries[key] = html
            self.used_bytes += size
            while self.used_bytes > self.budget_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.used_bytes -= sys.getsizeof(dropped)


def install(app: Flask, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
    app.extensions[EXTENSION] = FragmentCache(budget_bytes)


def rendered(template: str, shown: object, context: Callable[[], dict]) -> Markup:
    """``template`` rendered with ``context()``, or the same text kept from before.

    ``shown`` must hold everything the template shows besides texts in the page's
    language: the rows as fetched (``shared.prepared.Fetched``), numbers, names.
    """
    cache: FragmentCache = current_app.extensions[EXTENSION]
    key = _key(template, shown)
    html = cache.get(key)
    if html is None:
        html = Markup(render_template(template, **context()))
        cache.put(key, html)
    return html


def _key(template: str, shown: object) -> bytes:
    # A digest, so an entry costs its text and 32 bytes, not a copy of its rows. The repr
    # of rows (str, int, date, None, …) spells every value out unambiguously.
    described = repr((template, str(get_locale()), request.script_root, shown))
    return hashlib.blake2b(described.encode(), digest_size=32).digest()
