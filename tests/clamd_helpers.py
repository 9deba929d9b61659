"""A real clamd for tests: Debian's clamav-daemon with tests/clamd/clamd.conf.in, offline.

The database is shared/clamav/test-signatures (EICAR signatures only), so clamd starts
in a fraction of a second. Test modules get the session fixture ``clamd`` with
``from clamd_helpers import clamd_fixture  # noqa: F401`` (a different name, so that test
parameters called ``clamd`` do not shadow the import).
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from shared.files.scanning import ScanLimits, Scanner, read_clamd_limits

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent / "clamd"
TEMPLATE = HERE / "clamd.conf.in"
DATABASE = Path(__file__).parent.parent / "shared" / "clamav" / "test-signatures"
INSTALL_HINT = "clamd (Debian package clamav-daemon) is missing: run .ci/install --test"

# The EICAR test file, kept encoded so that no plain copy sits in the repository for
# scanners on developer machines to complain about; tests write it to tmp at runtime.
EICAR = base64.b64decode(
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
)


def clamd_binary() -> str | None:
    """Path of Debian's clamd, or None; /usr/sbin is often not on a normal user's PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("clamd", path=search)


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Clamd:
    """clamd in its own temporary directory, on a unix socket and a free TCP port.

    ``size_limit`` (a clamd SIZE such as "5M") sets MaxFileSize, MaxScanSize and
    StreamMaxLength. ``first_lines`` go before the template's settings and so win over them
    (clamd keeps the first occurrence of a key). ``user`` runs clamd as another user (only
    possible as root), e.g. to show that path mode fails closed when clamd cannot read a file.
    """

    def __init__(
        self, size_limit: str = "5M", first_lines: str = "", user: str | None = None
    ) -> None:
        binary = clamd_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.user = user
        # Directly under the system temp dir: unix socket paths are limited to ~100 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="ptportal-clamd-"))
        self.socket_path = self.directory / "clamd.sock"
        self.port = free_port()
        self.conf = self._write_conf(size_limit, first_lines)
        self._process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """The unix socket path, as client.ini's [clamav] address takes it."""
        return str(self.socket_path)

    @property
    def tcp_address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def limits(self) -> ScanLimits:
        """The limits of the generated clamd.conf, read the way the portal reads them."""
        return read_clamd_limits(self.conf)

    @property
    def log(self) -> str:
        """clamd's log so far (for assertion messages)."""
        path = self.directory / "clamd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def running(self) -> bool:
        """True while the clamd process is alive."""
        return self._process is not None and self._process.poll() is None

    def scanner(self, mode: str = "stream", tcp: bool = False, **overrides: int) -> Scanner:
        """A Scanner for this clamd; ``overrides`` replace ScanLimits fields."""
        limits = replace(self.limits, **overrides)
        address = self.tcp_address if tcp else self.address
        return Scanner(address, timeout_seconds=10, limits=limits, mode=mode)

    def start(self, timeout: float = 15) -> None:
        """Start clamd (again, with the same socket and port) and wait until PING answers."""
        if self.running:
            return
        output = (self.directory / "clamd.out").open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=output,
            stderr=subprocess.STDOUT,
            user=self.user,
        )
        output.close()
        self._wait_for_pong(timeout)

    def stop(self) -> None:
        """Stop clamd (SIGTERM); ``start`` brings it back on the same socket path and port."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @contextmanager
    def stopped(self) -> Iterator[Clamd]:
        """Stop clamd for the ``with`` block and start it again afterwards, even on failure."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    def close(self) -> None:
        """Stop clamd and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _write_conf(self, size_limit: str, first_lines: str) -> Path:
        """Fill the template and give clamd a private copy of the test database."""
        database = self.directory / "db"
        tmpdir = self.directory / "tmp"
        shutil.copytree(DATABASE, database)
        tmpdir.mkdir()
        text = string.Template(TEMPLATE.read_text()).substitute(
            socket=self.socket_path,
            port=self.port,
            database=database,
            tmpdir=tmpdir,
            pidfile=self.directory / "clamd.pid",
            logfile=self.directory / "clamd.log",
            size_limit=size_limit,
            first_lines=first_lines,
        )
        conf = self.directory / "clamd.conf"
        conf.write_text(text)
        if self.user:
            # clamd writes its socket, pid, log and spool files here as that user.
            for path in [self.directory, *self.directory.rglob("*")]:
                shutil.chown(path, user=self.user)
        return conf

    def _wait_for_pong(self, timeout: float) -> None:
        """Return once clamd answers PING; fail with its log if it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"clamd exited with {self._process.returncode}:\n{self._output}")
            if self._pong():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"clamd did not answer PING within {timeout} s:\n{self._output}")

    def _pong(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1)
                probe.connect(str(self.socket_path))
                probe.sendall(b"nPING\n")
                return probe.recv(16).strip() == b"PONG"
        except OSError:
            return False

    @property
    def _output(self) -> str:
        path = self.directory / "clamd.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@contextmanager
def running_clamd(**options: str) -> Iterator[Clamd]:
    """An extra clamd (``Clamd(**options)``) for one test, closed afterwards."""
    server = Clamd(**options)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session", name="clamd")
def clamd_fixture() -> Iterator[Clamd]:
    """One real clamd for the test session; use ``clamd.stopped()`` to take it down briefly."""
    if clamd_binary() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)  # never skip: scanning is the point
    server = Clamd()
    try:
        server.start()
        yield server
    finally:
        server.close()
