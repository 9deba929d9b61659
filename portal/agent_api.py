"""The hotfolder agents' API (/api/v1/agent): the only way an agent talks to the portal.

An agent on the workflow server has no database and no view of the order folders; with
an agent token (``ApiToken.SCOPE_AGENT``) it reaches these endpoints and nothing else
(a workflow token reaches none of them). This module parses requests and checks who
asks; the work is ``shared.hotfolder.deliveries`` (leases, confirmations, heartbeats,
errors, notifications) and, for staff files going back to customers, the same tus
upload as the browser's (``shared.files.receiving``, scanned by the worker like any
upload). The OpenAPI document lists every endpoint (``portal.openapi``).
"""

from __future__ import annotations

import base64
from datetime import datetime

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file, url_for

from portal import api_schema as schema
from portal.uploads import (
    CHUNK_TYPE,
    TUS_VERSION,
    Refused,
    _body,
    _header_number,
    _metadata,
    _require_tus,
    refusal_for,
)
from shared.accounts.api_tokens import SCOPE_AGENT, authenticate_token
from shared.accounts.customers import find_contact
from shared.clock import utcnow
from shared.errors import Conflict, Invalid, NotFound, ServiceError
from shared.files.access import own_upload
from shared.files.preflighting import preflight_record
from shared.files.receiving import (
    OffsetMismatch,
    abort_upload,
    append_chunk,
    durable_offset,
    is_complete,
)
from shared.hotfolder import deliveries, outbound, reports
from shared.models import Order, OrderFile
from shared.notify.recipients import customer_address
from shared.orders.proofs import approval_file_name, approvals_placed, approvals_to_place

bp = Blueprint("agent_api", __name__, url_prefix="/api/v1/agent")

_STATUS = {Invalid: 400, NotFound: 404, Conflict: 409}
# A heartbeat interval assumed for lease requests that do not name one.
DEFAULT_HEARTBEAT_SECONDS = 30.0
# Bytes per read when a download is served without sendfile (TLS in gunicorn, tests):
# Werkzeug's default of 8 KiB costs a Python call per 8 KiB (bench/README.md).
DOWNLOAD_BLOCK_BYTES = 1024 * 1024
BUNDLE_TYPE = "application/x-ptportal-files"
# A batch of notification reports may hold many XMLs (8 MiB each at most, per the schema).
NOTIFICATIONS_BODY_BYTES = 16 * 1024 * 1024


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(ServiceError)
def service_error(exc: ServiceError):
    if request.endpoint and request.endpoint.startswith("agent_api.upload"):
        status, message = refusal_for(exc)
        headers = {"Upload-Offset": str(exc.offset)} if isinstance(exc, OffsetMismatch) else {}
        return _refusal(status, message, headers)
    body = {"error": str(exc)}
    if isinstance(exc, Invalid):
        body["field"] = exc.field
    return jsonify(body), _STATUS.get(type(exc), 400)


@bp.errorhandler(Refused)
def refused(exc: Refused):
    return _refusal(exc.status, exc.message, exc.headers)


@bp.url_value_preprocessor
def allow_large_bodies(endpoint: str | None, _values: dict | None) -> None:
    # URL value preprocessors run before every before_request hook. The app's hook that
    # refuses NUL characters reads request.form, which fixes the body limit of
    # request.stream for the whole request (the 1 MiB form limit), so the larger limits
    # of a tus chunk and of a batch of notifications have to be set here, before that.
    if endpoint == "agent_api.upload_append" and request.mimetype == CHUNK_TYPE:
        request.max_content_length = _settings().portal.upload_chunk_bytes
    elif endpoint == "agent_api.notifications":
        request.max_content_length = NOTIFICATIONS_BODY_BYTES


