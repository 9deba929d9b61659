"""Mail signatures: the frame of every mail, HTML sanitised, previewed."""

from __future__ import annotations

from dataclasses import asdict

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from portal.mail_admin import bp, links, settings
from portal.mail_admin.templates import draft_of, preview_order
from portal.users import staff_required
from shared.db import write_transaction
from shared.mail.defaults import ACTIVATION_TEMPLATE
from shared.mail.templates import all_signatures, sample_template, signature_by_id
from shared.models import (
    EmailSignature,
)
from shared.notify.editing import (
    SignatureDraft,
    preview,
    save_signature,
)
from shared.orders.orders import recent_orders


@bp.get("/signatures")
@staff_required
def signatures():
    """Every signature; the one switched on frames every mail."""
    return render_template("staff/mail/signatures.html", signatures=all_signatures())


def _signature_draft() -> SignatureDraft:
    return SignatureDraft(
        name=request.form.get("name", ""),
        head_html=request.form.get("head_html", ""),
        foot_html=request.form.get("foot_html", ""),
        head_text=request.form.get("head_text", "").replace("\r\n", "\n"),
        foot_text=request.form.get("foot_text", "").replace("\r\n", "\n"),
        status=request.form.get("status") == "1",
    )


def _signature_preview(draft: SignatureDraft):
    """The activation mail (or any first template) framed by the signature being edited."""
    template = sample_template(ACTIVATION_TEMPLATE)
    if template is None:
        return None, {}
    frame = EmailSignature(**asdict(draft.cleaned()))
    return preview(settings(), links(), draft_of(template), preview_order(), frame)


def _signature_page(signature: EmailSignature, draft: SignatureDraft, problems: dict, status=200):
    mail, _problems = _signature_preview(draft)
    return (
        render_template(
            "staff/mail/signature_form.html",
            signature=signature,
            draft=draft,
            problems=problems,
            mail=mail,
            order=preview_order(),
            orders=recent_orders(),
        ),
        status,
    )


def _draft_of_signature(signature: EmailSignature) -> SignatureDraft:
    return SignatureDraft(
        signature.name,
        signature.head_html,
        signature.foot_html,
        signature.head_text,
        signature.foot_text,
        signature.status,
    )


@bp.route("/signatures/new", methods=["GET", "POST"])
@staff_required
def new_signature():
    """Write a new signature."""
    if request.method == "GET":
        return _signature_page(EmailSignature(), SignatureDraft("", "", "", "", "", False), {})
    return _store_signature(None)


@bp.route("/signatures/<int:signature_id>", methods=["GET", "POST"])
@staff_required
def edit_signature(signature_id: int):
    """Edit a signature; its HTML is sanitised when stored."""
    signature = signature_by_id(signature_id)
    if signature is None:
        abort(404)
    if request.method == "GET":
        return _signature_page(signature, _draft_of_signature(signature), {})
    return _store_signature(signature_id)


def _store_signature(signature_id: int | None):
    draft = _signature_draft()
    with write_transaction():
        signature, problems = save_signature(signature_id, draft)
    if problems:
        return _signature_page(signature, draft, problems, status=422)
    flash(_("The signature was saved."))
    return redirect(url_for("mail_admin.edit_signature", signature_id=signature.id))


@bp.post("/signatures/preview")
@staff_required
def preview_signature():
    """htmx: the live preview of a mail framed by the signature as typed."""
    mail, problems = _signature_preview(_signature_draft())
    return render_template(
        "staff/mail/_preview.html", mail=mail, problems=problems, order=preview_order()
    )
