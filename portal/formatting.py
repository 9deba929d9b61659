"""Jinja filters for sizes, dates and times, in the page's language and the shop's time zone.

They call Babel directly with the page's locale and zone, looked up once per rendered
template and handed to the filters in its context: Flask-Babel's own filters look up the
locale, the format and the time zone again for every value (through Flask's context
proxies, ≈ 5 µs each), and a list of files has hundreds. Formatted dates and minutes are
remembered (the texts never change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from babel import Locale, dates, numbers
from flask import Flask, g
from flask_babel import get_locale, get_timezone
from jinja2 import pass_context
from jinja2.runtime import Context

_UNITS = ("B", "KB", "MB", "GB", "TB")


@pass_context
def filesize(context: Context, size: int | None) -> str:
    """A byte count for people: 1,5 MB (German) or 1.5 MB (English), powers of 1024."""
    if size is None:
        return ""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{_one_decimal(value, _format_of(context).locale)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@pass_context
def local_time(context: Context, moment: datetime | None) -> str:
    """A stored UTC time shown in the configured time zone, to the minute."""
    if moment is None:
        return ""
    page = _format_of(context)
    return _minute_text(moment.replace(second=0, microsecond=0), page.zone, page.locale)


@pass_context
def dateformat(context: Context, day: date | None) -> str:
    """A calendar date in the page's language (medium length: 04.05.2026, May 4, 2026)."""
    if day is None:
        return ""
    return _date_text(day, _format_of(context).locale)


@dataclass(frozen=True)
class _PageFormat:
    babel_locale: Locale | None  # the object Flask-Babel handed out (force_locale swaps it)
    locale: str
    zone: tzinfo


# Each rendered template gets its page's format under this name (a context processor);
# macros imported without context do not see it and look it up themselves.
_CONTEXT_KEY = "_page_format"


def _format_of(context: Context) -> _PageFormat:
    page = context.get(_CONTEXT_KEY)
    return page if page is not None else _page_format()


def _page_format() -> _PageFormat:
    babel_locale = get_locale()
    page = g.get("_page_format")
    if page is None or page.babel_locale is not babel_locale:
        page = g._page_format = _PageFormat(babel_locale, str(babel_locale), get_timezone())
    return page


@lru_cache(maxsize=4096)
def _one_decimal(value: float, locale: str) -> str:
    return numbers.format_decimal(value, format="#,##0.0", locale=locale)


@lru_cache(maxsize=4096)
def _minute_text(minute: datetime, zone: tzinfo, locale: str) -> str:
    if minute.tzinfo is None:
        minute = minute.replace(tzinfo=UTC)
    return dates.format_datetime(minute.astimezone(zone), "short", tzinfo=zone, locale=locale)


@lru_cache(maxsize=4096)
def _date_text(day: date, locale: str) -> str:
    return dates.format_date(day, "medium", locale=locale)


def register(app: Flask) -> None:
    app.jinja_env.filters.update(filesize=filesize, local_time=local_time, dateformat=dateformat)
    app.context_processor(lambda: {_CONTEXT_KEY: _page_format()})
