"""Run the portal under gunicorn from the ``ptportal`` command."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from shared.config import Settings


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


def run_gunicorn(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    """Serve until stopped."""
    PortalServer(
        settings,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 120,
            "graceful_timeout": 30,
            "accesslog": "-",
            "control_socket_disable": True,
        },
    ).run()
