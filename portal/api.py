"""The workflow API (/api/v1): how an ERP or PTworkflow pushes customers, orders and tickets."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for

from portal import api_schema as schema
from shared.accounts.api_tokens import SCOPE_WORKFLOW, authenticate_token
from shared.accounts.customers import add_contact, get_customer, upsert_customer
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound, ServiceError
from shared.mail.templates import TemplateProblem
from shared.models import Contact, Customer
from shared.orders.orders import add_ticket, create_order, get_order, order_summary

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_STATUS = {Invalid: 400, NotFound: 404, Conflict: 409, TemplateProblem: 422}


@bp.errorhandler(ServiceError)
def service_error(exc: ServiceError):
    body = {"error": str(exc)}
    if isinstance(exc, Invalid):
        body["field"] = exc.field
    return jsonify(body), _STATUS.get(type(exc), 400)


@bp.before_request
def require_token():
    if request.endpoint == "api.openapi":
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    row = None
    if scheme.lower() == "bearer" and token.strip():
        row = authenticate_token(token.strip(), request.remote_addr or "")
    if row is None:
        response = jsonify(error="missing, wrong or revoked API token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="ptportal"'
        return response, 401
    if row.scope != SCOPE_WORKFLOW:
        return jsonify(error="an agent token reaches only /api/v1/agent/"), 403
    g.api_token = row
    return None


def _json_body() -> object:
    data = request.get_json(silent=True)
    if data is None:
        raise Invalid("body", "must be valid JSON sent as application/json")
    return data


def _customer_json(customer: Customer) -> dict:
    return {
        "customer_no": customer.customer_no,
        "name": customer.name,
        "email": customer.email,
        "portal_enabled": customer.portal_enabled,
        "create_hotfolder": customer.create_hotfolder,
        "hotfolder_delete_after_days": customer.hotfolder_delete_after_days,
        "language": customer.language,
    }


def _contact_json(contact: Contact) -> dict:
    return {"email": contact.email, "name": contact.name, "favorite": contact.favorite}


@bp.post("/customers")
def upsert_customer_view():
    """Create a customer, or update the fields given for an existing one."""
    values = schema.parse_body(_json_body(), schema.CUSTOMER)
    with write_transaction():
        customer, created = upsert_customer(values.pop("customer_no"), **values)
    return jsonify(_customer_json(customer)), 201 if created else 200


@bp.post("/customers/<customer_no>/contacts")
def add_contact_view(customer_no: str):
    """Add a contact to a customer (or update it, matched by email)."""
    values = schema.parse_body(_json_body(), schema.CONTACT)
    with write_transaction():
        contact = add_contact(get_customer(customer_no), **values)
    return jsonify(_contact_json(contact)), 201


@bp.post("/orders")
def create_order_view():
    """Create an order; portal login, activation mail and folders follow the switches."""
    values = schema.parse_body(_json_body(), schema.ORDER)
    settings = current_app.config["PTPORTAL_SETTINGS"]
    order, actions = create_order(settings, current_app.extensions["ptportal.links"], **values)
    current_app.extensions["ptportal.tasks"].deliver_soon()
    body = order_summary(order) | {"actions": actions}
    response = jsonify(body)
    response.headers["Location"] = url_for("api.show_order", project_no=order.project_no)
    return response, 201


@bp.post("/orders/<project_no>/tickets")
def add_ticket_view(project_no: str):
    """Add a ticket to an order."""
    values = schema.parse_body(_json_body(), schema.TICKET)
    ticket = add_ticket(project_no, **values)
    return jsonify({"ticket_no": ticket.ticket_no, "title": ticket.title}), 201


@bp.get("/orders/<project_no>")
def show_order(project_no: str):
    """An order's state: portal login, folders, tickets."""
    return jsonify(order_summary(get_order(project_no)))


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    from portal.openapi import document

    return jsonify(document())
