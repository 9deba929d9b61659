"""The workflow API (/api/v1): how an ERP or PTworkflow pushes customers, orders and tickets."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from portal import api_schema as schema
from shared.accounts.api_tokens import SCOPE_WORKFLOW, authenticate_token
from shared.accounts.customers import (
    add_contact,
    contacts_of,
    get_customer,
    search_customers,
    upsert_customer,
)
from shared.accounts.logins import is_activated, logins_of
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound, ServiceError
from shared.mail.templates import TemplateProblem
from shared.models import LANGUAGES, Contact, Customer, Order, StaffUser
from shared.orders.listing import OrderFilter, filter_orders
from shared.orders.orders import (
    add_ticket,
    create_order,
    get_order,
    order_summary,
    set_order_state,
    update_order,
)
from shared.orders.print_spec import update_print_spec
from shared.orders.proofs import approval_record
from shared.orders.workflow import order_files_record
from shared.orders.workflow_xml import approval_document
from shared.paging import PER_PAGE, Page

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
    g.api_token = row  # also names the token as who acts in the audit log
    return None


def _json_body() -> object:
    if not request.is_json:
        raise Invalid("body", "must be valid JSON sent as application/json")
    return schema.parse_json(request.get_data(cache=False))


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


def _page_json(page: Page, items: list[dict]) -> dict:
    return {
        "items": items,
        "page": page.number,
        "per_page": page.per_page,
        "total": page.total,
        "pages": page.pages,
    }


@bp.get("/customers")
def list_customers():
    """Customers, by number, a page at a time; ``q`` searches number, name and email."""
    query = schema.parse_query(request.args, schema.CUSTOMER_LIST)
    page = search_customers(
        query.get("q", ""), query.get("page", 1), query.get("per_page", PER_PAGE)
    )
    return jsonify(_page_json(page, [_customer_json(customer) for customer in page.items]))


@bp.get("/customers/<customer_no>")
def show_customer(customer_no: str):
    """A customer with its contacts and portal logins."""
    customer = get_customer(customer_no)
    body = _customer_json(customer) | {
        "contacts": [_contact_json(contact) for contact in contacts_of(customer)],
        "portal_logins": [
            {
                "username": login.username,
                "email": login.email,
                "state": login.state,
                "language": login.language,
                "activated": is_activated(login),
            }
            for login in logins_of(customer)
        ],
    }
    return jsonify(body)


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


@bp.patch("/orders/<project_no>")
def update_order_view(project_no: str):
    """Change an order: job description, due date, contact, owner; close, cancel, reopen."""
    values = schema.parse_body(_json_body(), schema.ORDER_UPDATE, null_clears=True)
    cleared = {"trim_size": "", "page_count": 0}  # what null means for the print data
    print_spec = {
        name: cleared[name] if values[name] is None else values[name]
        for name in cleared
        if name in values
    }
    for name in print_spec:
        values.pop(name)
    state = values.pop("state", None)
    if state is not None and state not in Order.STATES:
        raise Invalid("state", "one of " + ", ".join(Order.STATES))
    # null clears: no date, no chosen contact, no owner, no job description.
    for name in ("contact_email", "owner", "job_description"):
        if name in values and values[name] is None:
            values[name] = ""
    with write_transaction():
        get_order(project_no)
        if values:
            update_order(project_no, **values)
        if state is not None:
            set_order_state(project_no, state)
    if print_spec:
        again = update_print_spec(get_order(project_no), print_spec)
        current_app.extensions["ptportal.tasks"].preflight_soon(again)
    return jsonify(order_summary(get_order(project_no)))


def _order_item(order: Order, owners: dict[int, str]) -> dict:
    return {
        "project_no": order.project_no,
        "customer_no": order.customer.customer_no,
        "job_description": order.job_description,
        "due_date": order.due_date.isoformat() if order.due_date else None,
        "state": order.state,
        "owner": owners.get(order.owner_id),
        "created_at": order.created_at.isoformat() + "Z",
    }


@bp.get("/orders")
def list_orders():
    """Orders, newest first, a page at a time, filtered by text, customer, state, owner
    and due date."""
    query = schema.parse_query(request.args, schema.ORDER_LIST)
    if query.get("state") and query["state"] not in Order.STATES:
        raise Invalid("state", "one of " + ", ".join(Order.STATES))
    filters = OrderFilter(
        query=query.get("q", ""),
        customer_no=query.get("customer_no", ""),
        state=query.get("state", ""),
        owner=query.get("owner", ""),
        due_from=query.get("due_from"),
        due_until=query.get("due_until"),
    )
    page = filter_orders(filters, query.get("page", 1), query.get("per_page", PER_PAGE))
    owner_ids = {order.owner_id for order in page.items if order.owner_id}
    owners = {
        staff.id: staff.username
        for staff in StaffUser.select().where(StaffUser.id.in_(list(owner_ids)))
    }
    return jsonify(_page_json(page, [_order_item(order, owners) for order in page.items]))


@bp.get("/orders/<project_no>/files")
def order_files(project_no: str):
    """The order's files with state, SHA-256 and preflight result (``?lang=`` de, en or fr)."""
    language = request.args.get("lang", "de")
    if language not in LANGUAGES:
        raise Invalid("lang", "one of " + ", ".join(LANGUAGES))
    return jsonify(order_files_record(get_order(project_no), language))


@bp.get("/orders/<project_no>/approval")
def approval(project_no: str):
    """The order's newest proof and the customer's decision (JSON, or the approval XML)."""
    record = approval_record(get_order(project_no))
    if record is None:
        raise NotFound(f"order {project_no!r} has no proof")
    if request.args.get("format") == "xml":
        if record["proof"]["decision"] is None:
            raise Conflict(f"proof version {record['proof']['version']} is not decided yet")
        return Response(approval_document(record), mimetype="application/xml")
    return jsonify(record)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    from portal.openapi import document

    return jsonify(document())
