"""Request bodies of the workflow API, declared once for validation and for OpenAPI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from shared.errors import Invalid

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


def parse_body(data: Any, fields: tuple[Field, ...]) -> dict:
    """Check a JSON body against ``fields``; unknown and missing fields are errors."""
    if not isinstance(data, dict):
        raise Invalid("body", "must be a JSON object")
    known = {field.name: field for field in fields}
    for name in data:
        if name not in known:
            raise Invalid(name, "unknown field; allowed: " + ", ".join(known))
    values = {}
    for field in fields:
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

CUSTOMER = (
    Field("customer_no", "string", True, f"Customer number ({NUMBER})", 64),
    Field("name", "string", False, "Required when the customer is new", 200),
    Field("email", "string", False, "Customer email, used when no contact is chosen", 254),
    Field("portal_enabled", "boolean", False, "May use the upload portal"),
    Field("create_hotfolder", "boolean", False, "Create a hotfolder for uploads"),
    Field(
        "hotfolder_delete_after_days", "integer", False, "Delete uploads after N days", 0, 0, 3650
    ),
    Field("language", "string", False, "de, en or fr", 2),
)
CONTACT = (
    Field("email", "string", True, "Contact's email", 254),
    Field("name", "string", False, "Contact's name", 200),
    Field("favorite", "boolean", False, "Becomes the customer's favorite contact"),
)
ORDER = (
    Field("project_no", "string", True, f"Order number ({NUMBER})", 64),
    Field("customer_no", "string", True, "Existing customer number", 64),
    Field("job_description", "string", False, "Job description", 2000),
    Field("due_date", "date", False, "Due date (YYYY-MM-DD)"),
    Field("contact_email", "string", False, "Explicitly chosen contact", 254),
)
TICKET = (
    Field("ticket_no", "string", True, "Ticket number, unique within the order", 64),
    Field("title", "string", False, "Ticket title", 200),
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
NOTIFICATIONS = (
    AGENT_ID,
    Field("notifications", "objects", True, "XML job notifications written", 1000, items=WRITTEN),
)
