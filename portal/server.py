"""Run the portal under gunicorn from the ``ptportal`` command."""

from __future__ import annotations

from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.http.unreader import SocketUnreader

from shared.config import Settings
from shared.files.receiving import PIECE_BYTES

# gunicorn receives a request body in recv() calls of up to 1 MiB. Uploads stream to
# disk in pieces of PIECE_BYTES; recv() calls of the same size keep each piece in the
# CPU cache from socket to disk and hold less memory per upload thread (bench/README.md,
# benchmarks 1 and 2).
BODY_RECV_BYTES = PIECE_BYTES


class PortalServer(BaseApplication):
    """gunicorn with ``gthread`` workers: sync workers kill uploads at ``--timeout``."""

    def __init__(self, settings: Settings, options: dict) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from portal import create_app

        return create_app(self.settings)


def run_gunicorn(
    settings: Settings,
    *,
    bind: str,
    workers: int,
    threads: int,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> None:
    """Serve until stopped; over TLS when ``certfile`` is given (no proxy in front)."""
    SocketUnreader.max_body_chunk = BODY_RECV_BYTES
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": "-",
        "control_socket_disable": True,
    }
    if certfile is not None:
        options.update(certfile=str(certfile), keyfile=str(keyfile or certfile))
    PortalServer(settings, options).run()
