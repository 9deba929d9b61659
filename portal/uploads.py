"""Resumable uploads into an order's ``Eingehend`` folder: tus 1.0 core, creation, termination.

The browser (tus-js-client) announces a file with a POST, then sends its bytes
in PATCH requests of at most ``upload_chunk_bytes``; after a dropped connection
it asks with HEAD how many bytes arrived and continues there. The body is read
from ``request.stream`` piece by piece — never ``request.files`` or
``request.data``, which would spool or buffer the whole chunk. The work itself
is ``shared.files.receiving``; this module parses headers and checks who may do what.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from shared.errors import Invalid, NotFound, ServiceError
from shared.files import names as filenames
from shared.files.acceptance import TypeRefused
from shared.files.access import (
    NotAllowed,
    OrderClosed,
    check_upload_continues,
    own_upload,
    reachable_order,
    staff_upload_folder,
)
from shared.files.folders import FOLDER_FINAL, FOLDER_INCOMING
from shared.files.messages import describe
from shared.files.receiving import (
    EmptyFile,
    NoSpace,
    OffsetMismatch,
    TooLarge,
    UploadBusy,
    UploadClosed,
    abort_upload,
    durable_offset,
    is_complete,
    size_in_units,
    start_upload,
    upload_limit,
)
from shared.files.upload_checks import append_checked
from shared.models import Order, OrderFile

bp = Blueprint("uploads", __name__)

TUS_VERSION = "1.0.0"
# Not tus: which row of the file list this upload is, so the upload widget can follow it.
FILE_ID_HEADER = "Upload-File-Id"
TUS_EXTENSIONS = "creation,termination"
CHUNK_TYPE = "application/offset+octet-stream"


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


class Refused(Exception):
    """A request this module answers with ``status`` and a readable ``message``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.url_value_preprocessor
def allow_chunk_bodies(_endpoint: str | None, _values: dict | None) -> None:
    # URL value preprocessors run before every before_request hook. CSRFProtect's hook
    # reads request.form, which fixes the body limit of request.stream for the whole
    # request, so a PATCH's limit has to be raised here, before that happens. Only a
    # tus body gets it; any other content type keeps the 1 MiB form limit.
    if request.method == "PATCH" and request.mimetype == CHUNK_TYPE:
        request.max_content_length = _settings().portal.upload_chunk_bytes


@bp.before_request
def require_customer():
    # A JSON 401 rather than Flask-Login's redirect: tus-js-client would follow it to
    # the sign-in page and report a confusing protocol error.
    if request.method == "OPTIONS":
        return None
    if not current_user.is_authenticated:
        return _refusal(401, _("Please sign in again to upload."))
    return None


@bp.after_request
def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(Refused)
def refused(exc: Refused):
    return _refusal(exc.status, exc.message, exc.headers)


@bp.errorhandler(CSRFError)
def csrf_error(_exc: CSRFError):
    return _refusal(400, _("The page has expired. Please reload it and upload again."))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    if exc.code == 413 and request.method == "PATCH":
        limit = _size_text(_settings().portal.upload_chunk_bytes)
        return _refusal(413, _("A chunk may be at most %(limit)s.", limit=limit))
    if exc.code == 404:
        return _refusal(404, _("This order or upload does not exist or is not yours."))
    return _refusal(exc.code, exc.description or exc.name)


@bp.errorhandler(ServiceError)
def service_error(exc: ServiceError):
    status, message = refusal_for(exc)
    headers = {"Upload-Offset": str(exc.offset)} if isinstance(exc, OffsetMismatch) else {}
    return _refusal(status, message, headers)


def _size_text(size: int) -> str:
    """``20 GiB`` with the number in the customer's locale."""
    value, unit = size_in_units(size)
    return f"{format_decimal(value, format='#,##0.#')} {unit}"


def _name_message(reason: str) -> str:
    return {
        filenames.REASON_EMPTY: _("The file has no name."),
        filenames.REASON_SEPARATOR: _("File names must not contain / or \\."),
        filenames.REASON_DOTS: _("A file may not be called . or .."),
        filenames.REASON_CONTROL: _("The file name contains control characters."),
        filenames.REASON_TOO_LONG: _("The file name is too long (at most 255 bytes)."),
    }[reason]


def refusal_for(exc: ServiceError) -> tuple[int, str]:
    """The HTTP status and the customer's message for an error from ``shared.files.receiving``."""
    if isinstance(exc, TypeRefused):
        # The file itself: 422 for a ZIP whose contents are refused, 415 for its type.
        status = 422 if exc.finding.code.startswith("zip_") else 415
        return status, describe(exc.finding, str(get_locale()))
    if isinstance(exc, filenames.NameRefused):
        return 400, _name_message(exc.reason)
    if isinstance(exc, TooLarge):
        limit = _size_text(exc.limit)
        return 413, _("The file is larger than the limit of %(limit)s.", limit=limit)
    if isinstance(exc, EmptyFile):
        return 400, _("The file is empty.")
    if isinstance(exc, NoSpace):
        return 507, _("The portal has no room for this file right now. Please try again later.")
    if isinstance(exc, OrderClosed):
        return 403, _(
            "This order is closed: it takes no more uploads. Please contact the print shop."
        )
    if isinstance(exc, NotAllowed):
        return 403, _("You may not upload files here.")
    if isinstance(exc, UploadBusy):
        return 423, _("This file is being sent by another request. Please wait a moment.")
    if isinstance(exc, OffsetMismatch):
        return 409, _("The upload continues at another position. Please resume it.")
    if isinstance(exc, UploadClosed):
        return 409, _("This upload is finished or was cancelled.")
    if isinstance(exc, NotFound):
        return 404, _("This order or upload does not exist or is not yours.")
    if isinstance(exc, Invalid):
        return 400, _("The upload request is not valid: %(detail)s", detail=exc.message)
    return 409, str(exc)


