"""Jinja filters for sizes, dates and times, in the page's language and the shop's time zone.

They call Babel directly with the page's locale and zone, looked up once per page:
Flask-Babel's own filters look up the locale, the format and the time zone again for
every value, and a list of files has hundreds. Formatted dates and minutes are
remembered (the texts never change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from babel import Locale, dates, numbers
from flask import Flask, g
from flask_babel import get_locale, get_timezone

_UNITS = ("B", "KB", "MB", "GB", "TB")


def filesize(size: int | None) -> str:
    """A byte count for people: 1,5 MB (German) or 1.5 MB (English), powers of 1024."""
    if size is None:
        return ""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{_one_decimal(value, _page_format().locale)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def local_time(moment: datetime | None) -> str:
    """A stored UTC time shown in the configured time zone, to the minute."""
    if moment is None:
        return ""
    page = _page_format()
    return _minute_text(moment.replace(second=0, microsecond=0), page.zone, page.locale)


def dateformat(day: date | None) -> str:
    """A calendar date in the page's language (medium length: 04.05.2026, May 4, 2026)."""
    if day is None:
        return ""
    return _date_text(day, _page_format().locale)


@dataclass(frozen=True)
class _PageFormat:
    babel_locale: Locale | None  # the object Flask-Babel handed out (force_locale swaps it)
    locale: str
    zone: tzinfo


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
