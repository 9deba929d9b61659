"""A file as the portal announces it to the agent, checked before the agent acts on it.

The answer is data from another host: every field is checked for type and shape here
(a SHA-256 of 64 hex digits, a size that is a whole number …) and the names once more
where they become paths (``layout``). What does not pass is an ``UnsafeAnswer``: the
file is not delivered, the problem reported. The agent builds the URLs it calls itself
and follows none the portal names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hotfolder_agent.layout import UnsafeAnswer
from shared.orders.workflow_xml import checked_preflight

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _text(data: dict, key: str, *, optional: bool = False) -> str:
    value = data.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise UnsafeAnswer(f"{key} is not a text")
    return value


@dataclass(frozen=True)
class RemoteFile:
    """A clean upload the portal leased to this agent (``data`` is the answer as sent)."""

    id: int
    name: str
    stored_name: str
    size: int
    sha256: str
    customer_no: str
    project_no: str
    data: dict

    @property
    def content_path(self) -> str:
        return f"/api/v1/agent/files/{self.id}/content"

    @classmethod
    def from_json(cls, data: object) -> RemoteFile:
        """Check an entry of a lease answer; UnsafeAnswer says what is wrong with it."""
        if not isinstance(data, dict):
            raise UnsafeAnswer("a file entry is not an object")
        file_id = data.get("id")
        size = data.get("size")
        if isinstance(file_id, bool) or not isinstance(file_id, int) or file_id < 1:
            raise UnsafeAnswer("the file id is not a positive whole number")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise UnsafeAnswer(f"file {file_id}: the size is not a whole number")
        sha256 = _text(data, "sha256")
        if not _SHA256.fullmatch(sha256):
            raise UnsafeAnswer(f"file {file_id}: the SHA-256 is not 64 hex digits")
        order = data.get("order")
        customer = order.get("customer") if isinstance(order, dict) else None
        if not isinstance(order, dict) or not isinstance(customer, dict):
            raise UnsafeAnswer(f"file {file_id}: no order and customer")
        _text(order, "job_description", optional=True)
        due_date = _text(order, "due_date", optional=True)
        if due_date and not _DATE.fullmatch(due_date):
            raise UnsafeAnswer(f"file {file_id}: the due date is not a date")
        if not _TIME.fullmatch(_text(data, "uploaded_at")):
            raise UnsafeAnswer(f"file {file_id}: the upload time is not a UTC time")
        if not _text(data, "name"):
            raise UnsafeAnswer(f"file {file_id}: the file has no name")
        _text(customer, "name", optional=True)
        contact = order.get("contact")
        if contact is not None and not (
            isinstance(contact, dict)
            and isinstance(contact.get("name", ""), str)
            and isinstance(contact.get("email", ""), str)
        ):
            raise UnsafeAnswer(f"file {file_id}: the contact is not a name and an address")
        if data.get("preflight") is not None:
            try:
                checked_preflight(data["preflight"])
            except ValueError as exc:
                raise UnsafeAnswer(f"file {file_id}: {exc}") from None
        return cls(
            id=file_id,
            name=_text(data, "name"),
            stored_name=_text(data, "stored_name"),
            size=size,
            sha256=sha256,
            customer_no=_text(customer, "customer_no"),
            project_no=_text(order, "project_no"),
            data=data,
        )
