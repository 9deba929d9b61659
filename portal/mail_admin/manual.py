"""Sending any template about an order to its customer by hand (seed 004)."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal.mail_admin import bp, fragment, links, settings
from portal.users import staff_required
from shared.db import write_transaction
from shared.errors import Conflict
from shared.mail.templates import (
    TemplateProblem,
    all_templates,
    template_by_id,
)
from shared.models import (
    EmailTemplate,
    Order,
)
from shared.notify.manual import recipient, render_manual, send_manual
from shared.orders.orders import find_order


def _order(project_no: str) -> Order:
    order = find_order(project_no)
    if order is None:
        abort(404)
    return order


def _chosen_template() -> EmailTemplate | None:
    value = request.values.get("template", "")
    return template_by_id(int(value)) if value.isdigit() and len(value) < 19 else None


def _manual_context(order: Order, template: EmailTemplate | None) -> dict:
    context = {"order": order, "template": template, "mail": None, "error": None, "to": None}
    context["templates"] = all_templates()
    try:
        context["to"] = recipient(order)
        if template is not None:
            context["mail"] = render_manual(settings(), links(), template, order, with_link=False)
    except (Conflict, TemplateProblem) as exc:
        context["error"] = str(exc)
    return context


@bp.get("/orders/<project_no>/send")
@staff_required
def manual(project_no: str):
    """Choose a template and see the mail the customer would get."""
    order = _order(project_no)
    context = _manual_context(order, _chosen_template())
    return fragment("staff/mail/_manual_preview.html", "staff/mail/manual.html", **context)


@bp.post("/orders/<project_no>/send")
@staff_required
def send_manual_mail(project_no: str):
    """Send the chosen template to the customer; the template's owner gets a copy."""
    order = _order(project_no)
    template = _chosen_template()
    if template is None:
        abort(400)
    try:
        with write_transaction():
            rows = send_manual(settings(), links(), template, order, current_user.staff)
    except (Conflict, TemplateProblem) as exc:
        context = _manual_context(order, template) | {"error": str(exc)}
        return render_template("staff/mail/manual.html", **context), 422
    current_app.extensions["ptportal.tasks"].deliver_soon()
    flash(_("The mail to %(recipient)s is on its way.", recipient=rows[0].recipients))
    return redirect(url_for("staff.show_order", project_no=project_no))
