"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster on loopback.

``.ci/install --test`` installs the ``postgresql`` package. The cluster lives in a temp
directory, trusts local connections and runs without fsync (its data is thrown away);
as root it runs as the ``postgres`` user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run .ci/install --test")
    return os.path.dirname(found[-1])


def _major_version(initdb: str) -> int:
    return int(initdb.split("/")[4])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running server; yields the URL of its (empty) ``ptportal`` database."""
    import psycopg

    binaries = _binaries()
    directory = tempfile.mkdtemp(prefix="ptportal-postgres-")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data = os.path.join(directory, "data")
    subprocess.run(
        _as_server_user([f"{binaries}/initdb", "-D", data, "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={directory}"]
    settings += ["-c", "fsync=off", "-c", "full_page_writes=off", "-p", str(port)]
    # Every test has its own database, and portal, worker and agent processes connect too.
    settings += ["-c", "max_connections=300"]
    with open(os.path.join(directory, "server.log"), "wb") as log:
        server = subprocess.Popen(
            _as_server_user([f"{binaries}/postgres", "-D", data, *settings]),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        connection = _connect_when_up(psycopg, port, server, directory)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE ptportal")
        connection.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/ptportal"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def _connect_when_up(psycopg, port: int, server: subprocess.Popen, directory: str):
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(directory, "server.log"), encoding="utf-8") as log_file:
                    log = log_file.read()
                raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
            time.sleep(0.1)


def empty_schema(url: str) -> None:
    """Drop every table, function and trigger of the test database."""
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    connection.close()


def create_database(admin_url: str, name: str) -> str:
    """A new empty database ``name`` on the cluster of ``admin_url``; returns its URL."""
    import psycopg

    connection = psycopg.connect(admin_url, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
