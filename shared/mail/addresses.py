"""Email addresses: which text counts as one, and the one spelling addresses are compared in."""

from __future__ import annotations

import re
from email.utils import parseaddr

from shared.errors import Invalid

# Deliberately loose (one @, a dot in the domain, no separators); the mail server has the
# last word. Control characters and lone surrogates never reach a mail header.
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
MAX_LENGTH = 254


def check_email(field: str, value: str, required: bool = False) -> str:
    """``value`` stripped, if it looks like an address; raise Invalid naming ``field`` if not."""
    value = value.strip()
    if not value and not required:
        return ""
    if len(value) > MAX_LENGTH or not value.isprintable() or not _EMAIL.fullmatch(value):
        raise Invalid(field, f"{value!r} is not an email address")
    return value


def normalise(address: str) -> str:
    """The bare address in lower case (``"Anna <A@X.de>"`` → ``a@x.de``)."""
    return (parseaddr(address)[1] or address).strip().lower()
