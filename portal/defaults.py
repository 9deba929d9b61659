"""Admin page for the "ptportal" system defaults (seed 004, Systemstandards): edit them and
choose whether they apply to new customers only or to the existing ones too, the latter
only after a preview of what would change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext as _

from portal.forms import Form, done, reply
from portal.partials import wants_fragment
from portal.users import require_admin
from shared.accounts.defaults import (
    MAX_DELETE_AFTER_DAYS,
    DefaultsDraft,
    preview,
    save_defaults,
)
from shared.models import PortalLogin, SystemDefault

bp = Blueprint("defaults", __name__, url_prefix="/staff/defaults")
# Admins only, every route of this page.
bp.before_request(require_admin)

APPLY_NEW = "new"
APPLY_EXISTING = "existing"


def _values(row: SystemDefault) -> dict[str, str]:
    return {
        "username_from": row.username_from,
        "login_state": row.login_state,
        "create_hotfolder": "1" if row.create_hotfolder else "",
        "hotfolder_delete_after_days": str(row.hotfolder_delete_after_days),
        "show_job_description": "1" if row.show_job_description else "",
        "show_due_date": "1" if row.show_due_date else "",
        "show_tickets": "1" if row.show_tickets else "",
        "apply_to": APPLY_NEW,
    }


def _context(form: Form, changes=None, confirms: str = "") -> dict:
    return {
        "form": form,
        "schemes": SystemDefault.USERNAME_SCHEMES,
        "login_states": PortalLogin.STATES,
        "changes": changes,
        "confirms": confirms,
        "row": SystemDefault.portal(),
    }


def previewed(draft: DefaultsDraft) -> str:
    """What a confirmation carries: which values the admin saw the preview of. Changed
    after the preview, they get a new preview instead of being applied unseen."""
    return hashlib.sha256(json.dumps(asdict(draft), sort_keys=True).encode()).hexdigest()[:16]


@bp.get("/")
def index():
    """The defaults as they are."""
    return render_template("staff/defaults.html", **_context(Form(_values(SystemDefault.portal()))))


def _draft(form: Form) -> DefaultsDraft | None:
    draft = DefaultsDraft(
        username_from=form.choice("username_from", SystemDefault.USERNAME_SCHEMES),
        login_state=form.choice("login_state", PortalLogin.STATES),
        create_hotfolder=form.checked("create_hotfolder"),
        hotfolder_delete_after_days=form.integer(
            "hotfolder_delete_after_days", 0, MAX_DELETE_AFTER_DAYS
        )
        or 0,
        show_job_description=form.checked("show_job_description"),
        show_due_date=form.checked("show_due_date"),
        show_tickets=form.checked("show_tickets"),
    )
    return draft if form.ok else None


@bp.post("/")
def save():
    """Store the defaults. For existing customers too: first the preview, then, confirmed,
    the change (both recorded in the audit log)."""
    form = Form(request.form)
    apply_to = form.choice("apply_to", (APPLY_NEW, APPLY_EXISTING))
    draft = _draft(form)
    if draft is None:
        return reply("staff/_defaults_form.html", "staff/defaults.html", **_context(form))
    if apply_to == APPLY_EXISTING and request.form.get("confirmed") != previewed(draft):
        # Not a problem with the form: what would change, to confirm.
        template = "staff/_defaults_form.html" if wants_fragment() else "staff/defaults.html"
        return render_template(template, **_context(form, preview(draft), previewed(draft)))
    applied = save_defaults(draft, apply_to_existing=apply_to == APPLY_EXISTING)
    if apply_to == APPLY_EXISTING:
        flash(
            _(
                "The defaults were saved and applied to the existing customers "
                "(changed: %(count)d).",
                count=applied,
            )
        )
    else:
        flash(_("The defaults were saved; they apply to new customers."))
    return done(url_for(".index"))
