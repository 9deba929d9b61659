"""Staff pages for mail: notification events, templates, signatures, outbox, bounces, send now."""

from __future__ import annotations

from dataclasses import asdict

from flask import (
    Blueprint,
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

from portal.partials import wants_fragment
from portal.users import staff_required
from shared.accounts.customers import get_customer
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.events import EVENTS
from shared.mail.bounces import clear_bounce, mark_bounced
from shared.mail.outbox_admin import QUEUED, VIEWS, counts, outbox, retry_mail
from shared.mail.templates import (
    DATA_PROJECT_KEYS,
    TICKETDATA_PROJECT_KEYS,
    TemplateProblem,
    active_signature,
)
from shared.models import (
    LANGUAGES,
    BouncedAddress,
    EmailSignature,
    EmailTemplate,
    NotificationRule,
    Order,
    StaffUser,
)
from shared.notify.digest import send_now as run_send_now
from shared.notify.editing import (
    SignatureDraft,
    TemplateDraft,
    preview,
    save_signature,
    save_template,
)
from shared.notify.manual import recipient, render_manual, send_manual
from shared.notify.rules import (
    customer_override,
    delete_override,
    extra_staff_of,
    global_rule,
    overrides,
    save_rule,
)

bp = Blueprint("mail_admin", __name__, url_prefix="/staff/mail")

PLACEHOLDERS = [f'{{{{data_project["{key}"]}}}}' for key in DATA_PROJECT_KEYS] + [
    f'{{{{ticketdata_project["{key}"]}}}}' for key in TICKETDATA_PROJECT_KEYS
]


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _links():
    return current_app.extensions["ptportal.links"]


def _fragment(partial: str, page: str, **context):
    """The partial for htmx, the whole page otherwise; caches must keep them apart."""
    response = current_app.make_response(
        render_template(partial if wants_fragment() else page, **context)
    )
    response.headers["Vary"] = "HX-Request"
    return response


def _event(kind: str):
    if kind not in EVENTS:
        abort(404)
    return EVENTS[kind]


def _staff_choices() -> list[StaffUser]:
    return list(StaffUser.select().order_by(StaffUser.name))


def _template_names() -> list[str]:
    query = EmailTemplate.select(EmailTemplate.name).distinct().order_by(EmailTemplate.name)
    return [row.name for row in query]


def _template_ids() -> dict[str, int]:
    """For each template name, the id of one of its rows (to link the editor)."""
    ids: dict[str, int] = {}
    for row in EmailTemplate.select().order_by(EmailTemplate.language):
        ids.setdefault(row.name, row.id)
    return ids


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
        template_ids=_template_ids(),
        outbox_counts=counts(),
    )


