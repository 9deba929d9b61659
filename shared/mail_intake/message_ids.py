"""Message-IDs as headers carry them: ``<local@domain>``, compared exactly as written."""

from __future__ import annotations

import re

_BRACKETED = re.compile(r"<([^<>\s]+)>")


def message_ids(header_value: str) -> tuple[str, ...]:
    """Every ``<id>`` in a Message-ID, In-Reply-To or References value, in order, no repeats.

    A value without angle brackets (some mailers omit them) counts as one id when it has no
    spaces; comments and other text around the ids are ignored.
    """
    found = [f"<{match}>" for match in _BRACKETED.findall(header_value or "")]
    if not found:
        bare = (header_value or "").strip().strip("<>")
        if bare and not re.search(r"[\s<>]", bare):
            found = [f"<{bare}>"]
    return tuple(dict.fromkeys(found))


def first_message_id(header_value: str) -> str:
    """The first id of ``header_value`` or ""."""
    ids = message_ids(header_value)
    return ids[0] if ids else ""
