"""Staff page "Hotfolder": every upload's way into the internal hotfolder, live via htmx."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, make_response, render_template, request

from portal.users import staff_required
from shared.hotfolder_status import (
    STAGES,
    agent_statuses,
    file_journeys,
    open_agent_errors,
    recent_transfers,
)

bp = Blueprint("hotfolder", __name__, url_prefix="/staff/hotfolder")

# Like the agent: an agent silent for three heartbeats counts as gone.
MISSED_HEARTBEATS = 3


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/")
@staff_required
def index():
    """Uploads with their stage and hotfolder path, the agents' heartbeats and their errors."""
    settings = current_app.config["PTPORTAL_SETTINGS"]
    stage = request.args.get("state", "")
    filters = {
        "customer": request.args.get("customer", ""),
        "q": request.args.get("q", ""),
        "state": stage if stage in STAGES else "",
    }
    stale_after = timedelta(seconds=MISSED_HEARTBEATS * settings.agent.heartbeat_seconds)
    context = {
        "filters": filters,
        "stages": STAGES,
        "page": file_journeys(filters["customer"], filters["q"], filters["state"], _page_number()),
        "agents": agent_statuses(stale_after),
        "errors": open_agent_errors(),
        "transfers": recent_transfers(),
    }
    partial = bool(request.headers.get("HX-Request"))
    template = "staff/_hotfolder_files.html" if partial else "staff/hotfolder.html"
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request"
    return response