@bp.before_request
def require_agent_token():
    """Only a live agent token passes; a workflow token is told it is the wrong kind."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    row = None
    if scheme.lower() == "bearer" and token.strip():
        row = authenticate_token(token.strip(), request.remote_addr or "")
    if row is None:
        response = _refusal(401, "missing, wrong or revoked agent token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="ptportal agent"'
        return response
    if row.scope != SCOPE_AGENT:
        return _refusal(403, "this is not an agent token: create one of kind agent for agents")
    g.api_token = row
    return None


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    if request.endpoint and request.endpoint.startswith("agent_api.upload"):
        response.headers["Tus-Resumable"] = TUS_VERSION
    return response


def _json(fields: tuple[schema.Field, ...]) -> dict:
    data = request.get_json(silent=True)
    if data is None:
        raise Invalid("body", "must be valid JSON sent as application/json")
    return schema.parse_body(data, fields)


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}Z"


class _Orders:
    """The order part of file answers, built once per order in a request."""

    def __init__(self) -> None:
        self._built: dict[int, dict] = {}

    def __call__(self, order: Order) -> dict:
        if order.id not in self._built:
            customer = order.customer
            recipient = customer_address(customer, order)
            contact = None
            if recipient is not None:
                person = find_contact(customer, recipient.email)
                name = person.name if person else customer.name
                contact = {"name": name, "email": recipient.email}
            self._built[order.id] = {
                "project_no": order.project_no,
                "job_description": order.job_description,
                "due_date": order.due_date.isoformat() if order.due_date else None,
                "customer": {"customer_no": customer.customer_no, "name": customer.name},
                "contact": contact,
            }
        return self._built[order.id]


def _file_json(file: OrderFile, orders: _Orders) -> dict:
    return {
        "id": file.id,
        "folder": file.folder,
        "name": file.display_name,
        "stored_name": file.stored_name,
        "size": file.size,
        "sha256": file.sha256,
        "uploaded_at": _timestamp(file.received_at or file.created_at),
        "order": orders(file.order),
        "content_url": url_for("agent_api.content", file_id=file.id),
        # For the job notification; its findings in the staff's language.
        "preflight": preflight_record(file, _settings().notifications.staff_language),
    }


def _leases_json(leases: deliveries.Leases) -> dict:
    orders = _Orders()
    return {
        "files": [_file_json(file, orders) for file in leases.files],
        "refused": [
            {"file_id": r.file_id, "reason": r.reason, "path": r.path, "mine": r.mine}
            for r in leases.refused
        ],
        "lease_until": _timestamp(leases.until),
    }


@bp.get("/files")
def files():
    """Files waiting for a hotfolder (clean, not delivered, not leased); ``?limit=``."""
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise Invalid("limit", "a whole number from 1 to 1000")
    orders = _Orders()
    return jsonify(
        files=[_file_json(file, orders) for file in deliveries.waiting_files(int(limit))]
    )


@bp.post("/leases")
def lease():
    """Lease files to the agent, waiting up to ``wait`` seconds for one (long poll)."""
    values = _json(schema.LEASE)
    leases = deliveries.wait_for_leases(
        values["agent_id"],
        values.get("heartbeat_seconds", DEFAULT_HEARTBEAT_SECONDS),
        limit=values.get("max_files", 1),
        wait=values.get("wait", 0.0),
        holding=values.get("holding", []),
        file_ids=values.get("file_ids", []),
    )
    return jsonify(_leases_json(leases))


@bp.post("/leases/release")
def release():
    """Give leased files back (others may take them at once)."""
    values = _json(schema.RELEASE)
    return jsonify(released=deliveries.release(values["agent_id"], values["file_ids"]))


def _wide_blocks() -> None:
    """Serve the next file in large reads where the server streams it itself.

    gunicorn hands a file to the kernel with sendfile when it can (plain HTTP behind
    nginx); with TLS it reads the file in the file wrapper's blocks, 8 KiB by default.
    """
    wrapper = request.environ.get("wsgi.file_wrapper")
    if not isinstance(wrapper, type):
        return
    wide = current_app.extensions.get("ptportal.wide_file_wrapper")
    if wide is None or wide.__base__ is not wrapper:

        class WideFileWrapper(wrapper):
            def __init__(self, filelike, blksize: int = DOWNLOAD_BLOCK_BYTES) -> None:
                super().__init__(filelike, max(blksize, DOWNLOAD_BLOCK_BYTES))

        wide = current_app.extensions["ptportal.wide_file_wrapper"] = WideFileWrapper
    request.environ["wsgi.file_wrapper"] = wide


@bp.get("/files/<int:file_id>/content")
def content(file_id: int):
    """A file's bytes; ``Range`` continues an interrupted download. Any portal process
    serves it: the file is read from the portal's storage."""
    download = deliveries.downloads_for_agent(_settings().storage.order_root, [file_id]).get(
        file_id
    )
    if download is None:
        raise NotFound(f"no file {file_id} for the hotfolder")
    _wide_blocks()
    try:
        response = send_file(
            download.path,
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=download.stored_name,
            conditional=True,
            etag=download.sha256,
            max_age=0,
        )
    except FileNotFoundError:
        raise NotFound(f"file {file_id} is not in the portal's storage") from None
    digest = base64.b64encode(bytes.fromhex(download.sha256)).decode()
    response.headers["Repr-Digest"] = f"sha-256=:{digest}:"
    return response


