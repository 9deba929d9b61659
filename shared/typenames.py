"""The file types a shop may accept, by name: the one list and the parser of the ini value.

A core module (no imports from shared/) so that ``shared.config`` parses ``[files]
accepted_types`` with the same rule ``shared.files.filetypes`` applies to uploads; the
engine re-exports both names from there.
"""

from __future__ import annotations

# The types a shop may accept, in the order the default names them.
ACCEPTABLE_TYPES = ("pdf", "tiff", "jpeg", "png", "eps", "ai", "zip")
DEFAULT_ACCEPTED_TYPES = ACCEPTABLE_TYPES
SYNONYMS = {"tif": "tiff", "jpg": "jpeg", "postscript": "ps"}


def parse_accepted_types(value: str) -> tuple[str, ...]:
    """``pdf, tiff, jpg`` → ``("pdf", "tiff", "jpeg")``; ValueError says what is allowed."""
    allowed = "a comma-separated list of " + ", ".join(ACCEPTABLE_TYPES)
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    if not names:
        raise ValueError(allowed)
    accepted: list[str] = []
    for name in names:
        file_type = SYNONYMS.get(name, name)
        if file_type not in ACCEPTABLE_TYPES:
            raise ValueError(f"{allowed} (not {name!r})")
        if file_type not in accepted:
            accepted.append(file_type)
    return tuple(accepted)
