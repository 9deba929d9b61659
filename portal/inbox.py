"""Staff pages for mail that no order took: the inbox ("Posteingang"), and the mailboxes.

Staff assign an inbox mail to an order or a customer, or discard it; admins see the
configured mailboxes with what the worker last saw and test a connection on demand.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal.partials import page_number, wants_fragment
from portal.users import staff_required
from shared.accounts.customers import get_customer
from shared.conversations import inbox
from shared.conversations.messages import display_html
from shared.conversations.readers import mailbox_overview
from shared.errors import Conflict, Invalid, NotFound
from shared.files.access import reachable_order
from shared.mail_intake.imap import connection_test
from shared.models import MessageImage, ReceivedMail

bp = Blueprint("inbox", __name__, url_prefix="/staff")


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _fragment(partial_template: str, page_template: str, **context):
    """The partial for htmx, the whole page otherwise; caches must keep them apart."""
    chosen = partial_template if wants_fragment() else page_template
    response = make_response(render_template(chosen, **context))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.get("/inbox")
@staff_required
def index():
    """The inbox, one filter at a time (unassigned, suggested order, assigned, discarded)."""
    chosen = request.args.get("filter", inbox.FILTER_UNASSIGNED)
    if chosen not in inbox.FILTERS:
        chosen = inbox.FILTER_UNASSIGNED
    return _fragment(
        "staff/_inbox_list.html",
        "staff/inbox.html",
        page=inbox.inbox_page(chosen, page_number()),
        chosen=chosen,
        filters=inbox.FILTERS,
        counts=inbox.inbox_counts(),
    )


def _mail(mail_id: int) -> ReceivedMail:
    mail = inbox.inbox_mail(mail_id)
    if mail is None:
        abort(404)
    return mail


def _show(mail: ReceivedMail, error: str = "", status: int = 200, **values):
    def image_url(image: MessageImage) -> str:
        return url_for("conversations.staff_image", image_id=image.id)

    return (
        render_template(
            "staff/inbox_mail.html",
            mail=mail,
            html=display_html(mail, image_url),
            error=error,
            values=values,
        ),
        status,
    )


@bp.get("/inbox/<int:mail_id>")
@staff_required
def show(mail_id: int):
    """One mail with what came with it and the ways to deal with it."""
    return _show(_mail(mail_id))


@bp.post("/inbox/<int:mail_id>/order")
@staff_required
def assign_order(mail_id: int):
    """The mail becomes a message of the order; its attachments go into Eingehend."""
    mail = _mail(mail_id)
    project_no = request.form.get("project_no", "").strip()
    internal = request.form.get("internal") == "1"
    order = reachable_order(project_no, None) if project_no else None
    if order is None:
        error = _("There is no order %(number)s.", number=project_no or "–")
        return _show(mail, error, 422, project_no=project_no)
    tasks = current_app.extensions["ptportal.tasks"]
    try:
        inbox.assign_to_order(
            _settings(), mail, order, current_user.staff, internal=internal, on_file=tasks.scan_soon
        )
    except Conflict:
        flash(_("This mail has been assigned already."))
        return redirect(url_for(".index"))
    flash(_("The mail was added to order %(number)s.", number=order.project_no))
    return redirect(
        url_for("staff.show_order", project_no=order.project_no, _anchor="conversation")
    )


@bp.post("/inbox/<int:mail_id>/customer")
@staff_required
def assign_customer(mail_id: int):
    """File the mail under a customer (and, if asked, make the sender one of its contacts)."""
    mail = _mail(mail_id)
    customer_no = request.form.get("customer_no", "").strip()
    try:
        customer = get_customer(customer_no)
        inbox.assign_to_customer(
            mail, customer, current_user.staff, add_sender=request.form.get("add_sender") == "1"
        )
    except NotFound:
        error = _("There is no customer %(number)s.", number=customer_no or "–")
        return _show(mail, error, 422, customer_no=customer_no)
    except Invalid:
        error = _("The sender's address cannot become a contact.")
        return _show(mail, error, 422, customer_no=customer_no)
    except Conflict:
        flash(_("This mail has been assigned already."))
        return redirect(url_for(".index"))
    flash(_("The mail was filed under customer %(number)s.", number=customer.customer_no))
    return redirect(url_for(".index"))


@bp.post("/inbox/<int:mail_id>/discard")
@staff_required
def discard(mail_id: int):
    """Put the mail aside; it stays listed under "discarded"."""
    mail = _mail(mail_id)
    try:
        inbox.discard(mail, current_user.staff)
        flash(_("The mail was discarded."))
    except Conflict:
        flash(_("Only unassigned mail can be discarded."))
    return redirect(url_for(".index"))


# -- mailboxes (admins) --------------------------------------------------------------------


def _admins_only() -> None:
    if not current_user.is_admin:
        abort(403)


@bp.get("/mailboxes")
@staff_required
def mailboxes():
    """The mailboxes of client.ini with what the worker last saw of each."""
    _admins_only()
    return render_template("staff/mailboxes.html", mailboxes=mailbox_overview(_settings()))


@bp.post("/mailboxes/<name>/test")
@staff_required
def test_mailbox(name: str):
    """Log in to the mailbox now, as the worker would, and say what was found."""
    _admins_only()
    mailbox = _settings().mailbox(name)
    if mailbox is None:
        abort(404)
    ok, detail = connection_test(mailbox)
    return _fragment(
        "staff/_mailbox_test.html",
        "staff/mailbox_test.html",
        mailbox=mailbox,
        ok=ok,
        detail=detail,
    )
