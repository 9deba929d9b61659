"""Staff page "Hotfolder": every upload's way into the internal hotfolder, live via htmx."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from portal.partials import page_number, wants_fragment
from portal.users import staff_required
from shared.hotfolder.status import (
    LAST_PAGE,
    STAGES,
    agent_statuses,
    file_journeys,
    open_agent_errors,
    recent_transfers,
)

bp = Blueprint("hotfolder", __name__, url_prefix="/staff/hotfolder")


@bp.get("/")
@staff_required
def index():
    """Uploads with their stage and hotfolder path, the agents' heartbeats and their errors."""
    stage = request.args.get("state", "")
    filters = {
        "customer": request.args.get("customer", ""),
        "q": request.args.get("q", ""),
        "state": stage if stage in STAGES else "",
    }
    number = min(page_number(), LAST_PAGE)
    context = {
        "filters": filters,
        "stages": STAGES,
        "page_number": number,
        "page": file_journeys(filters["customer"], filters["q"], filters["state"], number),
        "agents": agent_statuses(),
        "errors": open_agent_errors(),
        "transfers": recent_transfers(),
    }
    template = "staff/_hotfolder_files.html" if wants_fragment() else "staff/hotfolder.html"
    return render_template(template, **context)
