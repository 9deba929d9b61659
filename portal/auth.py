"""Sign-in, sign-out and the activation link: choose a password, ask for a new link."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.urls import iri_to_uri

from portal.extensions import limiter
from portal.users import CustomerUser, StaffMember
from shared.accounts.logins import set_password_with_token, sign_in, token_state
from shared.accounts.passwords import MAX_INPUT_BYTES, check_password
from shared.accounts.sessions import end_session, start_session
from shared.accounts.usernames import username_key
from shared.errors import Conflict, Invalid
from shared.notify.activation import request_new_link
from shared.tokens import LinkState

bp = Blueprint("auth", __name__)


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _login_limit() -> str:
    return f"{_settings().portal.login_attempts_per_minute} per minute"


def _link_limit() -> str:
    return f"{_settings().portal.link_requests_per_hour} per hour"


def form_username() -> str:
    """The rate-limit key of the username in the form: its canonical form, so that every
    spelling of one name counts together; text that can be no username shares one key."""
    return username_key(request.form.get("username", "")) or "-"


def safe_next(target: str | None) -> str:
    """``target`` if it names a page of this portal, else the start page (no open redirects).

    Checked in the form it leaves in: Werkzeug writes ``Location`` through ``iri_to_uri``,
    which drops tabs, newlines and leading control characters, so ``/<TAB>/evil.example``
    would leave as ``//evil.example``. What remains must be a path starting with a single
    ``/`` (no scheme, no host, no backslash) whose path is a GET route of this app.
    """
    location = _as_location(target)
    if location is None:
        return url_for("home.index")
    return location


def _as_location(target: str | None) -> str | None:
    if not target or "\\" in target:
        return None
    try:
        location = iri_to_uri(target)
        parts = urlsplit(location)
    except (ValueError, UnicodeError):
        return None
    if parts.scheme or parts.netloc or not location.startswith("/") or location.startswith("//"):
        return None
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(unquote(parts.path), method="GET")
    except RequestRedirect:
        pass  # the route exists with a trailing slash
    except HTTPException:
        return None
    return location


def begin_session(user: CustomerUser | StaffMember) -> None:
    """Sign ``user`` in with a fresh session id, keeping only the language choice.

    Whoever was signed in in this browser before (a customer when staff sign in, or the
    other way round) is signed out in the same step, on the server too.
    """
    if current_user.is_authenticated:
        end_session(current_user.session_key)
        logout_user()
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    session.permanent = True
    login_user(user)


def _too_long(password: str) -> bool:
    return len(password.encode("utf-8")) > MAX_INPUT_BYTES


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=form_username)
def login():
    """Show the sign-in form and sign a customer in (replacing a staff session here)."""
    if current_user.is_authenticated and not current_user.is_staff:
        return redirect(url_for("home.index"))
    error = None
    username = request.values.get("username", "")
    if request.method == "POST":
        password = request.form.get("password", "")
        result = None if _too_long(password) else sign_in(_vault(), username, password)
        if result and result.login:
            key = start_session(_settings().portal.session_hours, login=result.login)
            begin_session(CustomerUser(result.login, key))
            return redirect(safe_next(request.args.get("next")))
        if result and result.inactive:
            error = _("Your access has been deactivated. Please contact the print shop.")
        else:
            error = _("Username or password is not correct.")
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, username=username), status


@bp.post("/logout")
@login_required
def logout():
    """End the session on the server, not only in this browser."""
    end_session(current_user.session_key)
    was_staff = current_user.is_staff
    logout_user()
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    flash(_("You have been signed out."))
    return redirect(url_for("staff.login" if was_staff else "auth.login"))


def _vault():
    return current_app.extensions["ptportal.vault"]


def _invalid_link_page(state: LinkState):
    return render_template("auth/link_invalid.html", state=state.value), 410


@bp.get("/activate/<token>")
def activation_form(token: str):
    """Show the password form; opening the link does not use it up (mail scanners open links)."""
    state, row = token_state(token)
    if state is not LinkState.VALID:
        return _invalid_link_page(state)
    return render_template(
        "auth/activate.html", token=token, username=row.login.username, rules=None, error=None
    )


@bp.post("/activate/<token>")
@limiter.limit(_login_limit)
def activate(token: str):
    """Set the password; this is what uses the link up."""
    state, row = token_state(token)
    if state is not LinkState.VALID:
        return _invalid_link_page(state)
    password = request.form.get("password", "")
    confirmation = request.form.get("password_confirm", "")
    rules = check_password(password, row.login.username)
    error = None
    if _too_long(password):
        error = _("The password is too long.")
    elif password != confirmation:
        error = _("The two passwords do not match.")
    elif not rules.ok:
        error = _("Please choose a password that meets the rules below.")
    else:
        try:
            login = set_password_with_token(_vault(), token, password)
        except (Conflict, Invalid):
            return _invalid_link_page(token_state(token)[0])
        flash(_("Your password has been saved. Please sign in."))
        return redirect(url_for("auth.login", username=login.username))
    return render_template(
        "auth/activate.html", token=token, username=row.login.username, rules=rules, error=error
    ), 400


@bp.post("/activate/<token>/check")
def check(token: str):
    """htmx: the password rules, ticked off while the customer types."""
    state, row = token_state(token)
    username = row.login.username if state is LinkState.VALID else ""
    password = request.form.get("password", "")
    rules = check_password(password, username) if password else None
    return render_template("auth/_password_rules.html", rules=rules)


@bp.route("/activate", methods=["GET", "POST"])
@limiter.limit(_link_limit, methods=["POST"])
@limiter.limit(_link_limit, methods=["POST"], key_func=form_username)
def request_link():
    """Ask for a new activation link; the answer never tells whether the username exists."""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        if username and len(username) <= 200:
            request_new_link(_settings(), current_app.extensions["ptportal.links"], username)
            current_app.extensions["ptportal.tasks"].deliver_soon()
        return render_template(
            "auth/link_requested.html", link_minutes=_settings().portal.activation_link_minutes
        )
    return render_template("auth/request_link.html")
