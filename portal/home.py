"""The signed-in customer's start page: their orders."""

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from shared.db import database
from shared.models import Order

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """List the customer's orders, newest first."""
    orders = (
        Order.select()
        .where(Order.customer == current_user.customer)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(50)
    )
    return render_template("home/index.html", orders=list(orders))


@bp.get("/healthz")
def health():
    """For load balancers and `ptportal check`: answers 200 when the database does."""
    database.execute_sql("SELECT 1")
    return {"status": "ok"}