@bp.post("/files/content")
def contents():
    """Several (small) files in one answer, each after a line ``<id> <size>`` (``<id> -``
    for one not handed out): for many small files the requests cost more than the bytes.
    A file that cannot be read on the way breaks the answer off (the agent fetches it
    alone)."""
    values = _json(schema.CONTENTS)
    found = deliveries.downloads_for_agent(_settings().storage.order_root, values["file_ids"])
    parts = []
    for file_id in values["file_ids"]:
        download = found.get(file_id)
        try:
            size = download.path.stat().st_size if download else None
        except OSError:
            size = None
        head = f"{file_id} {'-' if size is None else size}\n".encode()
        parts.append((head, download if size is not None else None, size or 0))

    def stream():
        for head, download, size in parts:
            yield head
            if download is None:
                continue
            with download.path.open("rb") as reader:
                left = size
                while left:
                    block = reader.read(min(DOWNLOAD_BLOCK_BYTES, left))
                    if not block:
                        raise OSError(f"{download.path} shrank while it was sent")
                    left -= len(block)
                    yield block

    length = sum(len(head) + size for head, _download, size in parts)
    response = Response(stream(), mimetype=BUNDLE_TYPE, direct_passthrough=True)
    response.headers["Content-Length"] = str(length)
    return response


@bp.post("/deliveries")
def confirm():
    """Confirm files placed in their hotfolders: path, time and SHA-256 of each."""
    values = _json(schema.CONFIRM)
    placed = [
        deliveries.Placed(item["file_id"], item["path"], item["placed_at"], item["sha256"])
        for item in values["deliveries"]
    ]
    outcomes = deliveries.confirm(values["agent_id"], placed)
    return jsonify(
        deliveries=[
            {"file_id": o.file_id, "outcome": o.outcome, "path": o.path, "message": o.message}
            for o in outcomes
        ]
    )


@bp.post("/heartbeat")
def heartbeat():
    """The agent is alive (host, version, watch mode, queue): its leases are extended."""
    values = _json(schema.HEARTBEAT)
    beat = reports.Beat(
        agent_id=values["agent_id"],
        host=values["host"],
        pid=values.get("pid", 0),
        version=values.get("version", ""),
        watch_mode=values.get("watch_mode", ""),
        queue_length=values.get("queue_length", 0),
        heartbeat_seconds=values["heartbeat_seconds"],
        stopped=values.get("stopped", False),
        release=tuple(values.get("release", [])),
    )
    held = reports.heartbeat(beat, g.api_token, request.remote_addr or "")
    return jsonify(leases=held, time=_timestamp(utcnow()))


@bp.post("/errors")
def report_error():
    """A problem the agent cannot solve itself (unwritable hotfolder, wrong checksum …)."""
    values = _json(schema.ERROR)
    new = reports.record_error(
        values["agent_id"],
        values["action"],
        values["path"],
        values["reason"],
        file_id=values.get("file_id"),
        project_no=values.get("project_no", ""),
    )
    return jsonify(new=new), 201 if new else 200


@bp.post("/errors/resolved")
def resolve_errors():
    """Paths (and files) the agent handled after all: their problems are closed."""
    values = _json(schema.RESOLVED)
    return jsonify(resolved=reports.resolve_errors(values["paths"], values.get("file_ids", [])))


@bp.post("/notifications")
def notifications():
    """XML job notifications the agent wrote (recorded, and mailed if configured)."""
    values = _json(schema.NOTIFICATIONS)
    written = [
        reports.Written(item["file_name"], tuple(item["file_ids"]), item["xml"].encode("utf-8"))
        for item in values["notifications"]
    ]
    outcomes = reports.record_notifications(_settings(), values["agent_id"], written)
    answers = []
    for item, outcome in zip(written, outcomes, strict=True):
        if isinstance(outcome, str):
            answers.append({"file_name": item.file_name, "error": outcome})
        else:
            answers.append(
                {
                    "file_name": item.file_name,
                    "id": outcome.id,
                    "mailed": outcome.mail_id is not None,
                }
            )
    return jsonify(notifications=answers), 201


