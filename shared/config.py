"""Load and validate client.ini into one frozen, typed settings object.

Every key is declared once in ``SCHEMA`` with its parser and default; an unknown
section or key, or a value its parser refuses, raises ``ConfigError`` whose
message is one line naming the file, section, key, value and what is allowed.
An empty value falls back to the environment variable ``PTPORTAL_<SECTION>_<KEY>``
so secrets need not be written into the file.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.typenames import parse_accepted_types

ENV_CONFIG = "PTPORTAL_CONFIG"
DEFAULT_CONFIG = "client.ini"


class ConfigError(Exception):
    """A client.ini problem, already phrased as one line for the administrator."""


@dataclass(frozen=True)
class Key:
    """How one ini key is parsed; ``parse`` raises ValueError(what is allowed)."""

    parse: Callable[[str, Path], Any]
    default: str | None
    secret: bool = False


def _text(raw: str, _base: Path) -> str:
    return raw


def _rate_limit_storage(raw: str, _base: Path) -> str:
    if raw not in ("database://", "memory://") and not raw.startswith(("redis://", "rediss://")):
        raise ValueError("database://, memory:// or redis://HOST:PORT")
    return raw


def _required_text(raw: str, _base: Path) -> str:
    if not raw:
        raise ValueError("a non-empty value")
    return raw


def _integer(low: int, high: int) -> Callable[[str, Path], int]:
    def parse(raw: str, _base: Path) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return parse


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size(raw: str, _base: Path) -> int:
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(i?B)?", raw.strip(), re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        raise ValueError("a size like 500M, 20G or a number of bytes")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _choice(*allowed: str) -> Callable[[str, Path], str]:
    def parse(raw: str, _base: Path) -> str:
        if raw.lower() not in allowed:
            raise ValueError("one of " + ", ".join(allowed))
        return raw.lower()

    return parse


def _switch(*allowed: int) -> Callable[[str, Path], int]:
    def parse(raw: str, _base: Path) -> int:
        if raw not in {str(a) for a in allowed}:
            raise ValueError("one of " + ", ".join(str(a) for a in allowed))
        return int(raw)

    return parse


def _path(raw: str, base: Path) -> Path:
    if not raw:
        raise ValueError("a directory path")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _optional_path(raw: str, base: Path) -> Path | None:
    return _path(raw, base) if raw else None


def _base_url(raw: str, _base: Path) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
        raise ValueError("an absolute http:// or https:// URL without query")
    return raw.rstrip("/")


def _database_url(raw: str, base: Path) -> str:
    if raw.startswith("sqlite:///"):
        file = raw.removeprefix("sqlite:///")
        if not file:
            raise ValueError("sqlite:///PATH or postgresql://USER@HOST/DB")
        return "sqlite:///" + str(_path(file, base))
    if re.match(r"^postgres(ql)?(\+pool)?://[^/]+/\w+", raw):
        return raw
    raise ValueError("sqlite:///PATH or postgresql://USER@HOST/DB")


def database_url_value(raw: str) -> str:
    """A PostgreSQL URL as ``[database] url`` accepts it (for ``ptportal db copy --to``)."""
    if not re.match(r"^postgres(ql)?(\+pool)?://[^/]+/\w+", raw):
        raise ValueError("postgresql://USER@HOST/DB")
    return raw


def _queue_url(raw: str, base: Path) -> str:
    if raw == "memory://" or raw.startswith(("redis://", "rediss://")):
        return raw
    try:
        return _database_url(raw, base)
    except ValueError:
        raise ValueError("sqlite:///PATH, postgresql://…, redis://… or memory://") from None


LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def _logo(raw: str, base: Path) -> Path | None:
    if not raw:
        return None
    path = _path(raw, base)
    if path.suffix.lower() not in LOGO_TYPES or not path.is_file():
        raise ValueError("an existing .png, .svg, .jpg or .webp file (or empty)")
    return path


def _color(raw: str, _base: Path) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", raw):
        raise ValueError("a colour like #1f5f8b")
    return raw.lower()


def _secret_key(raw: str, _base: Path) -> str:
    if len(raw) < 32:
        raise ValueError("a random string of at least 32 characters")
    return raw


def _email(raw: str, _base: Path) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", raw):
        raise ValueError("an email address like portal@example.com")
    return raw


def _clamd_address(raw: str, base: Path) -> str:
    if re.fullmatch(r"[\w.-]+:\d{1,5}", raw) or raw.startswith("/"):
        return raw
    if raw.startswith("unix:"):
        return str(_path(raw.removeprefix("unix:"), base))
    raise ValueError("a unix socket path (/run/clamav/clamd.ctl) or HOST:PORT")


def _time_of_day(raw: str, _base: Path) -> str:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", raw)
    if not match:
        raise ValueError("a time of day like 07:30 (24-hour clock)")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _timezone(raw: str, _base: Path) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone like Europe/Berlin") from None
    return raw


def _seconds(low: float, high: float) -> Callable[[str, Path], float]:
    def parse(raw: str, _base: Path) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"a number of seconds from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise ValueError(f"a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def _number(low: float, high: float, unit: str) -> Callable[[str, Path], float]:
    def parse(raw: str, _base: Path) -> float:
        allowed = f"a number of {unit} from {low:g} to {high:g}"
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(allowed) from None
        if not low <= value <= high:
            raise ValueError(allowed)
        return value

    return parse


def _yes_no(raw: str, _base: Path) -> bool:
    if raw.lower() not in ("yes", "no"):
        raise ValueError("yes or no")
    return raw.lower() == "yes"


def _accepted_types(raw: str, _base: Path) -> tuple[str, ...]:
    return parse_accepted_types(raw)


def _optional_email(raw: str, base: Path) -> str:
    return _email(raw, base) if raw else ""


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that never leave this machine (127.0.0.0/8, ::1)."""
    host = host.lower().strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _portal_url(raw: str, _base: Path) -> str:
    """The portal as the agent reaches it: https://, or http:// on this machine only.

    Plain http would carry the agent token and every customer file in the clear; on
    the loopback interface nothing leaves the machine, so the demo and a single-host
    installation may use it.
    """
    allowed = "an https:// URL of the portal (http:// only for 127.0.0.1 or localhost)"
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
        raise ValueError(allowed)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(allowed)
    return raw.rstrip("/")


