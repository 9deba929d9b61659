"""The customer's orders: list with search and paging, one order's folders, downloads."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from portal.conversations import conversation_context
from portal.partials import folder_listing, order_list, wants_fragment
from portal.uploads import refusal_for
from portal.users import customer_required
from shared import audit
from shared.accounts.defaults import portal_shows
from shared.errors import ServiceError
from shared.files.acceptance import refused_extensions
from shared.files.access import downloadable_file, previewable_file, reachable_order
from shared.files.folders import FOLDER_INCOMING
from shared.files.intake import file_audit, file_path
from shared.files.preflighting import page_preview as render_page
from shared.files.preflighting import thumbnail_path
from shared.files.receiving import start_upload, upload_limit
from shared.files.upload_checks import append_checked
from shared.models import Order, OrderFile
from shared.orders.orders import tickets_of
from shared.orders.proofs import newest_proof

bp = Blueprint("orders", __name__, url_prefix="/orders")

# Without JavaScript there is no tus client: one plain form post, kept small because it
# cannot resume and Werkzeug spools the part once more before it reaches staging.
PLAIN_UPLOAD_BYTES = 100 * 1024 * 1024


def own_order(project_no: str) -> Order:
    """The signed-in customer's order; anybody else's answers 404 like a missing one."""
    order = reachable_order(project_no, current_user.customer)
    if order is None:
        abort(404)
    return order


@bp.get("")
@customer_required
def index():
    """The customer's orders; htmx asks for the list alone while searching or paging."""
    query = request.args.get("q", "")
    orders = order_list("orders/_order_list.html", current_user.customer, query)
    if wants_fragment():
        return orders
    return render_template("orders/index.html", query=query, order_list=orders)


@bp.get("/<project_no>")
@customer_required
def show(project_no: str):
    """One order: its three folders and the upload area for Eingehend."""
    order = own_order(project_no)
    settings = current_app.config["PTPORTAL_SETTINGS"]
    limit = upload_limit(settings)
    return render_template(
        "orders/show.html",
        **folder_listing(order, for_customer=True),
        conversation=conversation_context(order, staff_view=False),
        upload_folder=FOLDER_INCOMING,
        max_upload_bytes=limit,
        chunk_bytes=settings.portal.upload_chunk_bytes,
        plain_upload_bytes=min(PLAIN_UPLOAD_BYTES, limit),
        **customer_order_panels(order),
        proof=newest_proof(order),
        refused_extensions=refused_extensions(settings, str(get_locale())),
    )


def customer_order_panels(order: Order) -> dict:
    """What the customer's order page shows besides the folders: per the system defaults
    job description, due date and tickets."""
    shows = portal_shows()
    return {"shows": shows, "tickets": tickets_of(order) if shows.show_tickets else []}


@bp.get("/<project_no>/files")
@customer_required
def files(project_no: str):
    """htmx: the folder listing, re-polled while files are uploading or being scanned."""
    listing = folder_listing(own_order(project_no), for_customer=True)
    return render_template("orders/_files.html", **listing)


@bp.url_value_preprocessor
def allow_plain_upload_bodies(endpoint: str | None, _values: dict | None) -> None:
    # Before CSRFProtect reads request.form, which fixes the body limit (see portal/uploads.py).
    if endpoint == "orders.plain_upload":
        request.max_content_length = PLAIN_UPLOAD_BYTES + 1024 * 1024


@bp.post("/<project_no>/files")
@customer_required
def plain_upload(project_no: str):
    """Without JavaScript: receive one small file by a plain form into Eingehend."""
    order = own_order(project_no)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Please choose a file."))
        return redirect(url_for(".show", project_no=project_no))
    size = upload.stream.seek(0, 2)
    upload.stream.seek(0)
    settings = current_app.config["PTPORTAL_SETTINGS"]
    try:
        file = start_upload(settings, order, upload.filename, size, login=current_user.login)
        append_checked(settings, file, 0, upload.stream, size)
    except ServiceError as exc:
        flash(refusal_for(exc)[1])
        return redirect(url_for(".show", project_no=project_no))
    current_app.extensions["ptportal.tasks"].scan_soon(file.id)
    flash(_("%(name)s was received; the virus scan follows.", name=file.display_name))
    return redirect(url_for(".show", project_no=project_no))


@bp.get("/<project_no>/files/<int:file_id>")
@customer_required
def download(project_no: str, file_id: int):
    """Stream a clean file with range support and its original (Unicode) name."""
    file = downloadable_file(own_order(project_no), file_id, staff=False)
    if file is None:
        abort(404)
    return send_stored_file(file)


def send_stored_file(file: OrderFile):
    """The file's bytes as a download (also used by the staff pages)."""
    path = file_path(current_app.config["PTPORTAL_SETTINGS"], file)
    if path is None or not path.is_file():
        abort(404)
    # A download resumed at a later byte is the same download: recorded once, at its start.
    if request.range is None or request.range.ranges[0][0] == 0:
        file_audit(audit.FILE_DOWNLOAD, file, f"{file.size} bytes")
    return send_file(
        path,
        as_attachment=True,
        download_name=file.display_name,
        conditional=True,
        max_age=0,
        etag=True,
    )


# Previews of a file never change (its bytes do not); a browser may keep them a while,
# but only for itself.
PREVIEW_MAX_AGE = 3600


def send_preview(path: Path | None):
    """A stored preview PNG (also used by the staff pages); 404 when there is none."""
    if path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/png", conditional=True, etag=True)
    response.cache_control.public = False
    response.cache_control.private = True
    response.cache_control.max_age = PREVIEW_MAX_AGE
    return response


@bp.get("/<project_no>/files/<int:file_id>/thumbnail.png")
@customer_required
def thumbnail(project_no: str, file_id: int):
    """The first-page thumbnail of a clean file: for those who may download it."""
    file = previewable_file(own_order(project_no), file_id, staff=False)
    if file is None:
        abort(404)
    return send_preview(thumbnail_path(current_app.config["PTPORTAL_SETTINGS"], file))


@bp.get("/<project_no>/files/<int:file_id>/pages/<int:page>.png")
@customer_required
def page_preview(project_no: str, file_id: int, page: int):
    """A larger preview of one page, rendered the first time it is asked for."""
    file = previewable_file(own_order(project_no), file_id, staff=False)
    if file is None:
        abort(404)
    return send_preview(render_page(current_app.config["PTPORTAL_SETTINGS"], file, page))
