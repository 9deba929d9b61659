"""Staff pages: sign-in, the scan backlog and held files, every order with its folders."""

from __future__ import annotations

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

from portal.auth import begin_session, form_username, safe_next
from portal.conversations import conversation_context
from portal.extensions import limiter
from portal.orders import send_preview, send_stored_file
from portal.partials import folder_listing, order_list, page_number, wants_fragment
from portal.staff_account import start_second_step
from portal.staff_orders import order_panels
from portal.staff_proofs import panels
from portal.users import StaffMember, staff_required
from shared.accounts.sessions import start_session
from shared.accounts.staff import needs_second_factor, staff_sign_in
from shared.errors import Conflict
from shared.files.access import (
    STAFF_FOLDERS,
    downloadable_file,
    previewable_file,
    reachable_order,
)
from shared.files.backlog import SECTIONS, backlog_file, backlog_overview, backlog_page
from shared.files.folders import FOLDER_FINAL
from shared.files.intake import discard_held, release_held
from shared.files.preflighting import page_preview as render_page
from shared.files.preflighting import thumbnail_path
from shared.files.receiving import upload_limit
from shared.models import Order, OrderFile
from shared.orders.listing import OVERVIEW_ORDERS, file_history

bp = Blueprint("staff", __name__, url_prefix="/staff")

# The folder listing partial is shared with the customer's pages; staff links and actions.
STAFF_LISTING = {
    "files_endpoint": "staff.files",
    "download_endpoint": "staff.download",
    "thumbnail_endpoint": "staff.thumbnail",
    "page_endpoint": "staff.page_preview",
    "staff_view": True,
}


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _login_limit() -> str:
    return f"{_settings().portal.login_attempts_per_minute} per minute"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=form_username)
def login():
    """Staff sign-in (separate from customers', same protections)."""
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(url_for("staff.index"))
    error = None
    username = request.form.get("username", "")
    if request.method == "POST":
        password = request.form.get("password", "")
        vault = current_app.extensions["ptportal.vault"]
        staff = staff_sign_in(vault, username, password) if len(password) <= 1024 else None
        if staff is not None and needs_second_factor(staff):
            return start_second_step(staff, request.args.get("next"))
        if staff is not None:
            key = start_session(_settings().portal.session_hours, staff=staff)
            begin_session(StaffMember(staff, key))
            return redirect(safe_next(request.args.get("next")))
        error = _("Username or password is not correct.")
    status = 401 if error else 200
    return render_template("staff/login.html", error=error, username=username), status


@bp.get("/")
@staff_required
def index():
    """The most urgent files of the backlog with their numbers, and the newest orders,
    searchable; every order, with filters, is on the orders page."""
    query = request.args.get("q", "")
    orders = order_list("staff/_order_list.html", None, query, OVERVIEW_ORDERS)
    if wants_fragment():
        return orders
    # After releasing or deleting a file staff come back to this page as they left it.
    back = request.full_path.rstrip("?")
    return render_template(
        "staff/index.html", backlog=backlog_overview(), back=back, query=query, order_list=orders
    )


@bp.get("/backlog/<section>")
@staff_required
def show_backlog(section: str):
    """Every file of one backlog section (waiting, held, rejected), paged, most urgent first."""
    if section not in SECTIONS:
        abort(404)
    page = backlog_page(section, page_number())
    context = {
        "section": section,
        "page": page,
        "back": url_for("staff.show_backlog", section=section, page=page.number),
    }
    template = "staff/_backlog_files.html" if wants_fragment() else "staff/backlog.html"
    return render_template(template, **context)


def _order(project_no: str) -> Order:
    order = reachable_order(project_no, None)
    if order is None:
        abort(404)
    return order


@bp.get("/orders/<project_no>")
@staff_required
def show_order(project_no: str):
    """An order's folders as staff see them, with upload into In Bearbeitung and Final."""
    order = _order(project_no)
    folder = request.args.get("folder", FOLDER_FINAL)
    if folder not in STAFF_FOLDERS:
        folder = FOLDER_FINAL
    settings = _settings()
    return render_template(
        "staff/order.html",
        **folder_listing(order, for_customer=False),
        conversation=conversation_context(order, staff_view=True),
        upload_folders=STAFF_FOLDERS,
        folder=folder,
        events=file_history(order),
        max_upload_bytes=upload_limit(settings),
        chunk_bytes=settings.portal.upload_chunk_bytes,
        **order_panels(order),
        **STAFF_LISTING,
        **panels(order),
    )


@bp.get("/orders/<project_no>/files")
@staff_required
def files(project_no: str):
    """htmx: the order's folder listing for staff."""
    listing = folder_listing(_order(project_no), for_customer=False)
    return render_template("orders/_files.html", **listing, **STAFF_LISTING)


def _file(file_id: int) -> OrderFile:
    file = backlog_file(file_id)
    if file is None:
        abort(404)
    return file


@bp.get("/orders/<project_no>/files/<int:file_id>")
@staff_required
def download(project_no: str, file_id: int):
    """Download any clean file, or a held one to look at before releasing it."""
    file = downloadable_file(_order(project_no), file_id, staff=True)
    if file is None:
        abort(404)
    return send_stored_file(file)


@bp.get("/orders/<project_no>/files/<int:file_id>/thumbnail.png")
@staff_required
def thumbnail(project_no: str, file_id: int):
    """The first-page thumbnail of a clean, scanned file."""
    file = previewable_file(_order(project_no), file_id, staff=True)
    if file is None:
        abort(404)
    return send_preview(thumbnail_path(_settings(), file))


@bp.get("/orders/<project_no>/files/<int:file_id>/pages/<int:page>.png")
@staff_required
def page_preview(project_no: str, file_id: int, page: int):
    """A larger preview of one page of a clean, scanned file."""
    file = previewable_file(_order(project_no), file_id, staff=True)
    if file is None:
        abort(404)
    return send_preview(render_page(_settings(), file, page))


@bp.post("/files/<int:file_id>/release")
@staff_required
def release(file_id: int):
    """Hand on a file too large to scan; the staff user and time are recorded."""
    file = _file(file_id)
    try:
        release_held(_settings(), file, current_user.staff)
        flash(
            _("%(name)s was released into %(folder)s.", name=file.display_name, folder=file.folder)
        )
    except Conflict:
        flash(_("This file cannot be released (any more)."))
    return redirect(safe_next(request.form.get("back")))


@bp.post("/files/<int:file_id>/discard")
@staff_required
def discard(file_id: int):
    """Delete a held or rejected file for good."""
    file = _file(file_id)
    try:
        discard_held(_settings(), file, current_user.staff)
        flash(_("%(name)s was deleted.", name=file.display_name))
    except Conflict:
        flash(_("This file cannot be deleted here."))
    return redirect(safe_next(request.form.get("back")))
