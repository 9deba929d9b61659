"""Readable error pages (and JSON under /api) instead of Werkzeug's defaults."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from peewee import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.security import Explained

log = logging.getLogger(__name__)


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Bad request"), _("The request could not be understood.")),
        403: (_("Not allowed"), _("You may not open this page.")),
        404: (_("Not found"), _("This page does not exist or is not yours.")),
        405: (_("Not allowed"), _("This action is not possible here.")),
        413: (_("Too large"), _("The data sent is larger than allowed.")),
        429: (
            _("Too many attempts"),
            _("Too many attempts in a short time. Please wait a moment and try again."),
        ),
        500: (_("Something went wrong"), _("Please try again later.")),
        503: (
            _("Temporarily unavailable"),
            _("The portal cannot reach its database right now. Please try again shortly."),
        ),
    }


def render_error(code: int, detail: str = ""):
    """An error page (or a JSON error for the API) for ``code``."""
    title, message = _messages().get(code, _messages()[500])
    if request.path.startswith("/api/"):
        return jsonify(error=detail or title), code
    return render_template("error.html", code=code, title=title, message=detail or message), code


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return render_error(
            400, _("The form has expired. Please reload the page and submit it again.")
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        shown = request.path.startswith("/api/") or isinstance(exc, Explained)
        return render_error(exc.code, exc.description if shown else "")

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        log.error("database error: %s", exc)
        g.database_failed = True  # the connection may be broken: the next request opens anew
        return render_error(503)

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError):
        log.error("unhandled error on %s: %s", request.path, exc.original_exception)
        return render_error(500)
