"""Virus scanning with clamd through pyclamd, failing closed.

``read_clamd_limits`` takes the size limits from the clamd.conf clamd runs with, so portal
and clamd agree on what is too large to scan. ``Scanner.scan_file`` never raises: it returns
CLEAN only for clamd's explicit ``OK``; every other answer, a broken connection or a timeout
is INFECTED, TOO_LARGE or UNAVAILABLE (try again later). Callers log the verdicts they act
on; this module logs at DEBUG only, to avoid saying everything twice.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import pyclamd

from shared.config import ClamavSettings, ConfigError

logger = logging.getLogger(__name__)

# clamd cannot scan a file of 2 GiB or more; ClamAV 1.4 lowers a larger (or disabled)
# MaxFileSize to this many bytes (measured: "File size limit set to 2147483645 bytes").
CLAMAV_HARD_LIMIT = 2**31 - 3

# ClamAV's upstream defaults for keys a clamd.conf leaves out.
DEFAULT_LIMITS = {"MaxFileSize": "100M", "MaxScanSize": "400M", "StreamMaxLength": "100M"}

LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded"
STREAM_LIMIT_EXCEEDED = "INSTREAM size limit exceeded"
MODES = ("auto", "stream", "path")

CHUNK_SIZE = 1024 * 1024
_LONGEST_ANSWER = 64 * 1024
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BOOLEANS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


@dataclass(frozen=True)
class ScanLimits:
    """clamd's size limits in bytes; 0 means the limit is disabled."""

    max_file_size: int
    max_scan_size: int
    stream_max_length: int

    @property
    def largest_scannable(self) -> int:
        """The largest file (bytes) clamd scans completely, in either scan mode."""
        # StreamMaxLength counts in path mode too, so that switching modes never changes
        # which files are too large.
        limits = [self.max_file_size, self.max_scan_size, self.stream_max_length]
        return min([limit for limit in limits if limit > 0] + [CLAMAV_HARD_LIMIT])


class ScanVerdict(enum.Enum):
    """What a scan says about a file; only CLEAN may be handed on."""

    CLEAN = "clean"
    INFECTED = "infected"
    TOO_LARGE = "too_large"  # beyond clamd's limits: never counted clean
    UNAVAILABLE = "unavailable"  # clamd unreachable, timed out or failed: scan again later


@dataclass(frozen=True)
class ScanResult:
    """A verdict; ``signature`` names the virus (INFECTED), ``detail`` says why otherwise."""

    verdict: ScanVerdict
    signature: str = ""
    detail: str = ""


class ScannerUnavailable(Exception):
    """clamd did not answer."""


def read_clamd_limits(path: Path) -> ScanLimits:
    """The size limits of the clamd.conf at ``path``; ValueError naming file and key if unusable."""
    values = _read_clamd_conf(Path(path), {*DEFAULT_LIMITS, "AlertExceedsMax"})
    _require_alert_exceeds_max(path, values.get("AlertExceedsMax"))
    sizes = {
        key: _size(path, key, values.get(key, default)) for key, default in DEFAULT_LIMITS.items()
    }
    return ScanLimits(
        max_file_size=sizes["MaxFileSize"],
        max_scan_size=sizes["MaxScanSize"],
        stream_max_length=sizes["StreamMaxLength"],
    )


def clamd_limits(clamav: ClamavSettings) -> ScanLimits:
    """The limits of the clamd.conf ``[clamav] clamd_conf`` names, so portal and clamd agree;
    ConfigError naming the key when that file is unusable."""
    try:
        return read_clamd_limits(clamav.clamd_conf)
    except ValueError as exc:
        raise ConfigError(f"[clamav] clamd_conf: {exc}") from None


