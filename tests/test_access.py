"""Who reaches which staff route, walked over every route the app has: customers and people
not signed in reach no staff page; staff who are no admin reach no admin page."""

from __future__ import annotations

import pytest
from portal_helpers import signed_in_customer
from route_helpers import routes
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    admin_fixture,
    clerk_fixture,
)

from shared.models import AuditEntry, StaffUser, SystemDefault

# Admin pages: staff users, API tokens, system defaults (every route of these blueprints).
ADMIN_BLUEPRINTS = ("staff_users", "tokens", "defaults")
# Staff routes anybody may open: the sign-in, its second step, and the link that sets a
# password (it needs the token from the mail).
PUBLIC = {
    "staff.login",
    "staff_account.second_factor",
    "staff_account.check_second_factor",
    "staff_account.activation_form",
    "staff_account.activate",
}


def staff_routes(app) -> list[tuple[str, str, str]]:
    """Every route under /staff, whatever blueprint it belongs to."""
    staff = {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff")}
    return routes(app, lambda endpoint: endpoint in staff)


def call(session_client, csrf_token: str, method: str, path: str):
    data = {"csrf_token": csrf_token} if method != "GET" else None
    headers = {"X-CSRFToken": csrf_token} if method != "GET" else {}
    return session_client.open(path, method=method, data=data, headers=headers)


def test_every_admin_route_refuses_staff_who_are_no_admin(app, admin, clerk):
    admin_routes = routes(app, lambda endpoint: endpoint.split(".")[0] in ADMIN_BLUEPRINTS)
    assert len(admin_routes) >= 12, admin_routes
    before = SystemDefault.portal().staff_two_factor_required
    for method, path, endpoint in admin_routes:
        response = call(clerk.client, clerk.csrf_token, method, path)
        assert response.status_code == 403, (method, path, endpoint, response.status_code)
    assert SystemDefault.portal().staff_two_factor_required == before
    assert StaffUser.select().count() == 2
    # The nav shows them to admins only.
    assert "/staff/users/" not in clerk.get("/staff/").text
    assert "/staff/users/" in admin.get("/staff/").text


def test_admins_reach_the_admin_pages(app, admin):
    for path in ("/staff/users/", "/staff/tokens/", "/staff/defaults/", "/staff/users/1"):
        assert admin.get(path).status_code == 200, path


def test_no_staff_route_answers_a_signed_in_customer(app, client, api, mailserver):
    customer = signed_in_customer(client, api, mailserver, "K1", "A1")
    routes = staff_routes(app)
    assert len(routes) >= 60, len(routes)
    entries = AuditEntry.select().count()
    for method, path, endpoint in routes:
        response = call(client, customer.csrf_token, method, path)
        if endpoint in PUBLIC:
            assert response.status_code in (200, 302, 401, 410), (method, path)
            continue
        assert response.status_code == 302, (method, path, endpoint, response.status_code)
        assert response.headers["Location"].startswith("/staff/login"), (method, path)
    # Nothing was changed on the way (only the customer's own sign-in is in the log).
    changes = AuditEntry.select().where(~AuditEntry.action.startswith("sign_in."))
    assert changes.count() <= entries
    assert client.get("/orders").status_code == 200  # still the customer's session


def test_no_staff_route_answers_anybody_not_signed_in(app, client):
    for method, path, endpoint in staff_routes(app):
        response = client.open(path, method=method)
        if endpoint in PUBLIC:
            continue
        assert response.status_code in (302, 400), (method, path, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/staff/login"), path


@pytest.mark.parametrize("path", ["/orders", "/orders/A1"])
def test_staff_are_not_customers(app, clerk, path):
    assert clerk.get(path).status_code == 404