def _require_tus() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Refused(
            412,
            _("This upload client speaks a protocol version the portal does not support."),
            {"Tus-Version": TUS_VERSION},
        )


def _header_number(name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isascii() or not value.isdigit():
        raise Refused(400, _("The header %(name)s must be a whole number.", name=name))
    return int(value)


def _metadata() -> dict[str, str]:
    """The ``Upload-Metadata`` header: comma-separated ``key base64(value)`` pairs."""
    pairs = {}
    for item in request.headers.get("Upload-Metadata", "").split(","):
        key, _space, encoded = item.strip().partition(" ")
        if not key:
            continue
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(400, _("The upload metadata cannot be read.")) from None
    return pairs


def _own_order(project_no: str) -> Order:
    """The order, if the signed-in customer's (staff: any); else answered like a missing one."""
    order = reachable_order(project_no, None if current_user.is_staff else current_user.customer)
    if order is None:
        raise NotFound(project_no)
    return order


def _own_file(upload_key: str) -> OrderFile:
    """An upload of the signed-in customer into Eingehend, or of this staff user; else 404."""
    if current_user.is_staff:
        file = own_upload(upload_key, staff=current_user.staff)
    else:
        file = own_upload(upload_key, customer=current_user.customer)
    if file is None:
        raise NotFound(upload_key)
    return file


def _uploader() -> dict:
    """Who uploads, and into which folder: customers only into Eingehend (else 403)."""
    if current_user.is_staff:
        folder = staff_upload_folder(request.args.get("folder", FOLDER_FINAL))
        return {"staff": current_user.staff, "folder": folder}
    return {"login": current_user.login, "folder": _metadata().get("folder", FOLDER_INCOMING)}


def _body():
    """The PATCH body to stream to disk.

    With a declared length it is the server's own input stream: gunicorn's ends at
    Content-Length, and ``append_chunk`` reads no more than that length anyway.
    Werkzeug's ``request.stream`` wraps it in a LimitedStream that copies every
    piece twice more (bench/README.md, benchmark 1). A chunked
    body (no length) keeps the wrapper, which finds where the body ends.
    """
    stream = request.stream  # refuses a body over max_content_length (413) first
    if request.content_length is None:
        return stream
    return request.environ["wsgi.input"]


def _tus_options() -> Response:
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = TUS_EXTENSIONS
    response.headers["Tus-Max-Size"] = str(upload_limit(_settings()))
    return response


@bp.route("/orders/<project_no>/uploads", methods=["OPTIONS"])
def order_options(project_no: str):
    """tus: what this server supports (the same for every order, so nothing leaks)."""
    return _tus_options()


@bp.route("/uploads/<upload_key>", methods=["OPTIONS"])
def upload_options(upload_key: str):
    """tus: what this server supports."""
    return _tus_options()


@bp.post("/orders/<project_no>/uploads")
@login_required
def create(project_no: str):
    """tus creation: announce a file (customers: for Eingehend); answers where to send it."""
    _require_tus()
    if "Upload-Defer-Length" in request.headers:
        raise Refused(400, _("The file size must be known when the upload starts."))
    size = _header_number("Upload-Length")
    order = _own_order(project_no)
    file = start_upload(_settings(), order, _metadata().get("filename", ""), size, **_uploader())
    response = Response(status=201)
    response.headers["Location"] = url_for("uploads.status", upload_key=file.upload_key)
    response.headers[FILE_ID_HEADER] = str(file.id)
    return response


@bp.route("/uploads/<upload_key>", methods=["HEAD"])
@login_required
def status(upload_key: str):
    """tus: how many bytes of this upload the server has recorded (completing it if they
    are all there)."""
    _require_tus()
    file = _own_file(upload_key)
    offset, completed = durable_offset(_settings(), file)
    if completed:
        current_app.extensions["ptportal.tasks"].scan_soon(file.id)
    response = Response(status=200)
    response.headers["Upload-Offset"] = str(offset)
    response.headers[FILE_ID_HEADER] = str(file.id)
    response.headers["Upload-Length"] = str(file.size)
    return response


@bp.patch("/uploads/<upload_key>")
@login_required
def append(upload_key: str):
    """tus: append the body at ``Upload-Offset``, streamed to the staging file."""
    _require_tus()
    if request.mimetype != CHUNK_TYPE:
        raise Refused(415, _("Upload data must be sent as %(type)s.", type=CHUNK_TYPE))
    offset = _header_number("Upload-Offset")
    file = _own_file(upload_key)
    check_upload_continues(file)
    was_open = not is_complete(file)
    try:
        # A refused first chunk is answered at once; gunicorn discards the unread rest of the
        # body before the next request on the connection, and browsers read the early answer.
        new_offset = append_checked(_settings(), file, offset, _body(), request.content_length)
    finally:
        # Also when the request fails after completing a file a killed worker left behind.
        if was_open and is_complete(file):
            current_app.extensions["ptportal.tasks"].scan_soon(file.id)
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(new_offset)
    response.headers[FILE_ID_HEADER] = str(file.id)
    return response


@bp.delete("/uploads/<upload_key>")
@login_required
def cancel(upload_key: str):
    """tus termination: the customer cancels an unfinished upload."""
    _require_tus()
    abort_upload(_settings(), _own_file(upload_key))
    return Response(status=204)
