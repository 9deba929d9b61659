"""Request bodies of the workflow API, declared once for validation and for OpenAPI."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from shared.errors import Invalid
from shared.files.folders import SAFE_NUMBER
from shared.models import LANGUAGES

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Field:
    name: str
    # "string", "boolean", "integer", "number", "date", "datetime" (UTC, returned naive),
    # "ids" (a list of positive whole numbers, at most max_length), "paths" (a list of
    # at most max_length strings of up to 4096 characters), "objects" (a list of objects
    # made of ``items``, at most max_length), "text" (a string kept as sent, not stripped)
    kind: str
    required: bool = False
    description: str = ""
    max_length: int = 1000
    minimum: int = 0
    maximum: int = 100_000
    pattern: str = ""  # documented in OpenAPI; the domain checks the value itself
    choices: tuple[str, ...] = ()
    items: tuple[Field, ...] = ()

    def parse(self, value: Any) -> Any:
        if self.kind in ("string", "text"):
            if not isinstance(value, str):
                raise Invalid(self.name, "must be a string")
            if len(value) > self.max_length:
                raise Invalid(self.name, f"must be at most {self.max_length} characters")
            return value.strip() if self.kind == "string" else value
        if self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Invalid(self.name, "must be a number")
            if not self.minimum <= value <= self.maximum:
                raise Invalid(self.name, f"must be from {self.minimum} to {self.maximum}")
            return float(value)
        if self.kind == "datetime":
            if isinstance(value, str) and _DATETIME.fullmatch(value):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return moment.astimezone(UTC).replace(tzinfo=None)
            raise Invalid(self.name, "must be a time like 2026-12-31T23:59:59Z")
        if self.kind == "ids":
            if not isinstance(value, list) or len(value) > self.max_length:
                raise Invalid(self.name, f"must be a list of at most {self.max_length} ids")
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise Invalid(self.name, "must hold positive whole numbers only")
            return list(dict.fromkeys(value))
        if self.kind == "paths":
            if not isinstance(value, list) or len(value) > self.max_length:
                raise Invalid(self.name, f"must be a list of at most {self.max_length} paths")
            if any(not isinstance(v, str) or not 0 < len(v) <= 4096 for v in value):
                raise Invalid(self.name, "must hold paths of 1 to 4096 characters")
            return list(dict.fromkeys(value))
        if self.kind == "objects":
            if not isinstance(value, list) or len(value) > self.max_length:
                raise Invalid(self.name, f"must be a list of at most {self.max_length} objects")
            return [parse_body(item, self.items) for item in value]
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise Invalid(self.name, "must be true or false")
            return value
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise Invalid(self.name, "must be a whole number")
            if not self.minimum <= value <= self.maximum:
                raise Invalid(self.name, f"must be from {self.minimum} to {self.maximum}")
            return value
        if self.kind == "date":
            # fromisoformat alone also takes 20261231 and 2026-W53-1, which "format: date" does not.
            if isinstance(value, str) and _DATE.fullmatch(value):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    pass
            raise Invalid(self.name, "must be a date like 2026-12-31")
        raise AssertionError(self.kind)

    def openapi(self) -> dict:
        kind = {
            "date": "string",
            "datetime": "string",
            "text": "string",
            "ids": "array",
            "paths": "array",
            "objects": "array",
        }.get(self.kind, self.kind)
        # parse_body treats null in an optional field as "not given".
        schema: dict[str, Any] = {"type": kind if self.required else [kind, "null"]}
        if self.kind == "date":
            schema["format"] = "date"
        if self.kind == "datetime":
            schema["format"] = "date-time"
        if self.kind in ("string", "text"):
            schema["maxLength"] = self.max_length
            if self.pattern:
                schema["pattern"] = self.pattern
            if self.choices:
                schema["enum"] = list(self.choices) if self.required else [*self.choices, None]
        if self.kind in ("integer", "number"):
            schema.update(minimum=self.minimum, maximum=self.maximum)
        if self.kind == "ids":
            schema.update(items={"type": "integer", "minimum": 1}, maxItems=self.max_length)
        if self.kind == "paths":
            schema.update(items={"type": "string", "maxLength": 4096}, maxItems=self.max_length)
        if self.kind == "objects":
            schema.update(items=schema_of(self.items), maxItems=self.max_length)
        if self.description:
            schema["description"] = self.description
        return schema


MAX_DEPTH = 32


def parse_json(raw: bytes) -> Any:
    """The JSON document in ``raw``, refusing (Invalid) what no field can hold: nesting deeper
    than ``MAX_DEPTH``, and strings with a lone surrogate (JSON may escape one, ``"\\ud800"``;
    no database stores it) or a NUL character (PostgreSQL refuses it) — keys included."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise Invalid("body", f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # includes bytes that are not UTF-8
        raise Invalid("body", "must be valid JSON sent as application/json") from None
    # Depth-first without recursion; each item remembers the top-level field it sits in.
    stack: list[tuple[Any, int, str]] = [(data, 0, "body")]
    while stack:
        value, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            raise Invalid("body", f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(field, value)
        elif isinstance(value, list):
            stack.extend((item, depth + 1, field) for item in value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(field, key)
                stack.append((item, depth + 1, key if depth == 0 else field))
    return data


def _check_text(field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            field, "contains a lone surrogate (\\ud800–\\udfff): not valid text"
        ) from None
    if "\x00" in text:
        raise Invalid(field, "must not contain NUL characters")


def parse_body(data: Any, fields: tuple[Field, ...], *, null_clears: bool = False) -> dict:
    """Check a JSON body against ``fields``; unknown and missing fields are errors.

    An optional field sent as null counts as not given, except with ``null_clears``
    (PATCH), where it is kept as None: "clear this value".
    """
    if not isinstance(data, dict):
        raise Invalid("body", "must be a JSON object")
    known = {field.name: field for field in fields}
    for name in data:
        if name not in known:
            raise Invalid(name, "unknown field; allowed: " + ", ".join(known))
    values = {}
    for field in fields:
        if null_clears and field.name in data and data[field.name] is None:
            values[field.name] = None
            continue
        if field.name not in data or data[field.name] is None:
            if field.required:
                raise Invalid(field.name, "is required")
            continue
        values[field.name] = field.parse(data[field.name])
        if field.required and values[field.name] == "":
            raise Invalid(field.name, "must not be empty")
    return values


def schema_of(fields: tuple[Field, ...]) -> dict:
    """The OpenAPI object schema for a body made of ``fields``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [field.name for field in fields if field.required],
        "properties": {field.name: field.openapi() for field in fields},
    }


NUMBER = "1–64 letters, digits, '.', '_' or '-'"
NUMBER_PATTERN = f"^{SAFE_NUMBER.pattern}$"

CUSTOMER = (
    Field("customer_no", "string", True, f"Customer number ({NUMBER})", 64, pattern=NUMBER_PATTERN),
    Field("name", "string", False, "Required when the customer is new", 200),
    Field("email", "string", False, "Customer email, used when no contact is chosen", 254),
    Field("portal_enabled", "boolean", False, "May use the upload portal"),
    Field("create_hotfolder", "boolean", False, "Create a hotfolder for uploads"),
    Field(
        "hotfolder_delete_after_days", "integer", False, "Delete uploads after N days", 0, 0, 3650
    ),
    Field("language", "string", False, "de, en or fr", 2, choices=LANGUAGES),
)
CONTACT = (
    Field("email", "string", True, "Contact's email", 254),
    Field("name", "string", False, "Contact's name", 200),
    Field("favorite", "boolean", False, "Becomes the customer's favorite contact"),
)
# What an order says about its print data; the preflight warns about files that differ.
PRINT_SPEC = (
    Field(
        "trim_size",
        "string",
        False,
        "Trim size in mm, width x height like 210 x 297, or A0–A7; empty: none",
        40,
    ),
    Field("page_count", "integer", False, "Pages the print data should have; 0: none", 0, 0),
)
ORDER = (
    Field("project_no", "string", True, f"Order number ({NUMBER})", 64, pattern=NUMBER_PATTERN),
    Field("customer_no", "string", True, "Existing customer number", 64, pattern=NUMBER_PATTERN),
    Field("job_description", "string", False, "Job description", 2000),
    Field("due_date", "date", False, "Due date (YYYY-MM-DD)"),
    Field("contact_email", "string", False, "Explicitly chosen contact", 254),
    Field("owner", "string", False, "Username of the staff user who owns the order", 100),
    *PRINT_SPEC,
)
ORDER_UPDATE = (
    Field("job_description", "string", False, "Job description", 2000),
    Field("due_date", "date", False, "Due date (YYYY-MM-DD); null clears it"),
    Field(
        "contact_email",
        "string",
        False,
        "Explicitly chosen contact; null goes back to the favorite contact or the customer",
        254,
    ),
    Field("owner", "string", False, "Username of the owning staff user; null: no owner", 100),
    Field(
        "state",
        "string",
        False,
        "open, closed or cancelled; closed and cancelled orders take no more uploads "
        "from the customer and get no reminders",
        20,
    ),
    *PRINT_SPEC,
)
TICKET = (
    Field("ticket_no", "string", True, "Ticket number, unique within the order", 64),
    Field("title", "string", False, "Ticket title", 200),
)


@dataclass(frozen=True)
class Query:
    """A query parameter of a list endpoint."""

    name: str
    kind: str  # "string", "integer", "date"
    description: str
    minimum: int = 1
    maximum: int = 100_000

    def parse(self, raw: str) -> Any:
        if self.kind == "integer":
            if (
                not raw.isascii()
                or not raw.isdigit()
                or not self.minimum <= int(raw) <= self.maximum
            ):
                raise Invalid(
                    self.name, f"must be a whole number from {self.minimum} to {self.maximum}"
                )
            return int(raw)
        if self.kind == "date":
            return Field(self.name, "date").parse(raw)
        if len(raw) > 100:
            raise Invalid(self.name, "must be at most 100 characters")
        return raw.strip()

    def openapi(self) -> dict:
        schema: dict[str, Any] = {"type": "string" if self.kind == "date" else self.kind}
        if self.kind == "date":
            schema["format"] = "date"
        if self.kind == "integer":
            schema.update(minimum=self.minimum, maximum=self.maximum)
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": self.description,
        }


def parse_query(args, parameters: tuple[Query, ...]) -> dict:
    """Check the query string against ``parameters``; unknown ones are errors."""
    known = {parameter.name: parameter for parameter in parameters}
    for name in args:
        if name not in known:
            raise Invalid(name, "unknown query parameter; allowed: " + ", ".join(known))
    return {name: known[name].parse(args[name]) for name in args if args[name] != ""}


PAGING = (
    Query("page", "integer", "Page number, from 1", 1, 1_000_000),
    Query("per_page", "integer", "Items per page (default 25)", 1, 200),
)
ORDER_LIST = (
    *PAGING,
    Query("q", "string", "Text in the order number, job description, customer number or name"),
    Query("customer_no", "string", "Only this customer's orders"),
    Query("state", "string", "open, closed or cancelled"),
    Query("owner", "string", "Only orders of this staff user (username); - for none"),
    Query("due_from", "date", "Due on or after (YYYY-MM-DD)"),
    Query("due_until", "date", "Due on or before (YYYY-MM-DD)"),
)
CUSTOMER_LIST = (
    *PAGING,
    Query("q", "string", "Text in the customer number, name or email"),
)

# --- the hotfolder agents (/api/v1/agent) -------------------------------------------------

AGENT_ID = Field(
    "agent_id", "string", True, "The agent's own id, kept in its state folder across restarts", 100
)
PATH = 4096

LEASE = (
    AGENT_ID,
    Field("max_files", "integer", False, "How many files to lease at most (default 1)", 0, 1, 64),
    Field(
        "wait",
        "number",
        False,
        "Seconds to wait for a file when there is none (long poll; default 0, at most 30)",
        0,
        0,
        30,
    ),
    Field("holding", "ids", False, "Files the agent has in hand (not to hand out again)", 10_000),
    Field("file_ids", "ids", False, "Files the agent asks for by id (after a restart)", 1000),
    Field(
        "heartbeat_seconds",
        "number",
        False,
        "How often the agent beats: the lease lasts three beats (at least 10 s)",
        0,
        1,
        3600,
    ),
)
RELEASE = (AGENT_ID, Field("file_ids", "ids", True, "Files the agent gives back", 10_000))
CONTENTS = (
    Field("agent_id", "string", False, "The agent's own id (for the portal's log)", 100),
    Field("file_ids", "ids", True, "The files to send, in this order", 64),
)
PLACED = (
    Field("file_id", "integer", True, "The file", 0, 1, 2**62),
    Field("path", "string", True, "Where the agent placed the file in the hotfolder", PATH),
    Field("placed_at", "datetime", True, "When it was placed (UTC)"),
    Field("sha256", "string", True, "The SHA-256 of the placed file (lower-case hex)", 64),
)
CONFIRM = (
    AGENT_ID,
    Field("deliveries", "objects", True, "The files placed", 1000, items=PLACED),
)
HEARTBEAT = (
    AGENT_ID,
    Field("host", "string", True, "The agent's host name", 255),
    Field("pid", "integer", False, "The agent's process id", 0, 0, 2**31),
    Field("version", "string", False, "The agent's version", 100),
    Field("watch_mode", "string", False, "native or polling (the drop folders)", 20),
    Field("queue_length", "integer", False, "Files in hand or waiting", 0, 0, 10**9),
    Field("heartbeat_seconds", "number", True, "Seconds to the next beat", 0, 1, 3600),
    Field("stopped", "boolean", False, "The agent stops (its last beat)"),
    Field("release", "ids", False, "Files the agent gives back", 10_000),
)
ERROR = (
    AGENT_ID,
    Field("action", "string", True, "What the agent tried: deliver, notify, send, prepare", 20),
    Field("path", "string", True, "The file or folder it concerns (on the agent's host)", PATH),
    Field("reason", "string", True, "What went wrong", 2000),
    Field("file_id", "integer", False, "The portal file it concerns", 0, 1, 2**62),
    Field("project_no", "string", False, "The order it concerns", 64),
)
RESOLVED = (
    AGENT_ID,
    Field("paths", "paths", True, "Files and folders the agent handled after all", 10_000),
    Field("file_ids", "ids", False, "Portal files among them", 10_000),
)
WRITTEN = (
    Field("file_name", "string", True, "The XML's file name", 255),
    Field("file_ids", "ids", True, "The files it lists", 10_000),
    Field("xml", "text", True, "The XML as written", 8 * 1024 * 1024),
)
APPROVALS_PLACED = (
    AGENT_ID,
    Field("proof_ids", "ids", True, "The proofs whose approval files the agent placed", 100),
)
NOTIFICATIONS = (
    AGENT_ID,
    Field("notifications", "objects", True, "XML job notifications written", 1000, items=WRITTEN),
)
