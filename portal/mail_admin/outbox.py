"""The outbox by state, sending a failed mail again, the bounce list, and "send now"."""

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
from shared.errors import Conflict, Invalid, NotFound
from shared.mail.bounces import bounce_list, clear_bounce, mark_bounced
from shared.mail.outbox_admin import QUEUED, VIEWS, counts, outbox, retry_mail
from shared.notify.digest import send_now as run_send_now


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
    return render_template("staff/mail/bounces.html", bounces=bounce_list(), error=None)


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
        error = _("This is not an email address.")
        return render_template("staff/mail/bounces.html", bounces=bounce_list(), error=error), 422
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
    result = run_send_now(settings(), links())
    return fragment("staff/mail/_send_result.html", "staff/mail/send_now.html", result=result)
