"""Staff forms: read and check what was typed, answer inline without losing it.

A view reads each field through a ``Form`` (which remembers the typed text and a
message per field), calls the domain function when the form is fine, and files a
domain refusal under its field with ``form.refuse``. ``reply`` answers a form with
problems: for htmx the form partial alone with status 200 (htmx 2 swaps no 4xx, see
NOTES.md), for a plain post the whole page with 422. ``done`` answers a stored form:
htmx follows ``HX-Redirect``, a browser the 303.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Response, redirect, render_template
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from portal.partials import wants_fragment
from shared.errors import Invalid
from shared.mail.addresses import check_email

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Form:
    """The typed values of one form and a message per field that is not acceptable."""

    def __init__(self, data: MultiDict | dict | None = None) -> None:
        self.data = data if data is not None else MultiDict()
        self.errors: dict[str, str] = {}

    def value(self, name: str, default: str = "") -> str:
        """What was typed (for showing the form again)."""
        return self.data.get(name, default)

    def checked(self, name: str) -> bool:
        return self.data.get(name) in ("1", "on", "true")

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(self, name: str, *, required: bool = False, max_length: int = 200) -> str:
        value = self.value(name).strip()
        if required and not value:
            self.error(name, _("Please fill this in."))
        elif len(value) > max_length:
            self.error(name, _("At most %(count)d characters.", count=max_length))
        elif value and not value.replace("\n", "").replace("\r", "").isprintable():
            self.error(name, _("Please use printable characters only."))
        return value

    def email(self, name: str, *, required: bool = False) -> str:
        value = self.value(name).strip()
        if not value:
            if required:
                self.error(name, _("Please fill this in."))
            return ""
        try:
            return check_email(name, value)
        except Invalid:
            self.error(name, _("This is not an email address."))
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.value(name).strip()
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.error(name, _("A whole number from %(low)d to %(high)d.", low=low, high=high))
            return None
        return number

    def date(self, name: str) -> date | None:
        value = self.value(name).strip()
        if not value:
            return None
        if _DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(name, _("A date like 2026-12-31."))
        return None

    def choice(self, name: str, choices: tuple[str, ...] | list[str], default: str = "") -> str:
        value = self.value(name, default)
        if value not in choices:
            self.error(name, _("Please choose one of the options."))
        return value

    def refuse(self, name: str, message: str) -> None:
        """A refusal of the domain (duplicate number, …) filed under its field."""
        self.error(name, message)


def reply(partial: str, page: str, **context) -> tuple[str, int]:
    """A form with problems, again, as typed: the partial for htmx (200), else the page (422)."""
    if wants_fragment():
        return render_template(partial, **context), 200
    return render_template(page, **context), 422


def done(url: str) -> Response:
    """After storing: go to ``url`` (htmx by its header, a browser by a 303)."""
    if wants_fragment():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)
