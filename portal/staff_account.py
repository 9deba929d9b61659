"""A staff user's own access: the link to choose a password, the second step of the
sign-in (a TOTP or recovery code, or setting TOTP up when admins require it), and the
account page where two-factor sign-in is switched on and off.

The sign-in's first step (``staff.login``) hands over here once the password is right
and a second factor is needed; the user is remembered in the signed session cookie for
five minutes, and only this step starts the server-side session.
"""

from __future__ import annotations

import time

import segno
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
from flask_login import current_user

from portal.auth import begin_session, safe_next
from portal.extensions import limiter
from portal.forms import done
from portal.users import StaffMember, staff_required
from shared.accounts import two_factor
from shared.accounts.passwords import MAX_INPUT_BYTES, check_password
from shared.accounts.sessions import start_session
from shared.accounts.staff import (
    set_staff_password_with_token,
    staff_token_state,
    two_factor_required,
)
from shared.errors import Conflict, Invalid
from shared.models import StaffUser
from shared.tokens import LinkState

bp = Blueprint("staff_account", __name__, url_prefix="/staff")

PENDING_KEY = "staff_pending"
SETUP_KEY = "totp_setup"
PENDING_SECONDS = 300
MAX_TRIES = 5


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _login_limit() -> str:
    return f"{_settings().portal.login_attempts_per_minute} per minute"


def qr_code(uri: str) -> str:
    """The ``otpauth://`` URI as a QR code, drawn here as an SVG data URI (no request out)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#1d2430")


def _setup_context(staff: StaffUser, secret: str) -> dict:
    uri = two_factor.provisioning_uri(secret, staff.username, _settings().portal.shop_name)
    # Grouped in fours for typing it in by hand.
    grouped = " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))
    return {"qr": qr_code(uri), "secret": grouped}


# --- the link to choose a password ------------------------------------------------------


def _invalid_link(state: LinkState):
    return render_template("staff/link_invalid.html", state=state.value), 410


@bp.get("/activate/<token>")
def activation_form(token: str):
    """The password form; opening the link does not use it up (mail scanners open links)."""
    state, row = staff_token_state(token)
    if state is not LinkState.VALID:
        return _invalid_link(state)
    return render_template(
        "staff/activate.html", token=token, username=row.staff.username, rules=None, error=None
    )


@bp.post("/activate/<token>")
@limiter.limit(_login_limit)
def activate(token: str):
    """Store the password; this uses the link up and ends the user's other sessions."""
    state, row = staff_token_state(token)
    if state is not LinkState.VALID:
        return _invalid_link(state)
    password = request.form.get("password", "")
    rules = check_password(password, row.staff.username)
    error = None
    if len(password.encode("utf-8")) > MAX_INPUT_BYTES:
        error = _("The password is too long.")
    elif password != request.form.get("password_confirm", ""):
        error = _("The two passwords do not match.")
    elif not rules.ok:
        error = _("Please choose a password that meets the rules below.")
    else:
        try:
            staff = set_staff_password_with_token(
                current_app.extensions["ptportal.vault"], token, password
            )
        except (Conflict, Invalid):
            return _invalid_link(staff_token_state(token)[0])
        flash(_("Your password has been saved. Please sign in."))
        return redirect(url_for("staff.login", username=staff.username))
    return render_template(
        "staff/activate.html", token=token, username=row.staff.username, rules=rules, error=error
    ), 400


# --- the second step of the sign-in ---------------------------------------------------


def start_second_step(staff: StaffUser, next_url: str | None):
    """Called by ``staff.login`` once the password was right: ask for the second factor."""
    session[PENDING_KEY] = {
        "id": staff.id,
        "at": int(time.time()),
        "next": next_url or "",
        "tries": 0,
    }
    session.pop(SETUP_KEY, None)
    return redirect(url_for("staff_account.second_factor"))