@bp.get("/approvals")
def approvals():
    """Decided proofs whose approval file no agent placed yet (Druckfreigabe): the record
    the agent writes ``<proofApproval>`` of, and the file's name."""
    return jsonify(
        approvals=[
            {"id": proof.id, "file_name": approval_file_name(proof), "record": record}
            for proof, record in approvals_to_place()
        ]
    )


@bp.post("/approvals/placed")
def placed_approvals():
    """The agent placed these approval files: they are not handed out again."""
    values = _json(schema.APPROVALS_PLACED)
    placed = approvals_placed(values["agent_id"], values["proof_ids"])
    return jsonify(placed=placed)


@bp.get("/orders")
def orders():
    """Orders whose customers have a hotfolder, by id after ``?after=`` (drop folders)."""
    after = request.args.get("after", "0")
    if not after.isdigit():
        raise Invalid("after", "a whole number")
    rows = deliveries.hotfolder_orders(int(after), limit=500)
    return jsonify(
        orders=[
            {"id": order.id, "project_no": order.project_no, "customer_no": customer_no}
            for order, customer_no in rows
        ]
    )


# --- staff files back to the customer: tus 1.0 (creation, termination) --------------------


MAX_CHUNK_HEADER = "Ptportal-Max-Chunk-Bytes"


def _own_upload(upload_key: str) -> OrderFile:
    file = own_upload(upload_key, token=g.api_token)
    if file is None:
        raise NotFound(upload_key)
    return file


@bp.post("/orders/<project_no>/uploads")
def upload_create(project_no: str):
    """tus creation: a file staff dropped for the customer (folder In Bearbeitung or Final)."""
    _require_tus()
    if "Upload-Defer-Length" in request.headers:
        raise Refused(400, "the file size must be known when the upload starts")
    size = _header_number("Upload-Length")
    metadata = _metadata()
    dropped = outbound.Dropped(
        project_no=project_no,
        customer_no=metadata.get("customer_no", ""),
        folder=metadata.get("folder", ""),
        filename=metadata.get("filename", ""),
        size=size,
        source=metadata.get("source", "")[:4096],
        agent_id=metadata.get("agent_id", "")[:100],
    )
    file = outbound.start_outbound(_settings(), g.api_token, dropped)
    response = Response(status=201)
    response.headers["Location"] = url_for("agent_api.upload_status", upload_key=file.upload_key)
    return response


@bp.route("/uploads/<upload_key>", methods=["HEAD"])
def upload_status(upload_key: str):
    """tus: how many bytes of this upload the portal has."""
    _require_tus()
    file = _own_upload(upload_key)
    offset, completed = durable_offset(_settings(), file)
    if completed:  # a portal process died after the last byte: completed now
        _received(file)
    response = Response(status=200)
    response.headers["Upload-Offset"] = str(offset)
    # Not tus: the largest PATCH body this portal takes ([portal] upload_chunk_bytes).
    response.headers[MAX_CHUNK_HEADER] = str(_settings().portal.upload_chunk_bytes)
    response.headers["Upload-Length"] = str(file.size)
    return response


@bp.patch("/uploads/<upload_key>")
def upload_append(upload_key: str):
    """tus: append the body at ``Upload-Offset``; the complete file goes to the virus scan."""
    _require_tus()
    if request.mimetype != CHUNK_TYPE:
        raise Refused(415, f"upload data must be sent as {CHUNK_TYPE}")
    offset = _header_number("Upload-Offset")
    file = _own_upload(upload_key)
    was_open = not is_complete(file)
    try:
        new_offset = append_chunk(_settings(), file, offset, _body(), request.content_length)
    finally:
        # Also when the request fails after completing a file a killed process left behind.
        if was_open and is_complete(file):
            _received(file)
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(new_offset)
    return response


def _received(file: OrderFile) -> None:
    outbound.outbound_received(file)
    current_app.extensions["ptportal.tasks"].scan_soon(file.id)


@bp.delete("/uploads/<upload_key>")
def upload_cancel(upload_key: str):
    """tus termination: the agent cancels an unfinished upload (the file changed)."""
    _require_tus()
    abort_upload(_settings(), _own_upload(upload_key))
    return Response(status=204)