def _read_clamd_conf(path: Path, wanted: set[str]) -> dict[str, str]:
    """The values of the ``wanted`` keys, parsed the way clamd parses its config."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        words = line.split(None, 1)
        if not words or words[0].startswith("#") or words[0] not in wanted:
            continue
        if len(words) < 2:
            raise ValueError(f"{path}:{number}: {words[0]} has no value")
        # clamd keeps the first occurrence of a key and ignores later ones.
        values.setdefault(words[0], words[1].strip().removeprefix('"').removesuffix('"'))
    return values


def _require_alert_exceeds_max(path: Path, value: str | None) -> None:
    """Refuse a clamd.conf in which clamd would answer OK for data beyond its limits."""
    if value is None:
        raise ValueError(
            f"{path}: AlertExceedsMax is not set; set 'AlertExceedsMax yes' "
            "(without it clamd answers OK for files beyond its size limits)"
        )
    if value.lower() not in _BOOLEANS:
        raise ValueError(f"{path}: AlertExceedsMax {value!r} is not allowed; expected yes")
    if not _BOOLEANS[value.lower()]:
        raise ValueError(
            f"{path}: AlertExceedsMax {value!r} is not allowed; expected yes "
            "(without it clamd answers OK for files beyond its size limits)"
        )


def _size(path: Path, key: str, value: str) -> int:
    """A clamd SIZE value (bytes, or a number with K, M or G) in bytes."""
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(
            f"{path}: {key} {value!r} is not allowed; expected bytes or a number with K, M or G"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


class _Commands:
    """Strict clamd requests on the socket pyclamd sets up (mixed into its socket classes).

    pyclamd's own ``scan_file`` reports an empty answer as clean and its ``scan_stream``
    needs the whole file in memory and writes with ``send()``; these read files from disk
    in chunks with ``sendall()`` and return clamd's answer verbatim.
    """

    clamd_socket: socket.socket

    def ask(self, command: bytes) -> str:
        """Send one newline-terminated command and return clamd's whole answer."""
        self._init_socket()
        try:
            self.clamd_socket.sendall(b"n" + command + b"\n")
            return self._answer()
        finally:
            self._close_socket()

    def instream(self, path: Path) -> str:
        """Stream the file at ``path`` with INSTREAM and return clamd's answer."""
        self._init_socket()
        try:
            try:
                self.clamd_socket.sendall(b"nINSTREAM\n")
                _send_chunks(self.clamd_socket, path)
            except (BrokenPipeError, ConnectionResetError):
                # clamd closes the connection when StreamMaxLength is passed, but its reason
                # is usually still readable; without one, the send error stands.
                answer = self._answer_after_close()
                if not answer:
                    raise
                return answer
            return self._answer()
        finally:
            self._close_socket()

    def _answer(self) -> str:
        """Everything clamd sends until it closes the connection (it does after each command)."""
        answer = b""
        while len(answer) < _LONGEST_ANSWER:
            try:
                data = self.clamd_socket.recv(4096)
            except ConnectionResetError:
                # After a reply to an aborted INSTREAM, a unix socket reports the reset
                # instead of end-of-file; a complete reply line is still valid.
                if answer.endswith(b"\n"):
                    break
                raise
            if not data:
                break
            answer += data
        return os.fsdecode(answer).rstrip("\r\n\0")

    def _answer_after_close(self) -> str:
        """What clamd sent before closing a connection mid-stream, or "" if nothing is left."""
        try:
            return self._answer()
        except OSError:
            return ""


class _UnixClient(_Commands, pyclamd.ClamdUnixSocket):
    """pyclamd's unix socket client with strict commands."""


class _NetworkClient(_Commands, pyclamd.ClamdNetworkSocket):
    """pyclamd's TCP client with strict commands."""


def _send_chunks(sock: socket.socket, path: Path) -> None:
    """Send ``path`` as INSTREAM chunks through one reused buffer, so memory stays flat."""
    buffer = bytearray(4 + CHUNK_SIZE)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while length := handle.readinto(view[4:]):
            struct.pack_into("!L", buffer, 0, length)
            sock.sendall(view[: 4 + length])
    sock.sendall(struct.pack("!L", 0))


