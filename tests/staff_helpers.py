"""Helpers for tests of the staff pages: signed-in admins and staff on their own clients.

Import ``admin_fixture`` and ``clerk_fixture`` into a test module for the fixtures
``admin`` and ``clerk`` (a staff user who is no admin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from conftest import csrf_from
from flask.testing import FlaskClient

from shared.accounts.staff import create_staff
from shared.models import StaffUser

STAFF_PASSWORD = "Kaffee-Druckmaschine-Montag-42"
HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class StaffSession:
    """A staff user signed in on their own test client."""

    client: FlaskClient
    user: StaffUser
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf_token}

    def post(self, path: str, htmx: bool = False, **form: str):
        """A form post (as htmx sends it with ``htmx``)."""
        headers = HTMX if htmx else {}
        return self.client.post(path, data={"csrf_token": self.csrf_token} | form, headers=headers)

    def get(self, path: str, htmx: bool = False, **query):
        return self.client.get(path, query_string=query, headers=HTMX if htmx else {})


def password_step(client: FlaskClient, username: str, password: str = STAFF_PASSWORD):
    """The first step of the staff sign-in: the password form."""
    token = csrf_from(client.get("/staff/login").text)
    form = {"username": username, "password": password, "csrf_token": token}
    return client.post("/staff/login", data=form)


def signed_in_staff(app, settings, username: str, admin: bool) -> StaffSession:
    """Create a staff user and sign them in on a fresh client."""
    user = create_staff(
        settings, username, username.title(), f"{username}@testdruck.example", admin, STAFF_PASSWORD
    )
    browser = app.test_client()
    response = password_step(browser, username)
    assert response.status_code == 302, response.text
    # Signing in starts a fresh session, and with it a fresh CSRF token.
    return StaffSession(browser, user, csrf_from(browser.get("/staff/").text))


@pytest.fixture(name="admin")
def admin_fixture(app, settings) -> StaffSession:
    """An admin, ``ada``, signed in."""
    return signed_in_staff(app, settings, "ada", admin=True)


@pytest.fixture(name="clerk")
def clerk_fixture(app, settings) -> StaffSession:
    """A staff user who is no admin, ``carl``, signed in."""
    return signed_in_staff(app, settings, "carl", admin=False)


def field_error(html: str, name: str, prefix: str = "") -> str:
    """The message shown next to the field ``name`` (empty if none)."""
    match = re.search(rf'id="{prefix}{name}-error"[^>]*>([^<]*)<', html)
    return match.group(1) if match else ""


def typed_value(html: str, name: str, prefix: str = "") -> str:
    """The value an input shows (what was typed, after a refused post)."""
    match = re.search(rf'<input id="{prefix}{name}" name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {prefix}{name}"
    return match.group(1)
