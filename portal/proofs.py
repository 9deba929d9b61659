"""The customer's proof approval (Druckfreigabe): look at the pages, approve or reject."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.orders import own_order
from portal.users import customer_required
from shared.errors import Invalid, NotFound
from shared.files.access import may_preview
from shared.files.preflighting import stored_preflight
from shared.models import Order, Proof
from shared.orders.proofs import (
    MAX_COMMENT,
    ProofDecided,
    ProofOutdated,
    decide,
    get_proof,
    proof_state,
)

bp = Blueprint("proofs", __name__, url_prefix="/orders")

# Pages shown on the approval page; a longer document is looked at in the file itself.
MAX_PAGES_SHOWN = 200


def _proof(order: Order, version: int) -> Proof:
    try:
        return get_proof(order, version)
    except NotFound:
        abort(404)


def _page(order: Order, proof: Proof, error: str = "", comment: str = "", status: int = 200):
    file = proof.file if proof.file_id else None
    viewable = file is not None and may_preview(file, staff=False)
    stored = stored_preflight(file) if viewable else None
    pages = stored.pages if stored else 0
    context = {
        "order": order,
        "proof": proof,
        "state": proof_state(proof),
        "file": file if viewable else None,
        "pages": range(1, min(pages, MAX_PAGES_SHOWN) + 1),
        "page_count": pages,
        "error": error,
        "comment": comment,
        "max_comment": MAX_COMMENT,
    }
    return render_template("orders/proof.html", **context), status


@bp.get("/<project_no>/proofs/<int:version>")
@customer_required
def show(project_no: str, version: int):
    """A proof's pages, its state, and the form to approve or reject it."""
    order = own_order(project_no)
    return _page(order, _proof(order, version))


@bp.post("/<project_no>/proofs/<int:version>")
@customer_required
def decide_view(project_no: str, version: int):
    """Record the customer's decision with time, login, address and the file's SHA-256."""
    order = own_order(project_no)
    proof = _proof(order, version)
    choice = request.form.get("decision", "")
    comment = request.form.get("comment", "")
    try:
        decide(order, version, current_user.login, choice, comment, request.remote_addr or "")
    except ProofOutdated as exc:
        message = _(
            "This proof was replaced by version %(newest)d and can no longer be decided on. "
            "Please look at the newest version.",
            newest=exc.newest,
        )
        return _page(order, proof, message, comment, 409)
    except ProofDecided:
        message = _("You have already decided on this proof.")
        return _page(order, _proof(order, version), message, comment, 409)
    except Invalid as exc:
        if exc.field == "comment" and choice == Proof.DECISION_REJECTED and not comment.strip():
            message = _("Please tell us what should be changed.")
        elif exc.field == "comment":
            message = _(
                "The comment is too long (at most %(count)d characters).", count=MAX_COMMENT
            )
        else:
            message = _("Please choose whether you approve or reject the proof.")
        return _page(order, proof, message, comment, 400)
    if choice == Proof.DECISION_APPROVED:
        flash(_("Thank you: you approved proof version %(version)d.", version=version))
    else:
        flash(
            _(
                "Thank you: you rejected proof version %(version)d; we will be in touch.",
                version=version,
            )
        )
    return redirect(url_for(".show", project_no=project_no, version=version))
