"""Staff pages for mail, one module per area: notification events, templates, signatures,
the outbox with bounces and "send now", and manual sends from an order.

All areas share one blueprint, so their endpoints are ``mail_admin.<view>``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from portal.partials import wants_fragment
from shared.accounts.staff import all_staff
from shared.models import StaffUser

bp = Blueprint("mail_admin", __name__, url_prefix="/staff/mail")


def settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def links():
    return current_app.extensions["ptportal.links"]


def fragment(partial: str, page: str, **context):
    """The partial for htmx, the whole page otherwise; caches must keep them apart."""
    response = current_app.make_response(
        render_template(partial if wants_fragment() else page, **context)
    )
    response.headers["Vary"] = "HX-Request"
    return response


def staff_choices() -> list[StaffUser]:
    """Staff users to pick from (a template's owner, a rule's additional staff)."""
    return all_staff()


# Each area registers its views on ``bp`` when imported.
from portal.mail_admin import events, manual, outbox, signatures, templates  # noqa: E402, F401
