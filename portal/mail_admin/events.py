"""Notification events: each event's rule, and a customer's own rule."""

from __future__ import annotations

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from portal.mail_admin import bp, staff_choices
from portal.users import staff_required
from shared.accounts.customers import get_customer
from shared.accounts.staff import staff_by_ids
from shared.db import write_transaction
from shared.errors import Invalid, NotFound
from shared.events import EVENTS
from shared.mail.outbox_admin import counts
from shared.mail.templates import template_ids_by_name, template_names
from shared.models import (
    NotificationRule,
)
from shared.notify.rules import (
    customer_override,
    delete_override,
    extra_staff_of,
    global_rule,
    overrides,
    save_rule,
)


def _event(kind: str):
    if kind not in EVENTS:
        abort(404)
    return EVENTS[kind]


# --- notification events -------------------------------------------------------


@bp.get("/")
@staff_required
def index():
    """Every event that sends mail, with its rule; links to the other mail pages."""
    rules = {kind: global_rule(kind) for kind in EVENTS}
    return render_template(
        "staff/mail/index.html",
        events=EVENTS,
        rules=rules,
        extra_staff={kind: extra_staff_of(rule) for kind, rule in rules.items()},
        override_counts={kind: len(overrides(kind)) for kind in EVENTS},
        template_ids=template_ids_by_name(),
        outbox_counts=counts(),
    )


def _rule_form() -> dict:
    staff_ids = {int(value) for value in request.form.getlist("extra_staff") if value.isdigit()}
    return {
        "active": request.form.get("active") == "1",
        "roles": request.form.getlist("roles"),
        "extra_staff": staff_by_ids(staff_ids),
        "extra_addresses": request.form.get("extra_addresses", ""),
        "template_name": request.form.get("template_name", ""),
    }


def _render_event(kind: str, rule: NotificationRule, customer=None, error=None, status=200):
    return (
        render_template(
            "staff/mail/event.html",
            event=_event(kind),
            rule=rule,
            customer=customer,
            chosen_staff={staff.id for staff in extra_staff_of(rule)},
            staff_choices=staff_choices(),
            template_names=template_names(),
            template_ids=template_ids_by_name(),
            overrides=overrides(kind) if customer is None else [],
            roles=NotificationRule.ROLES,
            error=error,
        ),
        status,
    )


@bp.get("/events/<kind>")
@staff_required
def event(kind: str):
    """One event's rule for everybody, and the customers that have their own."""
    _event(kind)
    return _render_event(kind, global_rule(kind))


@bp.post("/events/<kind>")
@staff_required
def save_event(kind: str):
    """Store the rule for everybody."""
    _event(kind)
    try:
        with write_transaction():
            save_rule(kind, None, **_rule_form())
    except Invalid as exc:
        return _render_event(kind, global_rule(kind), error=exc.message, status=422)
    flash(_("The notification settings were saved."))
    return redirect(url_for("mail_admin.event", kind=kind))


def _customer_or_404(customer_no: str):
    try:
        return get_customer(customer_no)
    except NotFound:
        abort(404)


@bp.get("/events/<kind>/customers")
@staff_required
def find_override(kind: str):
    """Go to a customer's override form by customer number."""
    customer_no = request.args.get("customer_no", "").strip()
    _event(kind)
    _customer_or_404(customer_no)
    return redirect(url_for("mail_admin.override", kind=kind, customer_no=customer_no))


@bp.get("/events/<kind>/customers/<customer_no>")
@staff_required
def override(kind: str, customer_no: str):
    """A customer's own rule (prefilled from the global one until saved)."""
    _event(kind)
    customer = _customer_or_404(customer_no)
    rule = customer_override(kind, customer) or global_rule(kind)
    return _render_event(kind, rule, customer=customer)


@bp.post("/events/<kind>/customers/<customer_no>")
@staff_required
def save_override(kind: str, customer_no: str):
    """Store a customer's own rule."""
    _event(kind)
    customer = _customer_or_404(customer_no)
    try:
        with write_transaction():
            save_rule(kind, customer, **_rule_form())
    except Invalid as exc:
        rule = customer_override(kind, customer) or global_rule(kind)
        return _render_event(kind, rule, customer=customer, error=exc.message, status=422)
    flash(_("The settings for this customer were saved."))
    return redirect(url_for("mail_admin.event", kind=kind))


@bp.post("/events/<kind>/customers/<customer_no>/delete")
@staff_required
def delete_customer_override(kind: str, customer_no: str):
    """Drop a customer's own rule; the rule for everybody applies again."""
    _event(kind)
    customer = _customer_or_404(customer_no)
    with write_transaction():
        delete_override(kind, customer)
    flash(_("The customer now follows the settings for everybody."))
    return redirect(url_for("mail_admin.event", kind=kind))
