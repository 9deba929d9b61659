"""Header values as people should read them: encoded words decoded, odd charsets repaired.

Mail in the wild carries raw 8-bit bytes in headers (UTF-8 or Windows-1252, undeclared)
and encoded words in charsets Python does not know. The ``email`` package turns the first
into surrogate escapes (or "�") and the second into undecodable bytes; here both are
repaired before the value is parsed, so "Müller" stays "Müller". Nothing in this module
raises on a malformed header: the worst case is an empty value.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader
from email.message import Message
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime

# Charsets Outlook and friends declare under names Python does not know.
_CHARSET_ALIASES = {"ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "x-unknown": ""}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_ESCAPED_BYTES = re.compile(r"[\udc80-\udcff]+")


@dataclass(frozen=True)
class MailAddress:
    """One address of a From, To or Cc header; ``address`` is the addr-spec as written."""

    address: str
    display_name: str = ""


def decode_bytes(data: bytes, charset: str = "") -> str:
    """Text from bytes in ``charset``; undeclared or unknown: UTF-8, else Windows-1252.

    ISO-8859-1 is read as Windows-1252 (as browsers do): mail labelled Latin-1 often
    carries €, – and curly quotes from Windows, which Latin-1 has no letters for.
    """
    charset = _CHARSET_ALIASES.get(charset.lower(), charset.lower()).strip()
    if charset in {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}:
        charset = "cp1252"
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = ""
    if charset:
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            if charset != "cp1252":
                return data.decode(charset, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def repair_escaped_bytes(text: str) -> str:
    """Replace the email package's surrogate escapes (raw 8-bit bytes) by the text they were."""
    return _ESCAPED_BYTES.sub(
        lambda run: decode_bytes(run.group().encode("utf-8", "surrogateescape")), text
    )


def _known_charset_words(raw: str) -> str:
    """Encoded words in charsets Python lacks, re-encoded as UTF-8 words it can decode."""

    def reencode(word: re.Match) -> str:
        charset, encoding, payload = word.groups()
        name = _CHARSET_ALIASES.get(charset.lower().split("*")[0], charset.split("*")[0])
        try:
            if name:
                codecs.lookup(name)
                return word.group() if name == charset else f"=?{name}?{encoding}?{payload}?="
        except LookupError:
            pass
        try:
            if encoding in "Bb":
                data = base64.b64decode(payload + "=" * (-len(payload) % 4))
            else:
                data = quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return word.group()
        utf8 = base64.b64encode(decode_bytes(data).encode("utf-8")).decode("ascii")
        return f"=?utf-8?b?{utf8}?="

    return _ENCODED_WORD.sub(reencode, raw)


def _raw_value(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return value if isinstance(value, str) else str(value)
    return None


def header(message: Message, name: str) -> BaseHeader | None:
    """The first ``name`` header as a parsed ``email.headerregistry`` object, or None."""
    raw = _raw_value(message, name)
    if raw is None:
        return None
    raw = _known_charset_words(repair_escaped_bytes(raw))
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw).strip()
    try:
        return default_policy.header_factory(name, raw)
    except Exception:  # the header registry raises odd errors on odd input; never fatal
        return None


def header_text(message: Message, name: str) -> str:
    """The decoded text of the first ``name`` header ("" when missing or unreadable)."""
    value = header(message, name)
    if value is None:
        raw = _raw_value(message, name)
        return repair_escaped_bytes(raw).strip() if raw else ""
    return repair_escaped_bytes(str(value)).strip()


def header_addresses(message: Message, name: str) -> tuple[MailAddress, ...]:
    """The addresses of an address header (groups flattened); unreadable ones are left out."""
    value = header(message, name)
    try:
        found = getattr(value, "addresses", ()) or ()
        return tuple(
            MailAddress(
                address=repair_escaped_bytes(item.addr_spec),
                display_name=repair_escaped_bytes(item.display_name or ""),
            )
            for item in found
            if item.username and item.domain
        )
    except Exception:  # a malformed address list: treat as no addresses
        return ()


def header_date(message: Message) -> datetime | None:
    """The Date header as an aware datetime, or None when missing or not a date."""
    raw = _raw_value(message, "Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
