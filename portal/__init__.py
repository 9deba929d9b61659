"""The customer portal: ``create_app(settings)`` builds the Flask application."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shared.config import Settings
    from shared.worker import BackgroundTasks


def create_app(settings: Settings | None = None, *, tasks: BackgroundTasks | None = None) -> Flask:
    """Build the portal for ``settings`` (default: the client.ini that ``config_path`` names)."""
    # Imported here so the `ptportal` command, which lives in this package, starts
    # without loading Flask and its extensions.
    from portal.app import build_app

    return build_app(settings, tasks=tasks)
