"""Absolute links into the portal, for mails: the portal builds them from its own routes.

shared/ never spells a route path; whoever composes a mail receives a ``PortalLinks``
(``portal.links.PortalLinks`` in every process that sends mail).
"""

from __future__ import annotations

from typing import Protocol


class PortalLinks(Protocol):
    """The pages a mail may link to, as absolute URLs under the configured base URL."""

    def order(self, project_no: str, *, for_customer: bool = True) -> str:
        """The customer's order page (upload), or the staff order page."""
        ...

    def activation(self, token: str, language: str = "") -> str:
        """The page where the customer chooses a password with ``token``."""
        ...

    def new_activation_link(self, language: str = "") -> str:
        """The page where a customer asks for a new activation link."""
        ...

    def staff_activation(self, token: str) -> str:
        """The page where a staff user chooses a password with ``token``."""
        ...

    def proof(self, project_no: str, version: int, language: str = "") -> str:
        """The customer's page where they approve or reject proof ``version`` of an order."""
        ...
