"""The audit log: who acts in a request (for ``shared.audit``), and the staff page that
reads it, filtered and paged, exported as CSV. Nothing here edits or deletes entries."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    render_template,
    request,
    stream_with_context,
)
from flask_login import current_user

from portal.partials import page_number, wants_fragment
from portal.users import staff_required
from shared import audit

bp = Blueprint("audit", __name__, url_prefix="/staff/audit")

CSV_COLUMNS = ("time_utc", "actor_kind", "actor", "address", "action", "target", "customer_no")


def request_actor() -> audit.Actor:
    """Who acts in this request: staff user, customer login, API token or nobody yet."""
    address = request.remote_addr or ""
    if current_user.is_authenticated:
        if current_user.is_staff:
            return audit.Actor(audit.ACTOR_STAFF, current_user.staff.username, address)
        return audit.Actor(audit.ACTOR_CUSTOMER, current_user.login.username, address)
    token = g.get("api_token")
    if token is not None:
        return audit.Actor(audit.ACTOR_API, token.name, address)
    return audit.Actor(audit.ACTOR_ANONYMOUS, "", address)


def register_actor(app: Flask) -> None:
    """Make every request's records name the request's actor (asked only when recording)."""

    @app.before_request
    def _set_actor() -> None:
        g.audit_actor_token = audit.set_actor(request_actor)

    @app.teardown_request
    def _reset_actor(_exc: BaseException | None) -> None:
        token = g.pop("audit_actor_token", None)
        if token is not None:
            audit.reset_actor(token)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _utc(day: date | None) -> datetime | None:
    """Local midnight at the start of ``day`` as naive UTC (how times are stored)."""
    if day is None:
        return None
    zone = ZoneInfo(current_app.config["PTPORTAL_SETTINGS"].portal.time_zone)
    local = datetime.combine(day, time(0, 0), tzinfo=zone)
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _filters() -> tuple[audit.AuditFilter, dict[str, str]]:
    typed = {
        name: request.args.get(name, "").strip()[:100]
        for name in ("area", "actor", "customer", "q", "since", "until")
    }
    since, until = _day(typed["since"]), _day(typed["until"])
    filters = audit.AuditFilter(
        area=typed["area"] if typed["area"] in audit.AREAS else "",
        actor=typed["actor"],
        customer_no=typed["customer"],
        text=typed["q"],
        since=_utc(since),
        until=_utc(until + timedelta(days=1)) if until else None,
    )
    return filters, typed


@bp.get("/")
@staff_required
def index():
    """The log, newest first, narrowed by area, actor, customer, text and dates."""
    filters, typed = _filters()
    context = {
        "page": audit.search(filters, page_number()),
        "typed": typed,
        "areas": audit.AREAS,
        "retention_days": current_app.config["PTPORTAL_SETTINGS"].audit.retention_days,
    }
    template = "staff/_audit_list.html" if wants_fragment() else "staff/audit.html"
    return render_template(template, **context)


def _cell(value: str) -> str:
    # A spreadsheet would run "=…" as a formula: such cells start with a quote.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _rows(filters: audit.AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, "detail"])
    yield buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for entry in audit.every_entry(filters):
        writer.writerow(
            [
                entry.created_at.isoformat(timespec="seconds") + "Z",
                *(
                    _cell(value)
                    for value in (
                        entry.actor_kind,
                        entry.actor_name,
                        entry.address,
                        entry.action,
                        entry.target,
                        entry.customer_no,
                        entry.detail,
                    )
                ),
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@bp.get("/export.csv")
@staff_required
def export():
    """The filtered log as CSV, streamed row by row (constant memory for any length)."""
    filters, _typed = _filters()
    response = Response(stream_with_context(_rows(filters)), mimetype="text/csv")
    stamp = datetime.now().strftime("%Y-%m-%d")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
