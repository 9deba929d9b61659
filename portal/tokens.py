"""Staff page for API tokens (seed 000): create with a name and a kind (workflow system or
hotfolder agent), shown once, last use and last host, revoke."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from portal.users import require_admin, staff_required
from shared.accounts.api_tokens import (
    SCOPE_WORKFLOW,
    SCOPES,
    all_tokens,
    create_token,
    revoke_token,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.models import ApiToken

bp = Blueprint("tokens", __name__, url_prefix="/staff/tokens")
# Tokens are for admins only, every route of this page (also routes added later).
bp.before_request(require_admin)


def _page(new_token: str = "", error: str = "", name: str = "", scope: str = SCOPE_WORKFLOW):
    response = make_response(
        render_template(
            "staff/tokens.html",
            tokens=all_tokens(),
            new_token=new_token,
            error=error,
            name=name,
            scope=scope,
            scopes=SCOPES,
        )
    )
    # The page may show a token once: no cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@staff_required
def index():
    """Every API token with its last use; admins create and revoke them here."""
    return _page()


@bp.post("/")
@staff_required
def create():
    """Create a token (for the workflow system or a hotfolder agent) and show it this one time."""
    name = request.form.get("name", "").strip()
    scope = request.form.get("scope", SCOPE_WORKFLOW)
    if scope not in SCOPES:
        scope = SCOPE_WORKFLOW
    try:
        token = create_token(name, scope)
    except Invalid:
        return _page(error=_("Give the token a name, e.g. ptworkflow."), name=name, scope=scope)
    except Conflict:
        return _page(error=_("A token with this name exists already."), name=name, scope=scope)
    return _page(new_token=token, name=name, scope=scope)


@bp.post("/<int:token_id>/revoke")
@staff_required
def revoke(token_id: int):
    """Revoke a token: the system using it is locked out at once."""
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None:
        abort(404)
    try:
        revoke_token(row.name)
    except NotFound:
        abort(404)
    flash(_("The token %(name)s was revoked.", name=row.name))
    return redirect(url_for("tokens.index"))
