"""Which uploads the shop accepts (``[files]``): the rules, as ``shared.files.filetypes`` and
``shared.files.zips`` state them, applied to a customer's upload.

A customer's upload is refused

1. before it starts, when its name already says a type the shop does not accept
   (``refuse_by_name``, called by ``receiving.start_upload``);
2. while its first chunk streams in, from its first ``HEAD_BYTES`` bytes, before any of
   them is written (``shared.files.upload_checks``);
3. once complete, when it is a ZIP whose directory says it is a bomb.

Content wins over the name: a JPEG called ``flyer.pdf`` is a JPEG. Files the shop places
itself (staff uploads, the agent's outbound folder) are not restricted: the shop decides
what it sends its customers.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from shared.config import Settings
from shared.errors import ServiceError
from shared.files.filetypes import extensions, refusal, type_from_name
from shared.files.findings import Finding
from shared.files.messages import describe
from shared.files.zips import ZipLimits, list_zip


class TypeRefused(ServiceError):
    """The upload is not accepted; ``finding`` says why, in words for every language."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(describe(finding, "en"))
        self.finding = finding


def accepted_types(settings: Settings) -> tuple[str, ...]:
    return settings.files.accepted_types


def zip_limits(settings: Settings) -> ZipLimits:
    """``[files] zip_*`` as the limits ``list_zip`` checks."""
    files = settings.files
    return ZipLimits(
        max_total_size=files.zip_max_total_size,
        max_entries=files.zip_max_entries,
        max_ratio=float(files.zip_max_ratio),
        ratio_floor=files.zip_ratio_floor,
        max_nested_archives=files.zip_max_nested_archives,
    )


def name_refusal(name: str, accepted: Collection[str]) -> Finding | None:
    """The refusal a file name alone earns: only when it names a type that is not accepted.

    A name without a known extension says nothing; its first bytes decide.
    """
    named = type_from_name(name)
    return None if named is None else refusal(named, accepted)


def refuse_by_name(settings: Settings, name: str) -> None:
    """Raise TypeRefused when ``name`` already says an unaccepted type (before the upload)."""
    finding = name_refusal(name, accepted_types(settings))
    if finding is not None:
        raise TypeRefused(finding)


def refused_extensions(settings: Settings, language: str) -> dict[str, str]:
    """Each extension whose type is refused, with the server's own message, for the browser
    to refuse such a file before sending anything (the server stays the authority)."""
    accepted = accepted_types(settings)
    refused = {}
    for extension in extensions():
        finding = name_refusal("file" + extension, accepted)
        if finding is not None:
            refused[extension] = describe(finding, language)
    return refused


def zip_refusal(settings: Settings, path: Path) -> Finding | None:
    """Why the ZIP at ``path`` is refused as a bomb or as damaged, or None."""
    return list_zip(path, zip_limits(settings)).refusal
