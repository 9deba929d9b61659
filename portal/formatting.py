"""Jinja filters for sizes, dates and times, in the page's language and the shop's time zone."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask
from flask_babel import format_date, format_datetime, format_decimal, get_locale

from shared.files.findings import Finding
from shared.files.messages import describe

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
            return f"{format_decimal(value, format='#,##0.0')} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def local_time(moment: datetime | None) -> str:
    """A stored UTC time shown in the configured time zone, to the minute."""
    if moment is None:
        return ""
    return format_datetime(moment.replace(second=0, microsecond=0), "short")


def dateformat(day: date | None) -> str:
    """A calendar date in the page's language (medium length: 04.05.2026, May 4, 2026)."""
    if day is None:
        return ""
    return format_date(day, "medium")


def millimetres(value: float | None) -> str:
    """A length in mm for people: 210, 297, 3,5 (German) or 3.5 (English)."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.#")


def finding_text(finding: Finding) -> str:
    """A preflight or file-type finding as one sentence in the page's language."""
    return describe(finding, str(get_locale()))


def register(app: Flask) -> None:
    app.jinja_env.filters.update(
        filesize=filesize,
        local_time=local_time,
        dateformat=dateformat,
        mm=millimetres,
        finding_text=finding_text,
    )
