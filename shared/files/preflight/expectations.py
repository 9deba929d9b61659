"""An order's expectations (trim size, page count) against what the file has: warnings."""

from __future__ import annotations

from shared.files.findings import WARNING, Finding
from shared.files.preflight.options import Expectations
from shared.files.preflight.report import page_ranges


def expectation_findings(
    trim_sizes: dict[int, tuple[float, float]], expectations: Expectations, page_count: int
) -> list[Finding]:
    """``page_count_mismatch`` and ``trim_size_mismatch``; ``trim_sizes`` maps page → mm."""
    findings = []
    if expectations.page_count is not None and expectations.page_count != page_count:
        params = {"expected": expectations.page_count, "found": page_count}
        findings.append(Finding("page_count_mismatch", WARNING, params))
    width, height = expectations.trim_width_mm, expectations.trim_height_mm
    if width is None or height is None:
        return findings
    tolerance = expectations.trim_tolerance_mm

    def fits(size: tuple[float, float]) -> bool:
        return any(
            abs(size[0] - w) <= tolerance and abs(size[1] - h) <= tolerance
            for w, h in ((width, height), (height, width))
        )

    wrong = [number for number, size in trim_sizes.items() if not fits(size)]
    if wrong:
        params = {
            "pages": page_ranges(wrong),
            "expected_mm": [width, height],
            "found_mm": list(trim_sizes[wrong[0]]),
        }
        findings.append(Finding("trim_size_mismatch", WARNING, params))
    return findings