class Scanner:
    """Scans files with clamd at a unix socket path or ``host:port``; see ``scan_file``."""

    def __init__(
        self, address: str, timeout_seconds: int, limits: ScanLimits, mode: str = "stream"
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"scan mode {mode!r} is not allowed; expected one of {MODES}")
        self.address = address
        self.timeout_seconds = timeout_seconds
        self.limits = limits
        self.mode = mode
        self._tcp = None if address.startswith("/") else _host_port(address)

    def version(self) -> str:
        """clamd's version line; raises ScannerUnavailable if clamd does not answer."""
        try:
            answer = self._client().ask(b"VERSION")
        except OSError as exc:  # includes pyclamd.ConnectionError and timeouts
            raise ScannerUnavailable(f"clamd at {self.address}: {_reason(exc)}") from exc
        if not answer:
            raise ScannerUnavailable(f"clamd at {self.address} closed the connection")
        return answer

    def scan_file(self, path: Path) -> ScanResult:
        """Scan the file at ``path``; CLEAN only if clamd answered OK for all of it."""
        try:
            target, size = _regular_file(Path(path))
        except (OSError, ValueError) as exc:
            return self._unavailable(path, f"cannot scan {path}: {exc}")
        if size > self.limits.largest_scannable:
            detail = f"{size} bytes; clamd scans at most {self.limits.largest_scannable} bytes"
            return self._too_large(path, detail)
        try:
            name, answer = self._ask_clamd(target)
        except OSError as exc:  # refused, reset, timed out, pyclamd.ConnectionError, unreadable
            return self._unavailable(path, f"clamd at {self.address}: {_reason(exc)}")
        return self._interpret(path, name, answer)

    def _client(self) -> _Commands:
        """A fresh pyclamd client per request, so threads never share a socket."""
        if self._tcp is None:
            return _UnixClient(filename=self.address, timeout=self.timeout_seconds)
        host, port = self._tcp
        return _NetworkClient(host, port, self.timeout_seconds)

    def _ask_clamd(self, target: Path) -> tuple[str, str]:
        """Send the file's path (path, auto) or its bytes (stream); the name clamd answers
        for, and the answer. In auto mode a path clamd answers with an error for (it cannot
        read it: another user, another host) is sent as a stream instead."""
        raw = os.fsencode(target)
        # SCAN takes the rest of the line as the path: a newline in it cannot be sent.
        if self.mode != "stream" and b"\n" not in raw and b"\0" not in raw:
            answer = self._client().ask(b"SCAN " + raw)
            if self.mode == "path" or not answer.endswith(" ERROR"):
                return str(target), answer
            _note_path_refused(self.address, answer)
        return "stream", self._client().instream(target)

    def _interpret(self, path: Path, name: str, answer: str) -> ScanResult:
        """clamd's answer as a result: only exactly "<name>: OK" is clean."""
        if answer == f"{name}: OK":
            return ScanResult(ScanVerdict.CLEAN)
        if answer.startswith(STREAM_LIMIT_EXCEEDED):
            return self._too_large(path, f"clamd: {answer}")
        found = _found(name, answer)
        if found.startswith(LIMITS_EXCEEDED):
            return self._too_large(path, f"clamd: {found}")
        if found:
            logger.debug("%s is infected: %s", path, found)
            return ScanResult(ScanVerdict.INFECTED, signature=found)
        return self._unavailable(path, f"clamd: {answer or 'no answer'}")

    def _too_large(self, path: Path, detail: str) -> ScanResult:
        logger.debug("%s is too large to scan: %s", path, detail)
        return ScanResult(ScanVerdict.TOO_LARGE, detail=detail)

    def _unavailable(self, path: Path, detail: str) -> ScanResult:
        logger.debug("%s not scanned: %s", path, detail)
        return ScanResult(ScanVerdict.UNAVAILABLE, detail=detail)


_PATH_REFUSED_BY: set[str] = set()


def _note_path_refused(address: str, answer: str) -> None:
    """Warn once per clamd that auto mode streams because clamd cannot read the path."""
    if address not in _PATH_REFUSED_BY:
        _PATH_REFUSED_BY.add(address)
        logger.warning(
            "clamd at %s cannot scan files by path (%s): sending them as a stream, which is "
            "slower; let clamd read the staging area, or set [clamav] scan_mode = stream",
            address,
            answer,
        )


def _found(name: str, answer: str) -> str:
    """The signature in a single-line "<name>: <signature> FOUND" answer, else ""."""
    prefix, suffix = f"{name}: ", " FOUND"
    if "\n" in answer or not (answer.startswith(prefix) and answer.endswith(suffix)):
        return ""
    return answer[len(prefix) : -len(suffix)]


def _regular_file(path: Path) -> tuple[Path, int]:
    """The resolved path and size of a regular file.

    Resolved because clamd answers OK for a symlink it does not follow and for a directory.
    """
    target = path.resolve(strict=True)
    info = target.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    return target, info.st_size


def _host_port(address: str) -> tuple[str, int]:
    """``host:port`` split into its parts."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"clamd address {address!r} is neither a socket path nor HOST:PORT")
    return host.strip("[]"), int(port)


def _reason(exc: OSError) -> str:
    """The error, with the socket error pyclamd wrapped into its own ConnectionError."""
    cause = exc.__cause__ or exc.__context__
    return f"{exc} ({cause})" if isinstance(exc, pyclamd.ConnectionError) and cause else str(exc)