def _optional_file(raw: str, base: Path) -> Path | None:
    if not raw:
        return None
    path = _path(raw, base)
    if not path.is_file():
        raise ValueError("an existing file (or empty)")
    return path


def _folder_name(raw: str, _base: Path) -> str:
    if not raw or raw in {".", ".."} or re.search(r'[/\\<>:"|?*\x00-\x1f]', raw):
        raise ValueError("one folder name without / \\ or other reserved characters")
    return raw


HOTFOLDER_PLACEHOLDERS = ("customer_no", "project_no")


def _hotfolder_pattern(raw: str, _base: Path) -> str:
    allowed = (
        "a relative path using {customer_no} and {project_no}, e.g. {customer_no}/{project_no}"
    )
    pattern = raw.strip().strip("/")
    try:
        fields = [field for _text, field, _spec, _conv in Formatter().parse(pattern) if field]
    except ValueError:
        raise ValueError(allowed) from None
    parts = pattern.split("/")
    if (
        "project_no" not in fields
        or any(field not in HOTFOLDER_PLACEHOLDERS for field in fields)
        or any(part in {"", ".", ".."} for part in parts)
        or "\\" in pattern
    ):
        raise ValueError(allowed)
    return pattern


SCHEMA: dict[str, dict[str, Key]] = {
    "portal": {
        "base_url": Key(_base_url, None),
        "secret_key": Key(_secret_key, None, secret=True),
        "shop_name": Key(_required_text, "ptportal"),
        "logo_file": Key(_logo, ""),
        "primary_color": Key(_color, "#1f5f8b"),
        "default_language": Key(_choice("de", "en", "fr"), "de"),
        "time_zone": Key(_timezone, "Europe/Berlin"),
        "activation_link_minutes": Key(_integer(5, 7 * 24 * 60), "30"),
        "session_hours": Key(_integer(1, 24 * 30), "12"),
        "login_attempts_per_minute": Key(_integer(1, 1000), "10"),
        "link_requests_per_hour": Key(_integer(1, 1000), "5"),
        "rate_limit_storage_url": Key(_rate_limit_storage, "database://"),
        "proxy_count": Key(_integer(0, 5), "0"),
        "max_upload_bytes": Key(_size, "20G"),
        "upload_chunk_bytes": Key(_size, "64M"),
    },
    "database": {
        "url": Key(_database_url, "sqlite:///data/ptportal.db", secret=True),
    },
    "storage": {
        "order_root": Key(_path, "data/orders"),
        "staging_root": Key(_path, "data/staging"),
        "quarantine_root": Key(_path, "data/quarantine"),
        "preview_root": Key(_path, "data/previews"),
    },
    "workflow": {
        "portal_create_uplogin_automatically": Key(_switch(0, 1), "1"),
        "portal_send_uplogin_email_automatically": Key(_switch(0, 1), "1"),
        "portal_reminder_email_automatically": Key(_switch(0, 1, 2), "0"),
    },
    "smtp": {
        "server": Key(_required_text, "localhost"),
        "port": Key(_integer(1, 65535), "25"),
        "email": Key(_email, None),
        "username": Key(_text, ""),
        "password": Key(_text, "", secret=True),
        "security": Key(_choice("starttls", "ssl", "none"), "starttls"),
        "ca_file": Key(_optional_path, ""),
        "timeout_seconds": Key(_integer(1, 600), "30"),
        "retry_first_seconds": Key(_integer(1, 86400), "60"),
        "retry_max_seconds": Key(_integer(1, 7 * 86400), "3600"),
        "max_attempts": Key(_integer(1, 1000), "30"),
        "reply_to": Key(_optional_email, ""),
    },
    "notifications": {
        "send_time": Key(_time_of_day, "07:30"),
        "deadline_warning_days": Key(_integer(0, 60), "2"),
        "notification_batch_seconds": Key(_integer(0, 86400), "120"),
        "staff_language": Key(_choice("de", "en", "fr"), "de"),
        "job_notification_email": Key(_optional_email, ""),
    },
    "clamav": {
        "address": Key(_clamd_address, "/run/clamav/clamd.ctl"),
        "timeout_seconds": Key(_integer(1, 3600), "330"),
        "clamd_conf": Key(_path, "/etc/clamav/clamd.conf"),
        "scan_mode": Key(_choice("auto", "stream", "path"), "auto"),
        "oversize_policy": Key(_choice("hold", "reject"), "hold"),
    },
    "worker": {
        "queue_url": Key(_queue_url, "sqlite:///data/queue.db", secret=True),
    },
    "security": {
        "argon2_time_cost": Key(_integer(1, 20), "3"),
        "argon2_memory_kib": Key(_integer(8, 4 * 1024 * 1024), "65536"),
        "argon2_parallelism": Key(_integer(1, 64), "4"),
    },
    "audit": {
        "retention_days": Key(_integer(30, 3650), "730"),
    },
    "files": {
        "accepted_types": Key(_accepted_types, "pdf, tiff, jpeg, png, eps, ai, zip"),
        "zip_max_total_size": Key(_size, "20G"),
        "zip_max_entries": Key(_integer(1, 1_000_000), "10000"),
        "zip_max_ratio": Key(_integer(2, 100_000), "250"),
        "zip_ratio_floor": Key(_size, "16M"),
        "zip_max_nested_archives": Key(_integer(0, 100_000), "10"),
    },
    "preflight": {
        "min_bleed_mm": Key(_number(0, 50, "millimetres"), "3"),
        "min_image_ppi": Key(_integer(1, 5000), "250"),
        "colour_mode": Key(_choice("cmyk", "any"), "cmyk"),
        "require_pdfx": Key(_yes_no, "no"),
        "trim_tolerance_mm": Key(_number(0, 50, "millimetres"), "1"),
        "thumbnail_px": Key(_integer(32, 2000), "300"),
        "preview_px": Key(_integer(200, 6000), "1200"),
        "cpu_seconds": Key(_integer(1, 3600), "60"),
        "wall_seconds": Key(_seconds(1, 7200), "90"),
        "memory_limit": Key(_size, "1G"),
        "max_pages": Key(_integer(1, 1_000_000), "20000"),
        "max_image_pixels": Key(_integer(1_000_000, 10_000_000_000), "300000000"),
        "max_preview_pixels": Key(_integer(1_000_000, 10_000_000_000), "120000000"),
    },
    "agent": {
        "portal_url": Key(_portal_url, None),
        "token": Key(_required_text, None, secret=True),
        "ca_file": Key(_optional_file, ""),
        "state_dir": Key(_path, "agent-state"),
        "hotfolder_root": Key(_path, "data/hotfolders"),
        "hotfolder_pattern": Key(_hotfolder_pattern, "{customer_no}/{project_no}"),
        "notification_dir": Key(_path, "data/notifications"),
        "batch_window_seconds": Key(_seconds(0, 3600), "10"),
        "downloads": Key(_integer(1, 16), "4"),
        "timeout_seconds": Key(_seconds(1, 600), "30"),
        "heartbeat_seconds": Key(_seconds(1, 3600), "30"),
        "outbound_folder": Key(_folder_name, "_to_customer"),
        "watch_mode": Key(_choice("native", "polling"), "native"),
        "poll_interval_seconds": Key(_seconds(0.1, 3600), "5"),
        "stable_seconds": Key(_seconds(0, 3600), "2"),
        "rescan_seconds": Key(_seconds(1, 86400), "60"),
    },
}


