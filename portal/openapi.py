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


_BYTES = {
    "description": "The file's bytes (206 with Content-Range for a Range request)",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
_NO_CONTENT = {"description": "Done"}
_AGENT = [{"agentToken": []}]


def _agent(operation: dict, *, tus: bool = False) -> dict:
    """An agent endpoint: agent tokens only (a workflow token gets 403)."""
    operation["security"] = _AGENT
    operation["responses"] = operation["responses"] | {"403": _ERROR}
    operation["tags"] = ["hotfolder agent"]
    if tus:
        operation.setdefault("parameters", []).append(
            {
                "name": "Tus-Resumable",
                "in": "header",
                "required": True,
                "schema": {"const": "1.0.0"},
            }
        )
    return operation


def _header(name: str, description: str, required: bool = True) -> dict:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def agent_paths() -> dict:
    """The hotfolder agents' endpoints (under /api/v1/agent; portal.agent_api)."""
    content = _agent(
        _operation(
            "Download a file; Range continues an interrupted download",
            {"200": _BYTES, "206": _BYTES, "404": _ERROR, "416": _ERROR},
            None,
            "file_id",
        )
    )
    content["parameters"].append(_header("Range", "bytes=FROM- to continue", required=False))
    create = _agent(
        _operation(
            "tus creation: upload a file staff dropped for the customer",
            {"201": {"description": "Created; Location says where to send the bytes"}},
            None,
            "project_no",
        ),
        tus=True,
    )
    create["parameters"] += [
        _header("Upload-Length", "The file's size in bytes"),
        _header(
            "Upload-Metadata",
            "base64 values: filename, folder (In Bearbeitung or Final), customer_no, "
            "source (the dropped file's path), agent_id",
        ),
    ]
    status = _agent(
        _operation("tus: bytes received so far", {"200": _NO_CONTENT, "404": _ERROR}, None, "key"),
        tus=True,
    )
    append = _agent(
        _operation(
            "tus: append bytes at Upload-Offset (the complete file is virus-scanned)",
            {"204": _NO_CONTENT, "404": _ERROR, "409": _ERROR, "413": _ERROR, "415": _ERROR},
            None,
            "key",
        ),
        tus=True,
    )
    append["parameters"].append(_header("Upload-Offset", "Where these bytes start"))
    cancel = _agent(
        _operation(
            "tus termination: cancel an unfinished upload", {"204": _NO_CONTENT}, None, "key"
        ),
        tus=True,
    )
    return {
        "/agent/files": {
            "get": _agent(_operation("Files waiting for a hotfolder (not leased)", {"200": _JSON}))
        },
        "/agent/leases": {
            "post": _agent(
                _operation(
                    "Lease files (long poll: waits up to 'wait' seconds for one)",
                    {"200": _JSON},
                    schema.LEASE,
                )
            )
        },
        "/agent/leases/release": {
            "post": _agent(_operation("Give leased files back", {"200": _JSON}, schema.RELEASE))
        },
        "/agent/files/{file_id}/content": {"get": content},
        "/agent/files/content": {
            "post": _agent(
                _operation(
                    "Several small files in one answer: each after a line '<id> <size>' "
                    "('<id> -' for one not handed out)",
                    {
                        "200": {
                            "description": "The files, one after another",
                            "content": {
                                "application/x-ptportal-files": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        }
                    },
                    schema.CONTENTS,
                )
            )
        },
        "/agent/deliveries": {
            "post": _agent(
                _operation(
                    "Confirm files placed in their hotfolders (path, time, SHA-256)",
                    {"200": _JSON},
                    schema.CONFIRM,
                )
            )
        },
        "/agent/heartbeat": {
            "post": _agent(
                _operation(
                    "The agent is alive: recorded for staff, its leases extended",
                    {"200": _JSON},
                    schema.HEARTBEAT,
                )
            )
        },
        "/agent/errors": {
            "post": _agent(
                _operation(
                    "Report a problem (shown to staff until resolved)",
                    {"200": _JSON, "201": _JSON},
                    schema.ERROR,
                )
            )
        },
        "/agent/errors/resolved": {
            "post": _agent(
                _operation(
                    "Paths handled after all: their problems close", {"200": _JSON}, schema.RESOLVED
                )
            )
        },
        "/agent/notifications": {
            "post": _agent(
                _operation(
                    "XML job notifications the agent wrote (recorded; mailed if configured)",
                    {"201": _JSON},
                    schema.NOTIFICATIONS,
                )
            )
        },
        "/agent/approvals": {
            "get": _agent(
                _operation(
                    "Decided proofs whose approval file no agent placed yet (record, file name)",
                    {"200": _JSON},
                )
            )
        },
        "/agent/approvals/placed": {
            "post": _agent(
                _operation(
                    "Approval files placed: not handed out again",
                    {"200": _JSON},
                    schema.APPROVALS_PLACED,
                )
            )
        },
        "/agent/orders": {
            "get": _agent(
                _operation("Orders of customers with a hotfolder, by id (?after=)", {"200": _JSON})
            )
        },
        "/agent/orders/{project_no}/uploads": {"post": create},
        "/agent/uploads/{key}": {"head": status, "patch": append, "delete": cancel},
    }


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ptportal workflow API",
            "version": "1",
            "description": "Push customers, contacts, orders and tickets into the upload portal "
            "(workflow token); hotfolder agents fetch clean uploads and send staff files back "
            "under /agent (agent token).",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "agentToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An agent token (pta_…)",
                },
            }
        },
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
        }
        | agent_paths(),
    }
