"""A real Redis for the tests: Debian's redis-server, throw-away, unprivileged, on loopback.

Nothing is saved (no RDB, no AOF); the server listens on a free TCP port and a unix
socket in its temp directory and stops with the fixture.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REDIS_SERVER = "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server() -> Iterator[str]:
    """A running server; yields its ``redis://127.0.0.1:PORT/0`` URL."""
    if not Path(REDIS_SERVER).exists():
        raise RuntimeError("redis-server is not installed: run .ci/install --test")
    directory = Path(tempfile.mkdtemp(prefix="ptportal-redis-"))
    port = _free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--unixsocket", str(directory / "redis.sock"), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    with (directory / "redis.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(port, server, directory)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=15)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_up(port: int, server: subprocess.Popen, directory: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    log = (directory / "redis.log").read_text(errors="replace")
    raise RuntimeError(f"redis-server did not start:\n{log}")


def redis_fixture():
    """A session's Redis (fixture ``redis_url``): import it into conftest."""
    import pytest

    @pytest.fixture(scope="session")
    def redis_url() -> Iterator[str]:
        with redis_server() as url:
            yield url

    return redis_url
