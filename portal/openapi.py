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


def _operation(summary: str, responses: dict, fields=None, parameter: str | None = None) -> dict:
    operation = {
        "summary": summary,
        "responses": responses | {"400": _ERROR, "401": _ERROR},
    }
    if fields:
        operation["requestBody"] = _body(fields)
    if parameter:
        operation["parameters"] = [
            {"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return operation


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ptportal workflow API",
            "version": "1",
            "description": "Push customers, contacts, orders and tickets into the upload portal.",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/customers": {
                "post": _operation(
                    "Create or update a customer",
                    {"200": _JSON, "201": _JSON},
                    schema.CUSTOMER,
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
                "post": _operation(
                    "Create an order (portal login, activation mail, folders follow)",
                    {"201": _JSON, "409": _ERROR, "422": _ERROR},
                    schema.ORDER,
                )
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
                    "Change what an order says about its print data (trim size, page count); "
                    "its checked files are preflighted again",
                    {"200": _JSON, "404": _ERROR},
                    schema.PRINT_SPEC,
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
