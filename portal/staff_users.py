"""Admin page for staff users: create (an activation link, never a password, goes by mail),
edit, disable (their sessions end at once), reset two-factor sign-in, require it for all."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.forms import Form, done, reply
from portal.partials import wants_fragment
from portal.users import require_admin
from shared.accounts import two_factor
from shared.accounts.defaults import set_two_factor_required
from shared.accounts.staff import ROLES, all_staff, invite_staff, two_factor_required, update_staff
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.models import StaffUser
from shared.notify.staff_invitation import send_staff_activation

bp = Blueprint("staff_users", __name__, url_prefix="/staff/users")
# Admins only, every route of this page.
bp.before_request(require_admin)


def _staff(staff_id: int) -> StaffUser:
    staff = StaffUser.get_or_none(StaffUser.id == staff_id)
    if staff is None:
        abort(404)
    return staff


def _send_link(staff: StaffUser) -> str:
    """Queue the activation link; returns the notice (or why it could not go)."""
    try:
        with write_transaction():
            mail = send_staff_activation(
                current_app.config["PTPORTAL_SETTINGS"],
                current_app.extensions["ptportal.links"],
                staff,
            )
    except Conflict:
        return _(
            "%(username)s has no usable address (or is disabled): no link was sent.",
            username=staff.username,
        )
    current_app.extensions["ptportal.tasks"].deliver_soon()
    return _("An activation link goes to %(address)s.", address=mail.recipients)


def _index_context(form: Form) -> dict:
    return {
        "users": all_staff(),
        "form": form,
        "roles": ROLES,
        "required": two_factor_required(),
    }


@bp.get("/")
def index():
    """Every staff user with role, state and two-factor sign-in; a form for a new one."""
    return render_template("staff/users.html", **_index_context(Form({"role": "staff"})))


@bp.post("/")
def create():
    """Create a staff user and mail them the link to choose a password."""
    form = Form(request.form)
    username = form.text("username", required=True, max_length=100)
    name = form.text("name", max_length=200)
    email = form.email("email", required=True)
    role = form.choice("role", ROLES)
    if form.ok:
        try:
            staff = invite_staff(username, name, email, role == StaffUser.ROLE_ADMIN)
        except Conflict:
            form.refuse("username", _("This username is taken."))
        except Invalid as exc:
            message = _("At most 100 characters without spaces.")
            form.refuse(exc.field, message if exc.field == "username" else exc.message)
        else:
            flash(_("The staff user %(username)s was created.", username=staff.username))
            flash(_send_link(staff))
            return done(url_for(".show", staff_id=staff.id))
    return reply("staff/_user_new_form.html", "staff/users.html", **_index_context(form))


@bp.post("/two-factor-required")
def require_two_factor():
    """Require two-factor sign-in of every staff user (or stop requiring it)."""
    required = request.form.get("required") == "1"
    set_two_factor_required(required)
    if required:
        flash(_("Every staff user now signs in with a code from an authenticator app."))
    else:
        flash(_("Two-factor sign-in is now each staff user's choice."))
    return done(url_for(".index"))


def _values(staff: StaffUser) -> dict[str, str]:
    return {
        "name": staff.name,
        "email": staff.email,
        "role": staff.role,
        "active": "1" if staff.active else "",
    }


def _show_context(staff: StaffUser, form: Form, notice: str = "") -> dict:
    return {
        "user": staff,
        "form": form,
        "roles": ROLES,
        "notice": notice,
        "recovery_left": two_factor.unused_recovery_codes(staff),
    }


@bp.get("/<int:staff_id>")
def show(staff_id: int):
    """One staff user: name, address, role, active; links and two-factor reset."""
    staff = _staff(staff_id)
    return render_template("staff/user.html", **_show_context(staff, Form(_values(staff))))


@bp.post("/<int:staff_id>")
def update(staff_id: int):
    """Save a staff user; disabling signs them out everywhere at once."""
    staff = _staff(staff_id)
    form = Form(request.form)
    name = form.text("name", max_length=200)
    email = form.email("email")
    role = form.choice("role", ROLES)
    active = form.checked("active")
    if form.ok:
        try:
            staff = update_staff(staff, name=name, email=email, role=role, active=active)
        except Conflict:
            form.refuse(
                "active", _("The last active admin can be neither disabled nor made staff.")
            )
        else:
            context = _show_context(staff, Form(_values(staff)), _("The staff user was saved."))
            if not staff.active:
                context["notice"] = _(
                    "%(username)s is disabled and signed out.", username=staff.username
                )
            return reply_saved(context)
    return reply("staff/_user_form.html", "staff/user.html", **_show_context(staff, form))


def reply_saved(context: dict):
    if wants_fragment():
        return render_template("staff/_user_form.html", **context)
    flash(context["notice"])
    return done(url_for(".show", staff_id=context["user"].id))


@bp.post("/<int:staff_id>/activation")
def send_activation(staff_id: int):
    """Mail a new link to set a password (also to reset a forgotten one)."""
    staff = _staff(staff_id)
    flash(_send_link(staff))
    return done(url_for(".show", staff_id=staff.id))


@bp.post("/<int:staff_id>/two-factor/reset")
def reset_two_factor(staff_id: int):
    """Switch off a staff user's two-factor sign-in (lost phone and recovery codes)."""
    staff = _staff(staff_id)
    two_factor.disable(staff, by_admin=True)
    if staff.id == current_user.staff.id:
        flash(_("Your two-factor sign-in was switched off."))
    else:
        flash(
            _(
                "Two-factor sign-in of %(username)s was switched off; they set it up again "
                "at their next sign-in if it is required.",
                username=staff.username,
            )
        )
    return done(url_for(".show", staff_id=staff.id))
