"""A real IMAP server for tests: Debian's dovecot (dovecot-imapd), unprivileged, in a temp dir.

Everything dovecot writes (base_dir, state_dir, log, the users' Maildirs) lives in one
temporary directory. It listens on 127.0.0.1 on two free high ports: IMAPS (implicit TLS)
and IMAP with STARTTLS, with a certificate for "localhost" issued by a fresh trustme CA;
``ca_file`` is what a client has to trust. Users and passwords live in a passwd-file:
alice, bob and carol, and a supply of fresh users that ``next_user`` hands out.

Root: the tests run as root in CI, and dovecot will not give a mailbox to uid 0
("mail_uid=0 is not permitted") nor may its login processes chroot into our temp dir. So the
whole server runs as one unprivileged user: ``nobody`` when we are root, otherwise the
current user. As root it is started with ``Popen(user=, group=, extra_groups=[])`` — with
root's groups still attached, dovecot's fchown() of its login socket directory fails — and
the temp dir is chowned to it. Every internal, login and service user in the config is that
same user, ``chroot =`` is empty for the services that would chroot, and ``userdb static``
maps every login to that uid.

Test modules get the session fixture ``dovecot`` and the fixture ``imap_user`` with
``from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401``.
``imap_user`` is a fresh user (an empty mailbox) per test; when the test fails it logs what
dovecot logged meanwhile (shown under "Captured log teardown").
"""

from __future__ import annotations

import getpass
import grp
import imaplib
import logging
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from shared.config import MailboxSettings

logger = logging.getLogger(__name__)

