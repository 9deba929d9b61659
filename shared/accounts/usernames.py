"""How usernames compare: one rule for customers' portal logins and for staff users.

A username is stored in its canonical form and looked up by equality with the
canonical form of what was typed:

1. Surrounding spaces go.
2. Text that NFKC normalisation would change is refused, never folded: compatibility
   characters look like other letters (the Kelvin sign U+212A like ``K``, full-width
   ``ｋ１`` like ``k1``, ligatures, superscripts), so ``K10001`` typed with a Kelvin sign
   is not ``k10001``. Control characters, lone surrogates and more than
   ``MAX_LENGTH`` characters are refused too.
3. Case is folded with ``str.casefold`` (full Unicode case folding, the same in every
   process and on every database; SQL ``LOWER`` folds only ASCII on SQLite).

A name refused by 2 cannot be created, and typing one never signs anybody in.
Migration step 4 (``shared.migrations``) brought usernames stored before this rule into
their canonical form.
"""

from __future__ import annotations

import unicodedata

from shared.errors import Invalid

MAX_LENGTH = 200


def username_key(text: str) -> str | None:
    """The canonical form of ``text`` as a username, or None if it can be no username."""
    text = text.strip()
    if not text or len(text) > MAX_LENGTH or not text.isprintable():
        return None
    if unicodedata.normalize("NFKC", text) != text:
        return None
    return unicodedata.normalize("NFKC", text.casefold())


def check_username(text: str, field: str = "username") -> str:
    """The canonical form of a new username; Invalid naming ``field`` if it cannot be one.

    New names also have no spaces inside: people type them, and a space is easily lost.
    """
    key = username_key(text)
    if key is None or any(character.isspace() for character in key):
        raise Invalid(
            field,
            f"{text.strip()!r} cannot be a username: use at most {MAX_LENGTH} printable "
            "characters without spaces and without look-alikes of other letters (such as "
            "the Kelvin sign or full-width forms)",
        )
    return key
