"""Absolute links for mails (``shared.links.PortalLinks``), built from the portal's own routes.

Mails are composed in the portal, the worker and the ``ptportal`` command, mostly outside
any request: the links come from the URL map bound to ``[portal] base_url``, never from a
request's Host header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from werkzeug.routing import Map


class PortalLinks:
    """``shared.links.PortalLinks`` for the routes in ``url_map`` under ``base_url``."""

    def __init__(self, url_map: Map, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._adapter = url_map.bind(
            parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme
        )

    def _build(self, endpoint: str, **values: str) -> str:
        language = values.pop("language", "")
        if language:
            values["lang"] = language
        return self._adapter.build(endpoint, values, force_external=True)

    def order(self, project_no: str, *, for_customer: bool = True) -> str:
        endpoint = "orders.show" if for_customer else "staff.show_order"
        return self._build(endpoint, project_no=project_no)

    def activation(self, token: str, language: str = "") -> str:
        return self._build("auth.activation_form", token=token, language=language)

    def new_activation_link(self, language: str = "") -> str:
        return self._build("auth.request_link", language=language)

    def staff_activation(self, token: str) -> str:
        return self._build("staff_account.activation_form", token=token)

    def proof(self, project_no: str, version: int, language: str = "") -> str:
        return self._build(
            "proofs.show", project_no=project_no, version=str(version), language=language
        )


def portal_links(base_url: str) -> PortalLinks:
    """The links of a portal at ``base_url``, for processes that serve no pages (worker, CLI)."""
    from portal.app import register_blueprints

    app = Flask(__name__)
    register_blueprints(app)
    return PortalLinks(app.url_map, base_url)
