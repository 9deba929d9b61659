"""The start page sends everybody where they belong; a health check for load balancers."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user

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