@dataclass(frozen=True)
class PortalSettings:
    base_url: str
    secret_key: str
    shop_name: str
    logo_file: Path | None
    primary_color: str
    default_language: str
    time_zone: str
    activation_link_minutes: int
    session_hours: int
    login_attempts_per_minute: int
    link_requests_per_hour: int
    rate_limit_storage_url: str
    proxy_count: int
    max_upload_bytes: int
    upload_chunk_bytes: int

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str


@dataclass(frozen=True)
class StorageSettings:
    order_root: Path
    staging_root: Path
    quarantine_root: Path
    preview_root: Path


@dataclass(frozen=True)
class WorkflowSettings:
    portal_create_uplogin_automatically: int
    portal_send_uplogin_email_automatically: int
    portal_reminder_email_automatically: int


@dataclass(frozen=True)
class SmtpSettings:
    server: str
    port: int
    email: str
    username: str
    password: str
    security: str
    ca_file: Path | None
    timeout_seconds: int
    retry_first_seconds: int
    retry_max_seconds: int
    max_attempts: int
    # Defaulted so code that builds SmtpSettings by hand (tests) need not name it.
    reply_to: str = ""


@dataclass(frozen=True)
class NotificationSettings:
    send_time: str
    deadline_warning_days: int
    notification_batch_seconds: int
    staff_language: str
    # Defaulted so code that builds NotificationSettings by hand (tests) need not name it.
    job_notification_email: str = ""