HOST = "localhost"
INSTALL_HINT = "dovecot (Debian package dovecot-imapd) is missing: run .ci/install --test"
# Services that chroot by default (login processes); unprivileged they cannot.
_CHROOTED_SERVICES = (
    "imap-login",
    "imap-urlauth-login",
    "pop3-login",
    "submission-login",
    "managesieve-login",
)
# Users handed out one per test by ``next_user`` (the imap_user fixture).
FRESH_USERS = 300
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def dovecot_binary() -> str | None:
    """Path of Debian's dovecot, or None (/usr/sbin is often not on a normal user's PATH)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("dovecot", path=search)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _service_user() -> str:
    """The one unprivileged user dovecot runs as (see the module docstring)."""
    return "nobody" if os.geteuid() == 0 else getpass.getuser()


@dataclass(frozen=True)
class FolderEntry:
    """One message as ``list_folder`` sees it."""

    uid: int
    flags: tuple[str, ...]
    size: int
    message_id: str
    subject: str


class Dovecot:
    """dovecot in its own temporary directory; ``start``/``stop``/``close`` like clamd's helper.

    ``capabilities`` replaces what dovecot announces after login (``imap_capability``), e.g.
    ``"IMAP4rev1 LITERAL+ UIDPLUS"`` for a server without MOVE and IDLE.
    """

    def __init__(self, users: Iterable[str] = ("alice", "bob", "carol"), capabilities: str = ""):
        binary = dovecot_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.user = _service_user()
        # Directly under the system temp dir: dovecot's unix sockets live in base_dir.
        self.directory = Path(tempfile.mkdtemp(prefix="ptportal-dovecot-"))
        self.imaps_port = free_port()
        self.imap_port = free_port()
        self.ca_file = self.directory / "ca.pem"
        self._process: subprocess.Popen | None = None
        fresh = [f"user{number}" for number in range(1, FRESH_USERS + 1)]
        self._fresh = iter(fresh)
        self._write_users([*users, *fresh])
        self._write_tls()
        self._write_conf(capabilities)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log(self) -> str:
        """dovecot's log so far (for assertion messages)."""
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 10) -> float:
        """Start dovecot in the foreground; return the seconds until both ports greet."""
        if self.running:
            return 0.0
        started = time.monotonic()
        output = (self.directory / "dovecot.out").open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.directory / "dovecot.conf")],
            stdout=output,
            stderr=subprocess.STDOUT,
            **self._drop_privileges(),
        )
        output.close()
        self._wait_for_greeting(timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop dovecot (SIGTERM to the master, which ends its children)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self) -> None:
        """Stop dovecot and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- users -----------------------------------------------------------------------------

    def next_user(self) -> str:
        """A user nobody has used yet: an empty mailbox for one test."""
        name = next(self._fresh, None)
        if name is None:
            raise RuntimeError(f"all {FRESH_USERS} fresh users are used up: raise FRESH_USERS")
        return name

    def _write_users(self, names: Iterable[str]) -> None:
        # All users are written before dovecot starts: it rereads a changed passwd-file at
        # most once a second, so a user added while it runs may be refused for a moment.
        self.passwords = {name: f"pw-{name}-secret" for name in names}
        lines = "".join(f"{user}:{{PLAIN}}{pw}\n" for user, pw in self.passwords.items())
        (self.directory / "users").write_text(lines)

    # -- talking IMAP (the test side, plain imaplib) ---------------------------------------

    def client_context(self) -> ssl.SSLContext:
        """A TLS context that trusts this server's CA (and verifies the host name)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextmanager
    def imap(self, user: str) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in imaplib connection over IMAPS for the ``with`` block."""
        connection = imaplib.IMAP4_SSL(
            HOST, self.imaps_port, ssl_context=self.client_context(), timeout=30
        )
        try:
            connection.login(user, self.passwords[user])
            yield connection
        finally:
            with suppress(OSError, imaplib.IMAP4.error):
                connection.logout()

    def create_folder(self, user: str, folder: str) -> None:
        with self.imap(user) as connection:
            status, data = connection.create(_quoted(folder))
            assert status == "OK", data

    def folders(self, user: str) -> list[str]:
        """The user's folder names."""
        with self.imap(user) as connection:
            status, lines = connection.list()
            assert status == "OK", lines
        names = []
        for line in lines:
            match = re.search(rb'"[^"]*" "?([^"]*)"?$', line)
            if match:
                names.append(match.group(1).decode())
        return names

    def append(
        self,
        user: str,
        folder: str,
        message: bytes | EmailMessage,
        flags: Iterable[str] = (),
    ) -> int:
        """APPEND one message (bytes are sent as they are) and return its UID."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with self.imap(user) as connection:
            flag_list = "(" + " ".join(flags) + ")" if flags else None
            status, data = connection.append(_quoted(folder), flag_list, None, raw)
            assert status == "OK", data
        return _appended_uid(data[0])

    def append_file(self, user: str, folder: str, path: Path, chunk_bytes: int = 1 << 20) -> int:
        """APPEND the message in ``path`` streaming it from disk; return its UID.

        imaplib's ``append`` wants the whole message as bytes (and copies it once more to
        fix line ends), so big messages go over a raw TLS socket with a LITERAL+ literal.
        The file must already have CRLF line ends.
        """
        size = path.stat().st_size
        raw = socket.create_connection(("127.0.0.1", self.imaps_port), timeout=60)
        with self.client_context().wrap_socket(raw, server_hostname=HOST) as tls:
            reader = tls.makefile("rb")
            reader.readline()  # greeting
            login = f"a1 LOGIN {_quoted(user)} {_quoted(self.passwords[user])}\r\n"
            tls.sendall(login.encode())
            _expect_tagged(reader, b"a1")
            tls.sendall(f"a2 APPEND {_quoted(folder)} {{{size}+}}\r\n".encode())
            with path.open("rb") as handle:
                while chunk := handle.read(chunk_bytes):
                    tls.sendall(chunk)
            tls.sendall(b"\r\n")
            answer = _expect_tagged(reader, b"a2")
            tls.sendall(b"a3 LOGOUT\r\n")
        return _appended_uid(answer)

    def list_folder(self, user: str, folder: str) -> list[FolderEntry]:
        """What is in ``folder``: UID, flags, size, Message-ID and Subject of each message."""
        with self.imap(user) as connection:
            status, data = connection.select(_quoted(folder), readonly=True)
            assert status == "OK", data
            if int(data[0]) == 0:
                return []
            status, data = connection.uid(
                "FETCH",
                "1:*",
                "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])",
            )
            assert status == "OK", data
        return [_folder_entry(item) for item in data if isinstance(item, tuple)]

    def settings(self, user: str, **overrides: object) -> MailboxSettings:
        """MailboxSettings for ``user`` on the IMAPS port, trusting this server's CA."""
        values: dict[str, object] = {
            "name": "orders",
            "host": HOST,
            "port": self.imaps_port,
            "security": "ssl",
            "user": user,
            "password": self.passwords[user],
            "ca_file": self.ca_file,
            "folder": "INBOX",
            "processed_folder": "Processed",
            "active": True,
            "poll_interval_seconds": 60,
            "max_mail_bytes": 200 * 1024 * 1024,
            "max_attachments": 20,
            "max_total_attachment_bytes": 150 * 1024 * 1024,
        }
        values.update(overrides)
        if values["security"] == "starttls" and "port" not in overrides:
            values["port"] = self.imap_port
        return MailboxSettings(**values)

    # -- internals -------------------------------------------------------------------------

    def _give(self, path: Path) -> None:
        """Hand ``path`` to the service user when we are root (dovecot reads and writes it)."""
        if os.geteuid() == 0:
            shutil.chown(path, user=self.user, group=grp.getgrgid(self._gid).gr_name)

    def _drop_privileges(self) -> dict[str, object]:
        """Popen arguments that run dovecot as the service user with only its own group."""
        if os.geteuid() != 0:
            return {}
        # Without group and extra_groups the child keeps root's groups, and dovecot's
        # fchown() of its login socket directory to the service group fails.
        return {"user": self.user, "group": self._gid, "extra_groups": []}

    @property
    def _gid(self) -> int:
        return pwd.getpwnam(self.user).pw_gid

    def _write_tls(self) -> None:
        ca = trustme.CA()
        # "localhost" only: a client connecting to 127.0.0.1 must fail the host name check.
        certificate = ca.issue_cert(HOST)
        ca.cert_pem.write_to_path(str(self.ca_file))
        (self.directory / "cert.pem").write_bytes(
            b"".join(blob.bytes() for blob in certificate.cert_chain_pems)
        )
        certificate.private_key_pem.write_to_path(str(self.directory / "key.pem"))

    def _write_conf(self, capabilities: str) -> None:
        home = self.directory / "home"
        for sub in ("run", "state", home):
            (self.directory / sub).mkdir()
        d = self.directory
        chroots = "".join(f"service {name} {{\n  chroot =\n}}\n" for name in _CHROOTED_SERVICES)
        conf = f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {self.user}