def _pending() -> StaffUser | None:
    """The staff user whose password was right a moment ago, if still within the time."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    staff = StaffUser.get_or_none(StaffUser.id == pending.get("id"))
    if staff is None or not staff.active:
        return None
    return staff


def _second_step_page(staff: StaffUser, error: str | None = None, status: int = 200):
    context = {"user": staff, "error": error, "setup": None}
    if not staff.has_two_factor:
        secret = session.get(SETUP_KEY) or two_factor.new_secret()
        session[SETUP_KEY] = secret
        context["setup"] = _setup_context(staff, secret)
    return render_template("staff/second_factor.html", **context), status


def _finish_sign_in(staff: StaffUser):
    next_url = session.get(PENDING_KEY, {}).get("next")
    key = start_session(_settings().portal.session_hours, staff=staff)
    begin_session(StaffMember(staff, key))
    return safe_next(next_url)


@bp.get("/login/code")
def second_factor():
    """Ask for the code from the authenticator app (or set the app up, if required)."""
    staff = _pending()
    if staff is None:
        session.pop(PENDING_KEY, None)
        return redirect(url_for("staff.login"))
    return _second_step_page(staff)


@bp.post("/login/code")
@limiter.limit(_login_limit)
def check_second_factor():
    """Check the code; five wrong ones and the password is asked again."""
    staff = _pending()
    if staff is None:
        session.pop(PENDING_KEY, None)
        flash(_("Please sign in again."))
        return redirect(url_for("staff.login"))
    code = request.form.get("code", "")[:64]
    if staff.has_two_factor:
        if two_factor.verify(staff, code):
            return redirect(_finish_sign_in(staff))
    elif two_factor_required():
        try:
            codes = two_factor.enrol_at_sign_in(staff, session.get(SETUP_KEY, ""), code)
        except Invalid:
            pass
        else:
            next_url = _finish_sign_in(staff)
            return render_template("staff/recovery_codes.html", codes=codes, next_url=next_url)
    pending = session[PENDING_KEY]
    pending["tries"] = pending.get("tries", 0) + 1
    session[PENDING_KEY] = pending
    if pending["tries"] >= MAX_TRIES:
        session.pop(PENDING_KEY, None)
        flash(_("Too many wrong codes. Please sign in again."))
        return redirect(url_for("staff.login"))
    return _second_step_page(staff, _("This code is not correct."), 401)


# --- own account: two-factor sign-in ------------------------------------------------------


def _account_page(**extra):
    staff = StaffUser.get_by_id(current_user.staff.id)
    context = {
        "user": staff,
        "required": two_factor_required(),
        "recovery_left": two_factor.unused_recovery_codes(staff),
        "setup": None,
        "codes": None,
        "error": None,
    }
    context.update(extra)
    return render_template("staff/account.html", **context)


@bp.get("/account/")
@staff_required
def account():
    """The signed-in staff user's account: two-factor sign-in on or off, recovery codes."""
    return _account_page()


@bp.post("/account/two-factor")
@staff_required
def start_setup():
    """Show a new secret as a QR code; it counts once a code from the app confirms it."""
    secret = two_factor.new_secret()
    session[SETUP_KEY] = secret
    return _account_page(setup=_setup_context(current_user.staff, secret))


@bp.post("/account/two-factor/confirm")
@staff_required
@limiter.limit(_login_limit)
def confirm_setup():
    """Switch two-factor sign-in on once the code matches; show the recovery codes once."""
    secret = session.get(SETUP_KEY)
    if not secret:
        return done(url_for(".account"))
    try:
        codes = two_factor.enable(current_user.staff, secret, request.form.get("code", "")[:64])
    except Invalid:
        error = _("This code is not correct. Check the time on your phone and try again.")
        return _account_page(setup=_setup_context(current_user.staff, secret), error=error), 422
    session.pop(SETUP_KEY, None)
    return _account_page(codes=codes)


@bp.post("/account/recovery-codes")
@staff_required
def new_recovery_codes():
    """New recovery codes (the old ones stop working)."""
    try:
        codes = two_factor.renew_recovery_codes(current_user.staff)
    except Conflict:
        return done(url_for(".account"))
    return _account_page(codes=codes)


@bp.post("/account/two-factor/off")
@staff_required
def switch_off():
    """Switch two-factor sign-in off (not while admins require it)."""
    try:
        two_factor.disable(current_user.staff)
    except Conflict:
        flash(_("Two-factor sign-in is required for every staff user; it stays on."))
    else:
        flash(_("Two-factor sign-in is off."))
    return done(url_for(".account"))