@dataclass(frozen=True)
class ClamavSettings:
    address: str
    timeout_seconds: int
    clamd_conf: Path
    scan_mode: str
    oversize_policy: str


@dataclass(frozen=True)
class WorkerSettings:
    queue_url: str


@dataclass(frozen=True)
class SecuritySettings:
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int


@dataclass(frozen=True)
class AuditSettings:
    retention_days: int


@dataclass(frozen=True)
class FilesSettings:
    """What customers may upload: types read from the content, and when a ZIP is a bomb."""

    accepted_types: tuple[str, ...]
    zip_max_total_size: int
    zip_max_entries: int
    zip_max_ratio: int
    zip_ratio_floor: int
    zip_max_nested_archives: int


@dataclass(frozen=True)
class PreflightSection:
    """The preflight's rules and the limits of its sandboxed process (``[preflight]``)."""

    min_bleed_mm: float
    min_image_ppi: int
    colour_mode: str
    require_pdfx: bool
    trim_tolerance_mm: float
    thumbnail_px: int
    preview_px: int
    cpu_seconds: int
    wall_seconds: float
    memory_limit: int
    max_pages: int
    max_image_pixels: int
    max_preview_pixels: int


@dataclass(frozen=True)
class AgentSettings:
    """The hotfolder agent's ``[agent]`` section: all it knows of the portal is its URL."""

    source: Path
    portal_url: str
    token: str
    ca_file: Path | None
    state_dir: Path
    hotfolder_root: Path
    hotfolder_pattern: str
    notification_dir: Path
    batch_window_seconds: float
    downloads: int
    timeout_seconds: float
    heartbeat_seconds: float
    outbound_folder: str
    watch_mode: str
    poll_interval_seconds: float
    stable_seconds: float
    rescan_seconds: float


