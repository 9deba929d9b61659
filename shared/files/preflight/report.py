"""The preflight report: status, page count, page sizes grouped, findings; JSON both ways.

The status follows from the findings alone: "failed" when the check itself did not finish
(crash, timeout, a limit), else "errors" / "warnings" by the worst severity, else "ok".
Notes (severity info: spot colours, a PDF/X output intent) leave a file "ok".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.files.findings import ERROR, WARNING, Finding

STATUSES = ("ok", "warnings", "errors", "failed")
FAILED_CODE = "preflight_failed"
FORMAT_VERSION = 1
# Longest page list kept in a finding or a size group: "1–3, 5, 7, …" stays one line.
MAX_RANGES = 20


@dataclass(frozen=True)
class PageGroup:
    """Pages that share every box: sizes in mm (width, height) as the page is viewed.

    ``boxes_mm`` names each box the file sets (MediaBox always); ``trim_mm`` is the
    TrimBox, else the CropBox, else the MediaBox; ``bleed_mm`` is left, bottom, right,
    top around the trim, zero where there is none.
    """

    pages: str
    count: int
    trim_mm: tuple[float, float]
    bleed_mm: tuple[float, float, float, float]
    boxes_mm: dict[str, tuple[float, float]] = field(default_factory=dict, hash=False)
    rotate: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "count": self.count,
            "trim_mm": list(self.trim_mm),
            "bleed_mm": list(self.bleed_mm),
            "boxes_mm": {name: list(size) for name, size in self.boxes_mm.items()},
            "rotate": self.rotate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageGroup:
        return cls(
            data["pages"],
            data["count"],
            tuple(data["trim_mm"]),
            tuple(data["bleed_mm"]),
            {name: tuple(size) for name, size in data.get("boxes_mm", {}).items()},
            data.get("rotate", 0),
        )


@dataclass(frozen=True)
class PreflightReport:
    """What the preflight found in one file; build it with ``PreflightReport.of``."""

    status: str
    file_type: str
    page_count: int | None
    page_sizes: tuple[PageGroup, ...]
    findings: tuple[Finding, ...]
    thumbnail: str | None = None  # file name inside the preview directory

    @classmethod
    def of(
        cls,
        file_type: str,
        findings: Iterable[Finding],
        page_count: int | None = None,
        page_sizes: Iterable[PageGroup] = (),
        thumbnail: str | None = None,
    ) -> PreflightReport:
        """A report whose status follows from ``findings``."""
        findings = tuple(findings)
        return cls(
            status_of(findings), file_type, page_count, tuple(page_sizes), findings, thumbnail
        )

    @classmethod
    def failed(cls, file_type: str, kind: str, detail: str = "") -> PreflightReport:
        """The report of a preflight that did not finish (``kind``: timeout, crashed, …)."""
        return cls.of(file_type, [failure(kind, detail)])

    def with_findings(self, *extra: Finding, thumbnail: str | None = None) -> PreflightReport:
        """This report with ``extra`` findings (and a thumbnail) added, status recomputed."""
        return PreflightReport.of(
            self.file_type,
            self.findings + extra,
            self.page_count,
            self.page_sizes,
            thumbnail if thumbnail is not None else self.thumbnail,
        )

    def codes(self) -> list[str]:
        """The finding codes in order, for tests and logs."""
        return [finding.code for finding in self.findings]

    def finding(self, code: str) -> Finding | None:
        """The first finding with ``code``."""
        return next((finding for finding in self.findings if finding.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "status": self.status,
            "file_type": self.file_type,
            "page_count": self.page_count,
            "page_sizes": [group.to_dict() for group in self.page_sizes],
            "findings": [finding.to_dict() for finding in self.findings],
            "thumbnail": self.thumbnail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreflightReport:
        return cls(
            data["status"],
            data["file_type"],
            data.get("page_count"),
            tuple(PageGroup.from_dict(group) for group in data.get("page_sizes", [])),
            tuple(Finding.from_dict(finding) for finding in data.get("findings", [])),
            data.get("thumbnail"),
        )

    def to_json(self) -> str:
        """One line of JSON, for the database and the agent."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PreflightReport:
        return cls.from_dict(json.loads(text))


def failure(kind: str, detail: str = "", **params: Any) -> Finding:
    """The finding that makes a report "failed"; ``detail`` is for staff and logs."""
    params = {"kind": kind, **params}
    if detail:
        params["detail"] = detail[:500]
    return Finding(FAILED_CODE, ERROR, params)


def status_of(findings: Iterable[Finding]) -> str:
    """ok / warnings / errors / failed for ``findings``."""
    findings = list(findings)
    if any(finding.code == FAILED_CODE for finding in findings):
        return "failed"
    if any(finding.severity == ERROR for finding in findings):
        return "errors"
    if any(finding.severity == WARNING for finding in findings):
        return "warnings"
    return "ok"


def page_ranges(pages: Iterable[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` → ``"1–3, 5, 7–8"``, cut with "…" after ``MAX_RANGES`` runs."""
    runs: list[list[int]] = []
    for page in sorted(set(pages)):
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    parts = [str(first) if first == last else f"{first}–{last}" for first, last in runs]
    if len(parts) > MAX_RANGES:
        parts = [*parts[:MAX_RANGES], "…"]
    return ", ".join(parts)
