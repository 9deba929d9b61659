"""What a preflight is asked to check (settings, an order's expectations) and its limits.

All three are frozen and travel to the sandboxed process as JSON (``to_dict``/``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MiB = 1024 * 1024
COLOUR_MODES = ("cmyk", "any")


@dataclass(frozen=True)
class PreflightSettings:
    """The shop's rules.

    ``min_image_ppi``: images placed below it are a warning; 250 leaves room under the
    300 ppi every shop asks for, so that an image scaled up a little is not flagged.
    ``colour_mode``: "cmyk" (print in process colours: RGB is a warning) or "any".
    ``require_pdfx``: a missing PDF/X output intent is a warning instead of a note.
    """

    min_bleed_mm: float = 3.0
    min_image_ppi: int = 250
    colour_mode: str = "cmyk"
    require_pdfx: bool = False
    thumbnail_px: int = 300
    preview_px: int = 1200

    def __post_init__(self) -> None:
        if self.colour_mode not in COLOUR_MODES:
            raise ValueError(f"colour_mode must be one of {', '.join(COLOUR_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreflightSettings:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Expectations:
    """What an order says about its print data; None where it says nothing.

    The trim size is compared in either orientation: an order names a size, not which
    way up the designer laid the page out.
    """

    trim_width_mm: float | None = None
    trim_height_mm: float | None = None
    trim_tolerance_mm: float = 1.0
    page_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Expectations:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class PreflightLimits:
    """What the sandboxed process may use before its preflight counts as failed.

    ``memory_bytes`` is the address space (RLIMIT_AS), which is larger than the resident
    memory: it counts the mapped libraries too. ``max_image_pixels``: a larger image is an
    error (no RIP handles it sensibly). ``max_preview_pixels``: a raster file is only
    decoded for a preview below it (after JPEG's draft scaling), so that decoding fits in
    ``memory_bytes``. ``max_output_bytes`` caps every file the process writes (RLIMIT_FSIZE).
    """

    cpu_seconds: int = 60
    wall_seconds: float = 90.0
    memory_bytes: int = 1024 * MiB
    max_output_bytes: int = 64 * MiB
    max_pages: int = 20_000
    max_image_pixels: int = 300_000_000
    max_preview_pixels: int = 120_000_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreflightLimits:
        return cls(**_known(cls, data))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` has, so that an older reader ignores newer keys."""
    names = {field.name for field in fields(cls)}
    return {key: value for key, value in data.items() if key in names}