# -- mailboxes -------------------------------------------------------------------------------
#
# Any number of sections [mailbox:NAME], one per IMAP mailbox the worker reads (issue 17).
# Their keys are declared here like SCHEMA's; an empty value falls back to the environment
# variable PTPORTAL_MAILBOX_<NAME>_<KEY> (NAME upper-cased, "-" as "_"), so the password
# need not be written into the file.

MAILBOX_PREFIX = "mailbox:"
SECURITY_SSL = "ssl"
SECURITY_STARTTLS = "starttls"
IMAP_PORTS = {SECURITY_SSL: 993, SECURITY_STARTTLS: 143}
_MAILBOX_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# IMAP folder names: anything printable except the wildcards LIST gives a meaning to.
_IMAP_FOLDER = re.compile(r"[^\x00-\x1f\x7f%*]{1,200}")
_YES = {"1", "yes", "true", "on"}
_NO = {"0", "no", "false", "off"}


def _imap_security(raw: str, _base: Path) -> str:
    if raw.lower() not in IMAP_PORTS:
        raise ValueError("one of ssl, starttls (plain IMAP without TLS is not offered)")
    return raw.lower()


def _host(raw: str, _base: Path) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", raw):
        raise ValueError("a host name or IP address like imap.example.com")
    return raw


def _optional_port(raw: str, base: Path) -> int:
    # Empty: the default port of the chosen security, filled in by parse_mailbox_section.
    return _integer(1, 65535)(raw, base) if raw else 0


def _ca_file(raw: str, base: Path) -> Path | None:
    path = _optional_path(raw, base)
    if path is not None and not path.is_file():
        raise ValueError("the path of a readable PEM file with the CA certificates to trust")
    return path


def _imap_folder(raw: str, _base: Path) -> str:
    if not _IMAP_FOLDER.fullmatch(raw):
        raise ValueError("an IMAP folder name such as INBOX or INBOX.Processed (no % or *)")
    return raw


def _processed_folder(raw: str, base: Path) -> str:
    # "-" says: leave mail where it is and flag it (a mailbox where moving is not allowed).
    return "" if raw == "-" else _imap_folder(raw, base)


def _yes_no(raw: str, _base: Path) -> bool:
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise ValueError("yes or no")


MAILBOX_SCHEMA: dict[str, Key] = {
    "host": Key(_host, None),
    "port": Key(_optional_port, ""),
    "security": Key(_imap_security, SECURITY_SSL),
    "user": Key(_required_text, None),
    "password": Key(_required_text, None, secret=True),
    "ca_file": Key(_ca_file, ""),
    "address": Key(_optional_email, ""),
    "folder": Key(_imap_folder, "INBOX"),
    "processed_folder": Key(_processed_folder, "Processed"),
    "active": Key(_yes_no, "yes"),
    "poll_interval_seconds": Key(_integer(10, 86400), "60"),
    "max_mail_bytes": Key(_size, "50M"),
    "max_attachments": Key(_integer(1, 1000), "20"),
    "max_total_attachment_bytes": Key(_size, "40M"),
}


