"""The OpenAPI document for /api/v1, built from the same field lists that validate requests."""

from __future__ import annotations

from portal import api_schema as schema

_ERROR = {
    "description": "What is wrong, as JSON",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
            }
        }
    },
}
_JSON = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}


def _body(fields: tuple[schema.Field, ...]) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema.schema_of(fields)}}}


_LIST = {
    "description": "One page of items",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["items", "page", "per_page", "total", "pages"],
                "properties": {
                    "items": {"type": "array", "items": {"type": "object"}},
                    "page": {"type": "integer"},
                    "per_page": {"type": "integer"},
                    "total": {"type": "integer"},
                    "pages": {"type": "integer"},
                },
            }
        }
    },
}


def _operation(
    summary: str,
    responses: dict,
    fields=None,
    parameter: str | None = None,
    query: tuple[schema.Query, ...] = (),
) -> dict:
    operation = {
        "summary": summary,
        "responses": responses | {"400": _ERROR, "401": _ERROR},
    }
    if fields:
        operation["requestBody"] = _body(fields)
    parameters = []
    if parameter:
        parameters.append(
            {"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    parameters += [item.openapi() for item in query]
    if parameters:
        operation["parameters"] = parameters
    return operation


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ptportal workflow API",
            "version": "1",
            "description": "Push customers, contacts, orders and tickets into the upload portal; "
            "read and change them.",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/customers": {
                "get": _operation(
                    "List customers (paged, searchable)",
                    {"200": _LIST},
                    query=schema.CUSTOMER_LIST,
                ),
                "post": _operation(
                    "Create or update a customer",
                    {"200": _JSON, "201": _JSON},
                    schema.CUSTOMER,
                ),
            },
            "/customers/{customer_no}": {
                "get": _operation(
                    "Read a customer with its contacts and portal logins",
                    {"200": _JSON, "404": _ERROR},
                    None,
                    "customer_no",
                )
            },
            "/customers/{customer_no}/contacts": {
                "post": _operation(
                    "Add or update a contact",
                    {"201": _JSON, "404": _ERROR},
                    schema.CONTACT,
                    "customer_no",
                )
            },
            "/orders": {
                "get": _operation(
                    "List orders (paged; filter by text, customer, state, owner, due date)",
                    {"200": _LIST},
                    query=schema.ORDER_LIST,
                ),
                "post": _operation(
                    "Create an order (portal login, activation mail, folders follow)",
                    {"201": _JSON, "409": _ERROR, "422": _ERROR},
                    schema.ORDER,
                ),
            },
            "/orders/{project_no}/tickets": {
                "post": _operation(
                    "Add a ticket to an order",
                    {"201": _JSON, "404": _ERROR, "409": _ERROR},
                    schema.TICKET,
                    "project_no",
                )
            },
            "/orders/{project_no}": {
                "get": _operation(
                    "Read an order's state", {"200": _JSON, "404": _ERROR}, None, "project_no"
                ),
                "patch": _operation(
                    "Change an order (fields given; null clears): job description, due date, "
                    "contact, owner, trim size, page count; close, cancel or reopen it. A changed "
                    "trim size or page count preflights its checked files again",
                    {"200": _JSON, "404": _ERROR},
                    schema.ORDER_UPDATE,
                    "project_no",
                ),
            },
            "/orders/{project_no}/files": {
                "get": _operation(
                    "The order's files with state, SHA-256 and preflight result",
                    {"200": _JSON, "404": _ERROR},
                    None,
                    "project_no",
                )
            },
            "/orders/{project_no}/approval": {
                "get": _operation(
                    "The newest proof and the customer's decision (time, login, address, "
                    "SHA-256); ?format=xml gives the approval file once decided",
                    {"200": _JSON, "404": _ERROR, "409": _ERROR},
                    None,
                    "project_no",
                )
            },
        },
    }