def _rule_form() -> dict:
    staff_ids = {int(value) for value in request.form.getlist("extra_staff") if value.isdigit()}
    return {
        "active": request.form.get("active") == "1",
        "roles": request.form.getlist("roles"),
        "extra_staff": list(StaffUser.select().where(StaffUser.id.in_(staff_ids))),
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
            staff_choices=_staff_choices(),
            template_names=_template_names(),
            template_ids=_template_ids(),
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


# --- templates -------------------------------------------------------------------


@bp.get("/templates")
@staff_required
def templates():
    """Every email template, by name and language."""
    rows = EmailTemplate.select().order_by(EmailTemplate.name, EmailTemplate.language)
    return render_template("staff/mail/templates.html", templates=list(rows))


def _template_draft() -> TemplateDraft:
    owner = request.form.get("owner", "")
    return TemplateDraft(
        name=request.form.get("name", ""),
        subject=request.form.get("subject", ""),
        content=request.form.get("content", "").replace("\r\n", "\n"),
        language=request.form.get("language", "de"),
        owner_id=int(owner) if owner.isdigit() else None,
    )


def _preview_order() -> Order | None:
    """The order a preview renders against: the one chosen, else the newest."""
    chosen = request.values.get("order", "")
    order = Order.get_or_none(Order.project_no == chosen) if chosen else None
    return order or Order.select().order_by(Order.created_at.desc(), Order.id.desc()).first()


def _template_page(template: EmailTemplate, draft: TemplateDraft, problems: dict, status=200):
    order = _preview_order()
    mail, preview_problems = preview(_settings(), _links(), draft, order, _signature())
    return (
        render_template(
            "staff/mail/template_form.html",
            template=template,
            draft=draft,
            problems=problems or preview_problems,
            mail=mail,
            order=order,
            orders=_recent_orders(),
            staff_choices=_staff_choices(),
            languages=LANGUAGES,
            placeholders=PLACEHOLDERS,
        ),
        status,
    )


def _signature() -> EmailSignature | None:
    return active_signature()


def _recent_orders() -> list[Order]:
    return list(Order.select().order_by(Order.created_at.desc(), Order.id.desc()).limit(50))


def _draft_of(template: EmailTemplate) -> TemplateDraft:
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
    template = EmailTemplate.get_or_none(EmailTemplate.id == template_id)
    if template is None:
        abort(404)
    if request.method == "GET":
        return _template_page(template, _draft_of(template), {})
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
    order = _preview_order()
    mail, problems = preview(_settings(), _links(), draft, order, _signature())
    return render_template("staff/mail/_preview.html", mail=mail, problems=problems, order=order)


# --- signatures ------------------------------------------------------------------


@bp.get("/signatures")
@staff_required
def signatures():
    """Every signature; the one switched on frames every mail."""
    rows = EmailSignature.select().order_by(EmailSignature.name)
    return render_template("staff/mail/signatures.html", signatures=list(rows))


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
    from shared.mail.defaults import ACTIVATION_TEMPLATE

    template = (
        EmailTemplate.get_or_none(EmailTemplate.name == ACTIVATION_TEMPLATE)
        or EmailTemplate.select().first()
    )
    if template is None:
        return None, {}
    frame = EmailSignature(**asdict(draft.cleaned()))
    return preview(_settings(), _links(), _draft_of(template), _preview_order(), frame)


def _signature_page(signature: EmailSignature, draft: SignatureDraft, problems: dict, status=200):
    mail, _problems = _signature_preview(draft)
    return (
        render_template(
            "staff/mail/signature_form.html",
            signature=signature,
            draft=draft,
            problems=problems,
            mail=mail,
            order=_preview_order(),
            orders=_recent_orders(),
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
    signature = EmailSignature.get_or_none(EmailSignature.id == signature_id)
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
        "staff/mail/_preview.html", mail=mail, problems=problems, order=_preview_order()
    )


# --- outbox, bounces, send now ----------------------------------------------------


@bp.get("/outbox")
@staff_required
def show_outbox():
    """Queued, sent, failed and unknown mails with the server's last answer."""
    view = request.args.get("view", QUEUED)
    if view not in VIEWS:
        view = QUEUED
    return render_template(
        "staff/mail/outbox.html", mails=outbox(view), view=view, views=VIEWS, counts=counts()
    )


@bp.post("/outbox/<int:mail_id>/retry")
@staff_required
def retry(mail_id: int):
    """Send a failed mail again."""
    try:
        with write_transaction():
            mail = retry_mail(mail_id)
    except NotFound:
        abort(404)
    except Conflict:
        flash(_("This mail cannot be sent again."))
    else:
        current_app.extensions["ptportal.tasks"].deliver_soon()
        flash(_("The mail to %(recipients)s is queued again.", recipients=mail.recipients))
    return redirect(url_for("mail_admin.show_outbox", view=request.form.get("view", QUEUED)))


@bp.get("/bounces")
@staff_required
def bounces():
    """Addresses that are not mailed until cleared."""
    rows = BouncedAddress.select().order_by(BouncedAddress.created_at.desc())
    return render_template("staff/mail/bounces.html", bounces=list(rows), error=None)


@bp.post("/bounces")
@staff_required
def add_bounce():
    """Put an address on the bounce list by hand."""
    try:
        with write_transaction():
            mark_bounced(
                request.form.get("email", ""), request.form.get("reason", ""), current_user.staff
            )
    except Invalid:
        rows = BouncedAddress.select().order_by(BouncedAddress.created_at.desc())
        error = _("This is not an email address.")
        return render_template("staff/mail/bounces.html", bounces=list(rows), error=error), 422
    flash(_("The address is on the bounce list."))
    return redirect(url_for("mail_admin.bounces"))


@bp.post("/bounces/<int:bounce_id>/clear")
@staff_required
def clear(bounce_id: int):
    """Take an address off the bounce list so it is mailed again."""
    try:
        with write_transaction():
            email = clear_bounce(bounce_id)
    except NotFound:
        abort(404)
    flash(_("%(email)s will be mailed again.", email=email))
    return redirect(url_for("mail_admin.bounces"))


@bp.post("/send-now")
@staff_required
def send_now():
    """Run the digest and deliver the outbox at once, showing what was sent or the error."""
    result = run_send_now(_settings(), _links())
    return _fragment("staff/mail/_send_result.html", "staff/mail/send_now.html", result=result)


# --- manual send from an order -----------------------------------------------------


def _order(project_no: str) -> Order:
    order = Order.get_or_none(Order.project_no == project_no)
    if order is None:
        abort(404)
    return order


def _chosen_template() -> EmailTemplate | None:
    value = request.values.get("template", "")
    return EmailTemplate.get_or_none(EmailTemplate.id == int(value)) if value.isdigit() else None


def _manual_context(order: Order, template: EmailTemplate | None) -> dict:
    context = {"order": order, "template": template, "mail": None, "error": None, "to": None}
    context["templates"] = list(
        EmailTemplate.select().order_by(EmailTemplate.name, EmailTemplate.language)
    )
    try:
        context["to"] = recipient(order)
        if template is not None:
            context["mail"] = render_manual(_settings(), _links(), template, order, with_link=False)
    except (Conflict, TemplateProblem) as exc:
        context["error"] = str(exc)
    return context


@bp.get("/orders/<project_no>/send")
@staff_required
def manual(project_no: str):
    """Choose a template and see the mail the customer would get."""
    order = _order(project_no)
    context = _manual_context(order, _chosen_template())
    return _fragment("staff/mail/_manual_preview.html", "staff/mail/manual.html", **context)


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
            rows = send_manual(_settings(), _links(), template, order, current_user.staff)
    except (Conflict, TemplateProblem) as exc:
        context = _manual_context(order, template) | {"error": str(exc)}
        return render_template("staff/mail/manual.html", **context), 422
    current_app.extensions["ptportal.tasks"].deliver_soon()
    flash(_("The mail to %(recipient)s is on its way.", recipient=rows[0].recipients))
    return redirect(url_for("staff.show_order", project_no=project_no))
