"""Staff on an order page: what the print data should be (trim size, page count), and asking
the customer to approve a proof. Kept apart from ``portal.staff``: two small forms of their
own, shown on the staff order page by ``panels``."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.users import staff_required
from shared.errors import Conflict, Invalid
from shared.files.access import reachable_order
from shared.models import Order
from shared.orders.print_spec import parse_trim_size, set_print_spec, trim_size_text
from shared.orders.proofs import (
    CustomerUnreachable,
    proof_candidates,
    proofs_of,
    request_proof,
)

bp = Blueprint("staff_proofs", __name__, url_prefix="/staff")


def panels(order: Order) -> dict:
    """What ``staff/_print_spec.html`` and ``staff/_proofs.html`` need for ``order``."""
    return {
        "trim_size": trim_size_text(order),
        "proofs": proofs_of(order),
        "proof_candidates": proof_candidates(order),
    }


def _order(project_no: str) -> Order:
    order = reachable_order(project_no, None)
    if order is None:
        abort(404)
    return order


def _back(order: Order, anchor: str):
    return redirect(url_for("staff.show_order", project_no=order.project_no) + anchor)


@bp.post("/orders/<project_no>/print-spec")
@staff_required
def print_spec(project_no: str):
    """Save the order's trim size and page count; its checked files are preflighted again."""
    order = _order(project_no)
    try:
        trim_size = parse_trim_size(request.form.get("trim_size", ""))
        count_text = request.form.get("page_count", "").strip()
        if count_text and not count_text.isdigit():
            raise Invalid("page_count", "a whole number")
        again = set_print_spec(order, trim_size, int(count_text) if count_text else None)
    except Invalid as exc:
        if exc.field == "trim_size":
            flash(_("The trim size is not valid: write width x height in mm (210 x 297) or A4."))
        else:
            flash(_("The page count must be a whole number from 1 to 100,000 (empty: none)."))
        return _back(order, "#print-spec")
    current_app.extensions["ptportal.tasks"].preflight_soon(again)
    flash(_("Trim size and page count saved."))
    return _back(order, "#print-spec")


@bp.post("/orders/<project_no>/proofs")
@staff_required
def ask_for_approval(project_no: str):
    """Ask the customer to approve a file of In Bearbeitung (a new proof version)."""
    order = _order(project_no)
    file_id = request.form.get("file_id", "")
    if not file_id.isdigit():
        flash(_("Please choose a file."))
        return _back(order, "#proofs")
    settings = current_app.config["PTPORTAL_SETTINGS"]
    links = current_app.extensions["ptportal.links"]
    try:
        proof = request_proof(settings, links, order, int(file_id), current_user.staff)
    except Invalid:
        flash(
            _(
                "This file cannot be a proof: choose a scanned file of In Bearbeitung "
                "with a preview."
            )
        )
        return _back(order, "#proofs")
    except CustomerUnreachable as exc:
        if exc.reason == "login":
            flash(
                _("The customer cannot be asked for approval: they cannot sign in to the portal.")
            )
        else:
            flash(
                _("The customer cannot be asked for approval: no usable email address is stored.")
            )
        return _back(order, "#proofs")
    except Conflict:
        flash(_("Another proof was asked for at the same moment. Please try again."))
        return _back(order, "#proofs")
    current_app.extensions["ptportal.tasks"].deliver_soon()
    flash(
        _(
            "Proof version %(version)d of %(name)s was sent to the customer for approval.",
            version=proof.version,
            name=proof.file_name,
        )
    )
    return _back(order, "#proofs")
