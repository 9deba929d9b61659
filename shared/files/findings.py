"""A finding: one thing a check says about a file, as a stable code with JSON-able params.

File-type refusals, ZIP refusals and preflight results are all findings, so one catalogue
(``shared.files.messages``) words them for customers and staff, and the database and the
agent store and send the same small JSON object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INFO = "info"
WARNING = "warning"
ERROR = "error"
SEVERITIES = (INFO, WARNING, ERROR)


@dataclass(frozen=True)
class Finding:
    """``code`` names the rule (``bleed_missing``); ``params`` hold JSON values only."""

    code: str
    severity: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}: {self.severity}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON object."""
        return {"code": self.code, "severity": self.severity, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The finding ``to_dict`` wrote."""
        return cls(data["code"], data["severity"], dict(data.get("params") or {}))