@dataclass(frozen=True)
class MailboxSettings:
    """How to reach one mailbox, the address customers write to, and what to accept from it.

    ``processed_folder`` empty means "never move, flag instead"; ``address`` is the
    Reply-To of mails about orders whose replies this mailbox receives ("" = unknown).
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
    # Defaulted so code that builds MailboxSettings by hand (tests) need not name it.
    address: str = ""

    def __repr__(self) -> str:
        # The dataclass repr would show the password in logs and tracebacks.
        return f"MailboxSettings(name={self.name!r}, {self.user}@{self.host}:{self.port})"


def mailbox_variable(name: str, key: str) -> str:
    """The environment variable that may hold ``key`` of mailbox ``name``."""
    return f"PTPORTAL_MAILBOX_{name.upper().replace('-', '_')}_{key.upper()}"


def password_variable(name: str) -> str:
    """The environment variable that may hold the password of mailbox ``name``."""
    return mailbox_variable(name, "password")


def parse_mailbox_section(
    name: str, mapping: Mapping[str, str], base_dir: Path, environ: Mapping[str, str]
) -> MailboxSettings:
    """Parse the section ``[mailbox:<name>]``; ValueError names the key and what is allowed."""
    section = f"[{MAILBOX_PREFIX}{name}]"
    if not _MAILBOX_NAME.fullmatch(name):
        raise ValueError(
            f"{section}: the mailbox name must be 1-40 lower-case letters, digits, - or _"
        )
    unknown = [key for key in mapping if key not in MAILBOX_SCHEMA]
    if unknown:
        raise ValueError(
            f"{section} unknown key {unknown[0]!r}; allowed: {', '.join(MAILBOX_SCHEMA)}"
        )
    values: dict[str, Any] = {}
    for key, spec in MAILBOX_SCHEMA.items():
        raw = (mapping.get(key) or "").strip() or environ.get(mailbox_variable(name, key), "")
        raw = raw.strip()
        if not raw:
            if spec.default is None:
                variable = mailbox_variable(name, key)
                raise ValueError(f"{section} {key} is missing; set it or ${variable}")
            raw = spec.default
        try:
            values[key] = spec.parse(raw, base_dir)
        except ValueError as exc:
            shown = "(hidden)" if spec.secret else repr(raw)
            raise ValueError(f"{section} {key} = {shown} is not allowed; expected {exc}") from None
    values["port"] = values["port"] or IMAP_PORTS[values["security"]]
    if values["processed_folder"] == values["folder"]:
        raise ValueError(
            f"{section} processed_folder = {values['processed_folder']!r} is not allowed; "
            "expected a folder other than folder (or - to flag, not move)"
        )
    return MailboxSettings(name=name, **values)


@dataclass(frozen=True)
class Settings:
    """Everything client.ini says, parsed once at start-up."""

    source: Path
    portal: PortalSettings
    database: DatabaseSettings
    storage: StorageSettings
    workflow: WorkflowSettings
    smtp: SmtpSettings
    notifications: NotificationSettings
    clamav: ClamavSettings
    worker: WorkerSettings
    security: SecuritySettings
    audit: AuditSettings
    files: FilesSettings
    preflight: PreflightSection
    # One per [mailbox:NAME] section, in the file's order; empty when none is configured.
    mailboxes: tuple[MailboxSettings, ...] = ()

    def mailbox(self, name: str) -> MailboxSettings | None:
        """The mailbox called ``name``, or None."""
        return next((box for box in self.mailboxes if box.name == name), None)


# The agent's section is read by the agent alone (``load_agent_settings``): the portal
# ignores it, so one client.ini may serve both on a single host.
AGENT_SECTION = "agent"
_SECTION_TYPES = {
    "portal": PortalSettings,
    "database": DatabaseSettings,
    "storage": StorageSettings,
    "workflow": WorkflowSettings,
    "smtp": SmtpSettings,
    "notifications": NotificationSettings,
    "clamav": ClamavSettings,
    "worker": WorkerSettings,
    "security": SecuritySettings,
    "audit": AuditSettings,
    "files": FilesSettings,
    "preflight": PreflightSection,
}


def _shown(secret_value: str) -> str:
    """A secret as it may appear in an error: URLs with their password masked, else hidden."""
    if "://" in secret_value:
        return repr(re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", secret_value))
    return "(hidden)"


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The ini to read: ``--config``, else ``$PTPORTAL_CONFIG``, else ``./client.ini``."""
    return Path(explicit or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def _read(path: Path) -> configparser.ConfigParser:
    """Parse ``path``; unknown sections and keys are errors (a typo must not pass silently)."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (copy client.ini.example)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a valid ini file: {first_line}") from None

    for section in parser.sections():
        if section.startswith(MAILBOX_PREFIX):
            continue
        if section not in SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{section}]; allowed: "
                + ", ".join(f"[{name}]" for name in SCHEMA)
                + f", [{MAILBOX_PREFIX}NAME]"
            )
        for key in parser[section]:
            if key not in SCHEMA[section]:
                raise ConfigError(
                    f"{path}: [{section}] unknown key {key!r}; allowed: "
                    + ", ".join(SCHEMA[section])
                    + _MOVED.get((section, key), "")
                )
    return parser


# Keys that moved elsewhere: the error says where.
_MOVED = {
    ("agent", "notify_email"): (
        " (the job notification mail is sent by the portal now:"
        " [notifications] job_notification_email in the portal's client.ini)"
    ),
}


def _section(
    path: Path, parser: configparser.ConfigParser, section: str, environ: dict[str, str]
) -> dict[str, Any]:
    """The typed values of one section, defaults and environment filled in."""
    base = path.resolve().parent
    values = {}
    for key, spec in SCHEMA[section].items():
        raw = parser.get(section, key, fallback="").strip()
        if not raw:
            raw = environ.get(f"PTPORTAL_{section}_{key}".upper(), "").strip()
        if not raw:
            if spec.default is None:
                env = f"PTPORTAL_{section}_{key}".upper()
                raise ConfigError(f"{path}: [{section}] {key} is missing; set it or ${env}")
            raw = spec.default
        try:
            values[key] = spec.parse(raw, base)
        except ValueError as exc:
            shown = _shown(raw) if spec.secret else repr(raw)
            raise ConfigError(
                f"{path}: [{section}] {key} = {shown} is not allowed; expected {exc}"
            ) from None
    return values


def load_settings(path: str | os.PathLike, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate ``path`` for the portal and its worker; raise ConfigError with a
    one-line message on any problem. ``[agent]`` is left to ``load_agent_settings``."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    parser = _read(path)
    sections = {
        section: _SECTION_TYPES[section](**_section(path, parser, section, environ))
        for section in SCHEMA
        if section != AGENT_SECTION
    }
    base = path.resolve().parent
    mailboxes = []
    for section in parser.sections():
        if section.startswith(MAILBOX_PREFIX):
            name = section.removeprefix(MAILBOX_PREFIX)
            try:
                mailboxes.append(parse_mailbox_section(name, parser[section], base, environ))
            except ValueError as exc:
                raise ConfigError(f"{path}: {exc}") from None
    return Settings(source=path.resolve(), **sections, mailboxes=tuple(mailboxes))


def load_agent_settings(
    path: str | os.PathLike, environ: dict[str, str] | None = None
) -> AgentSettings:
    """Read and validate ``[agent]`` of ``path`` for the hotfolder agent.

    The other sections are the portal's: the agent neither needs nor reads them (an
    agent's client.ini on the workflow server holds ``[agent]`` alone), but a typo in
    any section name or key is still an error.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    values = _section(path, _read(path), AGENT_SECTION, environ)
    return AgentSettings(source=path.resolve(), **values)
