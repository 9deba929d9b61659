"""Every route of the portal with its arguments filled in, for tests that walk them all."""

from __future__ import annotations

from collections.abc import Callable

# A value for every route argument (the customer K1 with the order A1 exists in the tests
# that walk; ids that do not exist answer like any missing one).
ROUTE_VALUES = {
    "customer_no": "K1",
    "project_no": "A1",
    "staff_id": 1,
    "token_id": 1,
    "login_id": 1,
    "contact_id": 1,
    "file_id": 1,
    "bounce_id": 1,
    "mail_id": 1,
    "template_id": 1,
    "signature_id": 1,
    "kind": "upload_received",
    "section": "waiting",
    "token": "not-a-real-token",
    "page": 1,
    "version": 1,
    "image_id": 1,
    "name": "orders",
}


def route_path(rule) -> str:
    """The path of ``rule`` with ``ROUTE_VALUES`` for its arguments."""
    return rule.build({name: ROUTE_VALUES[name] for name in rule.arguments})[1]


def routes(app, endpoints: Callable[[str], bool]) -> list[tuple[str, str, str]]:
    """(method, path, endpoint) for every route of ``endpoints`` and each of its methods."""
    found = []
    for rule in app.url_map.iter_rules():
        if not endpoints(rule.endpoint):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, route_path(rule), rule.endpoint))
    return found
