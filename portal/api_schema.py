"""Request bodies of the workflow API, declared once for validation and for OpenAPI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.errors import Invalid

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "string", "boolean", "integer", "date"
    required: bool = False
    description: str = ""
    max_length: int = 1000
    minimum: int = 0
    maximum: int = 100_000

    def parse(self, value: Any) -> Any:
        if self.kind == "string":
            if not isinstance(value, str):
                raise Invalid(self.name, "must be a string")
            if len(value) > self.max_length:
                raise Invalid(self.name, f"must be at most {self.max_length} characters")
            return value.strip()
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
        kind = "string" if self.kind == "date" else self.kind
        # parse_body treats null in an optional field as "not given".
        schema: dict[str, Any] = {"type": kind if self.required else [kind, "null"]}
        if self.kind == "date":
            schema["format"] = "date"
        if self.kind == "string":
            schema["maxLength"] = self.max_length
        if self.kind == "integer":
            schema.update(minimum=self.minimum, maximum=self.maximum)
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
    Field("project_no", "string", True, f"Order number ({NUMBER})", 64),
    Field("customer_no", "string", True, "Existing customer number", 64),
    Field("job_description", "string", False, "Job description", 2000),
    Field("due_date", "date", False, "Due date (YYYY-MM-DD)"),
    Field("contact_email", "string", False, "Explicitly chosen contact", 254),
    *PRINT_SPEC,
)
TICKET = (
    Field("ticket_no", "string", True, "Ticket number, unique within the order", 64),
    Field("title", "string", False, "Ticket title", 200),
)
