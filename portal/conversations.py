"""The conversation on an order's page, for customers and for staff (htmx, no reload).

The message list polls every few seconds with the version it shows and gets 204 (nothing
to swap) until something changed; posting a message answers with a fresh form and the
``messages-changed`` event, on which the list reloads at once.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
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

from portal.partials import wants_fragment
from portal.users import customer_required, staff_required
from shared.conversations.messages import (
    MAX_BODY_CHARS,
    EmptyMessage,
    MessageTooLong,
    conversation,
    conversation_version,
    display_html,
    images_of,
    post_customer_message,
    post_staff_message,
    visible_image,
)
from shared.errors import Invalid
from shared.files.access import NotAllowed, reachable_order
from shared.models import MessageImage, Order

bp = Blueprint("conversations", __name__)

POLL_SECONDS = 5
# Signature images are shown as they came; only raster formats (SVG can carry scripts).
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
CHANGED = "messages-changed"


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _order(project_no: str, *, staff_view: bool) -> Order:
    """The order, if the viewer may see it (a customer: only their own); else 404."""
    order = reachable_order(project_no, None if staff_view else current_user.customer)
    if order is None:
        abort(404)
    return order


def _kind(staff_view: bool) -> dict:
    """The endpoints and limits the conversation's partials use for this viewer."""
    side = "staff" if staff_view else "customer"
    return {
        "staff_view": staff_view,
        "max_body_chars": MAX_BODY_CHARS,
        "messages_endpoint": f"conversations.{side}_messages",
        "post_endpoint": f"conversations.{side}_post",
        "download_endpoint": "staff.download" if staff_view else "orders.download",
    }


def conversation_context(order: Order, *, staff_view: bool) -> dict:
    """``conversation`` for ``orders/_conversation.html`` and its parts (three queries)."""
    entries = conversation(order, for_customer=not staff_view)
    images = images_of(entry.mail for entry in entries if entry.mail)
    if staff_view:

        def image_url(image: MessageImage) -> str:
            return url_for("conversations.staff_image", image_id=image.id)
    else:

        def image_url(image: MessageImage) -> str:
            return url_for(
                "conversations.customer_image", project_no=order.project_no, image_id=image.id
            )

    return {
        **_kind(staff_view),
        "entries": entries,
        "mail_html": {
            entry.message.id: display_html(entry.mail, image_url, images.get(entry.mail.id, []))
            for entry in entries
            if entry.mail
        },
        "version": conversation_version(order, for_customer=not staff_view),
        "poll_seconds": POLL_SECONDS,
    }


def _partial(template: str, **context) -> Response:
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def _messages(order: Order, *, staff_view: bool) -> Response:
    seen = request.args.get("version")
    if seen is not None and seen == conversation_version(order, for_customer=not staff_view):
        return Response(status=204)  # nothing new: htmx keeps what it shows
    context = conversation_context(order, staff_view=staff_view)
    return _partial("orders/_messages.html", order=order, conversation=context)


def _form(order: Order, *, staff_view: bool, error: str = "", body: str = "", **extra) -> Response:
    response = _partial(
        "orders/_message_form.html",
        order=order,
        conversation=_kind(staff_view),
        error=error,
        body=body,
        **extra,
    )
    if not error:
        response.headers["HX-Trigger"] = CHANGED
    return response


def _answer(order: Order, page: str, *, staff_view: bool, error: str, body: str, **extra):
    """htmx gets the form back (with the error, or empty); a plain post goes back to the page."""
    if wants_fragment():
        return _form(order, staff_view=staff_view, error=error, body=body if error else "", **extra)
    flash(error or _("Your message was sent."))
    return redirect(url_for(page, project_no=order.project_no, _anchor="conversation"))


# -- customers ----------------------------------------------------------------------------


@bp.get("/orders/<project_no>/messages")
@customer_required
def customer_messages(project_no: str):
    """htmx: the order's messages (no internal notes), or 204 when nothing changed."""
    return _messages(_order(project_no, staff_view=False), staff_view=False)


@bp.post("/orders/<project_no>/messages")
@customer_required
def customer_post(project_no: str):
    """The customer writes, with the files they uploaded for the message."""
    order = _order(project_no, staff_view=False)
    body = request.form.get("body", "")
    error = ""
    try:
        post_customer_message(order, current_user.login, body, request.form.getlist("upload"))
    except NotAllowed:
        error = _("Your portal login may not write messages at the moment.")
    except Invalid as exc:
        error = _body_problem(exc)
    return _answer(order, "orders.show", staff_view=False, error=error, body=body, **_upload())


@bp.get("/orders/<project_no>/mail-images/<int:image_id>")
@customer_required
def customer_image(project_no: str, image_id: int):
    """A signature image of a mail in the customer's conversation."""
    return _image(visible_image(image_id, _order(project_no, staff_view=False)))


def _upload() -> dict:
    """The attachment area of the customer's form (the tus upload into Eingehend)."""
    from shared.files.receiving import upload_limit

    settings = _settings()
    return {
        "max_upload_bytes": upload_limit(settings),
        "chunk_bytes": settings.portal.upload_chunk_bytes,
    }


# -- staff --------------------------------------------------------------------------------


@bp.get("/staff/orders/<project_no>/messages")
@staff_required
def staff_messages(project_no: str):
    """htmx: every message of the order, internal notes included."""
    return _messages(_order(project_no, staff_view=True), staff_view=True)


@bp.post("/staff/orders/<project_no>/messages")
@staff_required
def staff_post(project_no: str):
    """Staff write to the customer (sent as mail at once) or an internal note."""
    order = _order(project_no, staff_view=True)
    body = request.form.get("body", "")
    error = ""
    try:
        post_staff_message(
            _settings(),
            current_app.extensions["ptportal.links"],
            order,
            current_user.staff,
            body,
            internal=request.form.get("internal") == "1",
        )
        current_app.extensions["ptportal.tasks"].deliver_soon()
    except Invalid as exc:
        error = _body_problem(exc)
    return _answer(order, "staff.show_order", staff_view=True, error=error, body=body)


@bp.get("/staff/mail-images/<int:image_id>")
@staff_required
def staff_image(image_id: int):
    """A signature image of any received mail."""
    return _image(visible_image(image_id, None))


def _image(image: MessageImage | None) -> Response:
    if image is None or image.content_type not in IMAGE_TYPES:
        abort(404)
    response = Response(bytes(image.content), mimetype=image.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def _body_problem(exc: Invalid) -> str:
    if isinstance(exc, MessageTooLong):
        return _("A message may have at most %(count)d characters.", count=MAX_BODY_CHARS)
    if isinstance(exc, EmptyMessage):
        return _("Please write a message (or attach a file).")
    return exc.message
