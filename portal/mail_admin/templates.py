"""Mail templates: edit with a live preview against a real order."""

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
from flask_login import current_user

from portal.mail_admin import bp, links, settings, staff_choices
from portal.users import staff_required
from shared.db import write_transaction
from shared.mail.templates import (
    DATA_PROJECT_KEYS,
    TICKETDATA_PROJECT_KEYS,
    active_signature,
    all_templates,
    template_by_id,
)
from shared.models import (
    LANGUAGES,
    EmailSignature,
    EmailTemplate,
    Order,
)
from shared.notify.editing import (
    TemplateDraft,
    preview,
    save_template,
)
from shared.orders.orders import find_order, recent_orders

PLACEHOLDERS = [f'{{{{data_project["{key}"]}}}}' for key in DATA_PROJECT_KEYS] + [
    f'{{{{ticketdata_project["{key}"]}}}}' for key in TICKETDATA_PROJECT_KEYS
]


# --- templates -------------------------------------------------------------------


@bp.get("/templates")
@staff_required
def templates():
    """Every email template, by name and language."""
    return render_template("staff/mail/templates.html", templates=all_templates())


def _template_draft() -> TemplateDraft:
    owner = request.form.get("owner", "")
    return TemplateDraft(
        name=request.form.get("name", ""),
        subject=request.form.get("subject", ""),
        content=request.form.get("content", "").replace("\r\n", "\n"),
        language=request.form.get("language", "de"),
        owner_id=int(owner) if owner.isdigit() else None,
    )


def preview_order() -> Order | None:
    """The order a preview renders against: the one chosen, else the newest."""
    chosen = request.values.get("order", "")
    order = find_order(chosen) if chosen else None
    return order or next(iter(recent_orders(1)), None)


def _template_page(template: EmailTemplate, draft: TemplateDraft, problems: dict, status=200):
    order = preview_order()
    mail, preview_problems = preview(settings(), links(), draft, order, _signature())
    return (
        render_template(
            "staff/mail/template_form.html",
            template=template,
            draft=draft,
            problems=problems or preview_problems,
            mail=mail,
            order=order,
            orders=recent_orders(),
            staff_choices=staff_choices(),
            languages=LANGUAGES,
            placeholders=PLACEHOLDERS,
        ),
        status,
    )


def _signature() -> EmailSignature | None:
    return active_signature()


def draft_of(template: EmailTemplate) -> TemplateDraft:
    return TemplateDraft(
        template.name, template.subject, template.content, template.language, template.owner_id
    )


@bp.route("/templates/new", methods=["GET", "POST"])
@staff_required
def new_template():
    """Write a new template."""
    if request.method == "GET":
        draft = TemplateDraft("", "", "", "de", current_user.staff.id)
        return _template_page(EmailTemplate(), draft, {})
    return _store_template(None)


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@staff_required
def edit_template(template_id: int):
    """Edit a template; it is only stored when it renders."""
    template = template_by_id(template_id)
    if template is None:
        abort(404)
    if request.method == "GET":
        return _template_page(template, draft_of(template), {})
    return _store_template(template_id)


def _store_template(template_id: int | None):
    draft = _template_draft()
    with write_transaction():
        template, problems = save_template(template_id, draft)
    if problems:
        return _template_page(template, draft, problems, status=422)
    flash(_("The template was saved."))
    return redirect(url_for("mail_admin.edit_template", template_id=template.id))


@bp.post("/templates/preview")
@staff_required
def preview_template():
    """htmx: the live preview of the form as it is, problems next to their fields."""
    draft = _template_draft()
    order = preview_order()
    mail, problems = preview(settings(), links(), draft, order, _signature())
    return render_template("staff/mail/_preview.html", mail=mail, problems=problems, order=order)