default_internal_group = {grp.getgrgid(self._gid).gr_name}
default_login_user = {self.user}
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = plain login
# A wrong password is answered at once instead of after dovecot's 2 s penalty.
auth_failure_delay = 0
mail_max_userip_connections = 200
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={self.user} gid={self._gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
{f"imap_capability = {capabilities}" if capabilities else ""}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
# anvil would chroot too; its auth penalty would delay every login from 127.0.0.1 for
# up to 15 s after one test's deliberately wrong password.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{chroots}"""
        (d / "dovecot.conf").write_text(conf)
        for path in [d, *d.rglob("*")]:
            self._give(path)

    def _wait_for_greeting(self, timeout: float) -> None:
        """Return once IMAPS greets; fail with the log if dovecot exits or stays silent.

        Listening is not enough: the greeting waits for the auth service, and a dovecot
        stopped before its services are up takes seconds longer to stop.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with {self._process.returncode}:\n{self._output}{self.log}"
                )
            if self._greets():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"dovecot did not greet within {timeout} s:\n{self._output}{self.log}")

    def _greets(self) -> bool:
        try:
            with (
                socket.create_connection(("127.0.0.1", self.imaps_port), timeout=2) as raw,
                self.client_context().wrap_socket(raw, server_hostname=HOST) as tls,
            ):
                return tls.recv(200).startswith(b"* OK")
        except OSError:
            return False

    @property
    def _output(self) -> str:
        path = self.directory / "dovecot.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _quoted(text: str) -> str:
    """An IMAP quoted string (folder names with spaces, passwords)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _appended_uid(answer: bytes) -> int:
    match = _APPENDUID.search(answer)
    assert match, f"no APPENDUID in {answer!r}"
    return int(match.group(2))


def _expect_tagged(reader, tag: bytes) -> bytes:
    """Read lines up to the tagged answer ``tag``; fail unless it is OK."""
    while True:
        line = reader.readline()
        if not line:
            raise AssertionError(f"connection closed while waiting for {tag!r}")
        if line.startswith(tag + b" "):
            assert line.startswith(tag + b" OK"), line
            return line


def _folder_entry(item: tuple[bytes, bytes]) -> FolderEntry:
    meta, headers = item
    flags = re.search(rb"FLAGS \(([^)]*)\)", meta)
    uid = re.search(rb"UID (\d+)", meta)
    size = re.search(rb"RFC822.SIZE (\d+)", meta)
    fields = {}
    for line in headers.decode("utf-8", "replace").replace("\r\n ", " ").splitlines():
        key, _colon, value = line.partition(":")
        if value:
            fields[key.strip().lower()] = value.strip()
    return FolderEntry(
        uid=int(uid.group(1)),
        flags=tuple(flags.group(1).decode().split()) if flags else (),
        size=int(size.group(1)),
        message_id=fields.get("message-id", ""),
        subject=fields.get("subject", ""),
    )


@contextmanager
def running_dovecot(**options) -> Iterator[Dovecot]:
    """An extra dovecot (``Dovecot(**options)``) for one test or module, closed afterwards."""
    server = Dovecot(**options)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session", name="dovecot")
def dovecot_fixture() -> Iterator[Dovecot]:
    """One real dovecot for the test session."""
    if dovecot_binary() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)  # never skip: the IMAP path is the point
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(name="imap_user")
def imap_user_fixture(dovecot: Dovecot, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh user with an empty mailbox; on failure the test's part of the log is logged."""
    log_before = len(dovecot.log)
    failed_before = request.session.testsfailed
    yield dovecot.next_user()
    if request.session.testsfailed > failed_before:
        logger.warning("dovecot log during the test:\n%s", dovecot.log[log_before:])
