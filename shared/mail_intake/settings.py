"""One mailbox the worker reads: a ``[mailbox:NAME]`` section of client.ini, parsed and frozen.

Values are parsed with client.ini's own parsers, so sizes, numbers and paths read like
everywhere else in the file. An empty ``password`` falls back to the environment variable
``PTPORTAL_MAILBOX_<NAME>_PASSWORD`` (NAME upper-cased, ``-`` as ``_``), so the secret need
not be written into the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import _integer, _optional_path, _required_text, _size

SECURITY_SSL = "ssl"
SECURITY_STARTTLS = "starttls"
DEFAULT_PORTS = {SECURITY_SSL: 993, SECURITY_STARTTLS: 143}

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ON = {"1", "yes", "true", "on"}
_OFF = {"0", "no", "false", "off"}
# IMAP folder names: anything printable except the wildcards LIST gives a meaning to.
_FOLDER = re.compile(r"[^\x00-\x1f\x7f%*]{1,200}")

KEYS = (
    "host",
    "port",
    "security",
    "user",
    "password",
    "ca_file",
    "folder",
    "processed_folder",
    "active",
    "poll_interval_seconds",
    "max_mail_bytes",
    "max_attachments",
    "max_total_attachment_bytes",
)


@dataclass(frozen=True)
class MailboxSettings:
    """How to reach one mailbox and what to accept from it.

    ``processed_folder`` empty means "never move, flag instead" (see ``imap.mark_processed``).
    """

    name: str
    host: str
    port: int
    security: str
    user: str
    password: str
    ca_file: Path | None
    folder: str
    processed_folder: str
    active: bool
    poll_interval_seconds: int
    max_mail_bytes: int
    max_attachments: int
    max_total_attachment_bytes: int

    def __repr__(self) -> str:
        # The dataclass repr would show the password in logs and tracebacks.
        return f"MailboxSettings(name={self.name!r}, {self.user}@{self.host}:{self.port})"


def password_variable(name: str) -> str:
    """The environment variable that may hold the password of mailbox ``name``."""
    return f"PTPORTAL_MAILBOX_{name.upper().replace('-', '_')}_PASSWORD"


def parse_mailbox_section(
    name: str, mapping: Mapping[str, str], base_dir: Path, environ: Mapping[str, str]
) -> MailboxSettings:
    """Parse the section ``[mailbox:<name>]``; ValueError names the key and what is allowed."""
    section = f"[mailbox:{name}]"
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{section}: the mailbox name must be 1-40 lower-case letters, digits, - or _"
        )
    unknown = sorted(set(mapping) - set(KEYS))
    if unknown:
        raise ValueError(f"{section} unknown key {unknown[0]!r}; allowed: {', '.join(KEYS)}")

    def raw(key: str, default: str = "") -> str:
        return (mapping.get(key) or "").strip() or default

    def parsed(key: str, parse, default: str = ""):
        value = raw(key, default)
        try:
            return parse(value, base_dir)
        except ValueError as exc:
            shown = "(hidden)" if key == "password" else repr(value)
            raise ValueError(f"{section} {key} = {shown} is not allowed; expected {exc}") from None

    security = parsed("security", _security, SECURITY_SSL)
    password = raw("password") or environ.get(password_variable(name), "").strip()
    if not password:
        raise ValueError(f"{section} password is missing; set it or ${password_variable(name)}")
    settings = MailboxSettings(
        name=name,
        host=parsed("host", _host),
        port=parsed("port", _integer(1, 65535), str(DEFAULT_PORTS[security])),
        security=security,
        user=parsed("user", _required_text),
        password=password,
        ca_file=parsed("ca_file", _existing_file),
        folder=parsed("folder", _folder, "INBOX"),
        processed_folder=parsed("processed_folder", _processed_folder, "Processed"),
        active=parsed("active", _switch, "yes"),
        poll_interval_seconds=parsed("poll_interval_seconds", _integer(10, 86400), "60"),
        max_mail_bytes=parsed("max_mail_bytes", _size, "50M"),
        max_attachments=parsed("max_attachments", _integer(1, 1000), "20"),
        max_total_attachment_bytes=parsed("max_total_attachment_bytes", _size, "40M"),
    )
    if settings.processed_folder == settings.folder:
        raise ValueError(
            f"{section} processed_folder = {settings.processed_folder!r} is not allowed; "
            "expected a folder other than folder (or - to flag, not move)"
        )
    return settings


def _security(raw: str, _base: Path) -> str:
    if raw.lower() not in DEFAULT_PORTS:
        raise ValueError("one of ssl, starttls (plain IMAP without TLS is not offered)")
    return raw.lower()


def _host(raw: str, _base: Path) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", raw):
        raise ValueError("a host name or IP address like imap.example.com")
    return raw


def _existing_file(raw: str, base: Path) -> Path | None:
    path = _optional_path(raw, base)
    if path is not None and not path.is_file():
        raise ValueError("the path of a readable PEM file with the CA certificates to trust")
    return path


def _folder(raw: str, _base: Path) -> str:
    if not _FOLDER.fullmatch(raw):
        raise ValueError("an IMAP folder name such as INBOX or INBOX.Processed (no % or *)")
    return raw


def _processed_folder(raw: str, base: Path) -> str:
    # "-" says: leave mail where it is and flag it (a mailbox where moving is not allowed).
    return "" if raw == "-" else _folder(raw, base)


def _switch(raw: str, _base: Path) -> bool:
    if raw.lower() in _ON:
        return True
    if raw.lower() in _OFF:
        return False
    raise ValueError("yes or no")
