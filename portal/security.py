"""What every request and response passes: the origin check, no NUL characters in query or
form values, and the response headers (CSP without inline scripts, no referrer)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, current_app, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, Forbidden

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Explained:
    """An HTTP error whose description is written for the user: the error page shows it."""


class ForeignOrigin(Explained, Forbidden):
    """A state-changing request from another site."""


class NulCharacter(Explained, BadRequest):
    """A query or form value with a NUL character."""


def add_security_headers(response: Response) -> Response:
    """Set the headers on ``response`` (an ``after_request`` hook)."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the
    # portal's own form posts and uploads, and the origin check could not tell them from a
    # sandboxed foreign frame. Other sites still get no referrer from the portal.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.vary.add("HX-Request")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` as browsers write an ``Origin``; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def refuse_foreign_origin() -> None:
    """Refuse a state-changing request sent from another site (a ``before_request`` hook).

    Defence in depth next to the CSRF token (ASVS V3.5): a POST, PATCH, DELETE … whose
    ``Origin`` — or, without one, whose ``Referer`` — is not the origin of ``[portal]
    base_url`` is answered 403, whatever token it carries. ``Origin: null`` (sandboxed
    frames, data: URLs, pages with ``Referrer-Policy: no-referrer``) is foreign too; the
    portal's own pages say ``same-origin``, so browsers send their real origin. A request
    with neither header goes on to the CSRF check as before (tools and old browsers send
    none). The workflow API (``/api/``) is left alone:
    it authenticates with a bearer token that a browser never attaches by itself, not with
    cookies, so another site cannot make a browser send an authenticated request there.
    """
    if request.method in SAFE_METHODS or request.path.startswith("/api/"):
        return
    sent = request.headers.get("Origin")
    if sent is None:
        sent = request.headers.get("Referer")
        if sent is None:
            return
    own = origin_of(current_app.config["PTPORTAL_SETTINGS"].portal.base_url)
    if origin_of(sent) != own:
        raise ForeignOrigin(_("This request came from another site and was refused."))


def refuse_nul_characters() -> None:
    """Answer 400 to a query or form value with a NUL character (a ``before_request`` hook).

    No field of the portal can hold one, and PostgreSQL refuses it in any query: without
    this check a search for ``%00`` would be a 500 there. Path segments are checked by their
    converters (``portal.converters``), JSON bodies by ``portal.api_schema.parse_json``.
    """
    values = [*request.args.values()]
    if request.method not in SAFE_METHODS:
        values += request.form.values()
    if any("\x00" in value for value in values):
        raise NulCharacter(_("The request contains a NUL character."))
