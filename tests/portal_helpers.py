"""Helpers for tests that act as a signed-in customer in the browser."""

from __future__ import annotations

from dataclasses import dataclass

from conftest import activation_link_in, csrf_from

BASE_URL = "http://portal.test"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class SignedIn:
    """A customer signed in on a test client; ``csrf_token`` goes into ``X-CSRFToken``."""

    customer_no: str
    project_no: str
    username: str
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf_token}


def customer_with_order(api, customer_no: str, project_no: str) -> None:
    """A portal-enabled customer with one order (which mails the activation link)."""
    customer = {"customer_no": customer_no, "name": f"Kunde {customer_no}"}
    email = f"{customer_no.lower()}@example.com"
    response = api.post("/customers", customer | {"email": email, "portal_enabled": True})
    assert response.status_code in (200, 201), response.text
    response = api.post("/orders", {"project_no": project_no, "customer_no": customer_no})
    assert response.status_code == 201, response.text


def signed_in_customer(client, api, mailserver, customer_no: str, project_no: str) -> SignedIn:
    """Create a customer and order via the API, set a password by the link, and sign in."""
    customer_with_order(api, customer_no, project_no)
    path = activation_link_in(mailserver).removeprefix(BASE_URL)
    form = {"password": PASSWORD, "password_confirm": PASSWORD}
    response = client.post(path, data=form | {"csrf_token": csrf_from(client.get(path).text)})
    assert response.status_code == 302, response.text
    username = customer_no.lower()
    form = {"username": username, "password": PASSWORD}
    response = client.post(
        "/login", data=form | {"csrf_token": csrf_from(client.get("/login").text)}
    )
    assert response.status_code == 302, response.text
    # Signing in starts a fresh session, and with it a fresh CSRF token.
    token = csrf_from(client.get("/", follow_redirects=True).text)
    return SignedIn(customer_no, project_no, username, token)


# Known ways around a "starts with /" check for redirect targets (decoded values of ``next``
# or ``back``). Each must end on the start page: never another host, never a 500.
OPEN_REDIRECT_BYPASSES = [
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
    "https://evil.example/",
    "https:evil.example",
    "http:/evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/\uff0fevil.example",
    "\uff0f\uff0fevil.example",
    "/\u2215evil.example",
    "/\u2044evil.example",
    "/\r\nSet-Cookie: stolen=1",
    "/%0D%0ALocation: https://evil.example",
    "/no-such-page",
    "/\ud800",
]


def assert_stays_on_the_portal(response) -> None:
    """A redirect to the start page, or a 400 for input no field may hold (NUL)."""
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        assert response.headers["Location"] == "/"
