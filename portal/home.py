"""The start page sends everybody where they belong; branding; a health check."""

from flask import Blueprint, Response, abort, current_app, redirect, send_file, url_for
from flask_login import current_user

from shared.config import LOGO_TYPES
from shared.db import database

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Customers to their orders, staff to the overview, everybody else to sign in."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("staff.index" if current_user.is_staff else "orders.index"))


@bp.get("/healthz")
def health():
    """For load balancers and `ptportal check`: answers 200 when the database does."""
    database.execute_sql("SELECT 1")
    return {"status": "ok"}


@bp.get("/brand.css")
def brand_css():
    """The shop's colours from client.ini (a stylesheet, since the CSP forbids inline styles)."""
    color = current_app.config["PTPORTAL_SETTINGS"].portal.primary_color
    css = f":root {{ --primary: {color}; --primary-dark: {_darker(color)}; }}\n"
    response = Response(css, mimetype="text/css")
    response.cache_control.max_age = 300
    return response


def _darker(color: str, factor: float = 0.78) -> str:
    channels = (int(color[index : index + 2], 16) for index in (1, 3, 5))
    return "#" + "".join(f"{int(channel * factor):02x}" for channel in channels)


@bp.get("/brand/logo")
def logo():
    """The shop's logo from client.ini."""
    path = current_app.config["PTPORTAL_SETTINGS"].portal.logo_file
    if path is None:
        abort(404)
    response = send_file(path, mimetype=LOGO_TYPES[path.suffix.lower()], max_age=300)
    # An SVG opened on its own must not run script on the portal's origin.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
