"""Admins manage staff users: create (a link by mail, never a password), edit, disable
(sessions end at once); the staff user sets a password through the link."""

from __future__ import annotations

import re
from datetime import timedelta

from conftest import csrf_from
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    STAFF_PASSWORD,
    admin_fixture,
    clerk_fixture,
    field_error,
    password_step,
    typed_value,
)

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import AuditEntry, PortalSession, StaffToken, StaffUser

BASE_URL = "http://portal.test"
NEW_PASSWORD = "Druckfarbe trocknet langsam 77"
_LINK = re.compile(r"http://portal\.test/staff/activate/[\w-]+")


def staff_link(mailserver) -> str:
    text = mailserver.received[-1].message.get_body(preferencelist=("plain",)).get_content()
    match = _LINK.search(text)
    assert match, text
    return match.group(0).removeprefix(BASE_URL)


def invite(admin, **fields):
    form = {"username": "berta", "name": "Berta Beispiel", "email": "berta@druck.example"}
    return admin.post("/staff/users/", htmx=True, **(form | {"role": "staff"} | fields))


def choose_password(client, path: str, password: str = NEW_PASSWORD):
    token = csrf_from(client.get(path).text)
    form = {"password": password, "password_confirm": password, "csrf_token": token}
    return client.post(path, data=form)


def test_admin_creates_a_staff_user_who_sets_a_password_by_the_link(app, admin, mailserver):
    response = invite(admin)

    assert response.status_code == 204
    berta = StaffUser.get(StaffUser.username == "berta")
    assert response.headers["HX-Redirect"] == f"/staff/users/{berta.id}"
    assert berta.password_hash is None and berta.role == "staff"
    message = mailserver.received[-1]
    assert message.rcpt_tos == ["berta@druck.example"]
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    assert "berta" in text and "Passwort" in text
    assert NEW_PASSWORD not in text

    browser = app.test_client()
    path = staff_link(mailserver)
    assert "staff username is berta" in browser.get(path).text
    saved = choose_password(browser, path)
    assert saved.status_code == 302 and saved.headers["Location"].startswith("/staff/login")
    assert password_step(browser, "berta", NEW_PASSWORD).status_code == 302
    assert browser.get("/staff/").status_code == 200
    # The link works once.
    assert browser.get(path).status_code == 410
    actions = [e.action for e in AuditEntry.select().order_by(AuditEntry.id)]
    expected = ("staff.create", "staff.link_sent", "staff.password_set", "sign_in.staff_success")
    assert set(expected) <= set(actions)


def test_a_weak_password_is_refused_and_the_link_stays_valid(app, admin, mailserver):
    invite(admin)
    browser = app.test_client()
    path = staff_link(mailserver)
    response = choose_password(browser, path, "berta")
    assert response.status_code == 400
    assert 'data-rule="username" class="rule-broken"' in response.text
    assert choose_password(browser, path).status_code == 302


def test_an_expired_link_is_refused(app, admin, mailserver):
    invite(admin)
    with write_transaction():
        StaffToken.update(expires_at=utcnow() - timedelta(minutes=1)).execute()
    response = app.test_client().get(staff_link(mailserver))
    assert response.status_code == 410 and "expired" in response.text


def test_new_staff_form_problems_inline_and_duplicates_refused(app, admin):
    bad = invite(admin, username="", email="keine").text
    assert field_error(bad, "username") == "Please fill this in."
    assert field_error(bad, "email") == "This is not an email address."
    assert typed_value(bad, "name") == "Berta Beispiel"

    taken = invite(admin, username="ADA").text
    assert field_error(taken, "username") == "This username is taken."
    assert StaffUser.select().count() == 1


def test_disabling_a_staff_user_ends_their_sessions_at_once(app, admin, clerk):
    assert clerk.get("/staff/").status_code == 200

    html = admin.post(
        f"/staff/users/{clerk.user.id}",
        htmx=True,
        name="Carl",
        email="carl@testdruck.example",
        role="staff",
    ).text

    assert "carl is disabled and signed out." in html
    assert clerk.get("/staff/").status_code == 302
    assert not PortalSession.select().where(PortalSession.staff == clerk.user).exists()
    assert password_step(app.test_client(), "carl").status_code == 401
    failed = AuditEntry.select().where(AuditEntry.action == "sign_in.staff_failure").get()
    assert failed.detail == "disabled"


def test_the_last_admin_cannot_disable_or_demote_themselves(app, admin):
    html = admin.post(
        f"/staff/users/{admin.user.id}", htmx=True, name="Ada", email="", role="staff", active="1"
    ).text
    assert "last active admin" in field_error(html, "active")
    assert StaffUser.get_by_id(admin.user.id).is_admin


def test_admin_promotes_and_sends_a_new_password_link(app, admin, clerk, mailserver):
    admin.post(
        f"/staff/users/{clerk.user.id}",
        name="Carl C.",
        email="carl@testdruck.example",
        role="admin",
        active="1",
    )
    assert StaffUser.get_by_id(clerk.user.id).role == "admin"
    entry = AuditEntry.get(AuditEntry.action == "staff.update")
    assert "role: staff → admin" in entry.detail and entry.actor_name == "ada"

    admin.post(f"/staff/users/{clerk.user.id}/activation")

    assert mailserver.received[-1].rcpt_tos == ["carl@testdruck.example"]
    assert clerk.get("/staff/users/").status_code == 200  # an admin now


def test_a_link_for_a_user_without_address_is_not_sent(app, admin, mailserver):
    response = invite(admin, username="ohne", email="ohne@druck.example")
    assert response.status_code == 204
    ohne = StaffUser.get(StaffUser.username == "ohne")
    with write_transaction():
        ohne.email = ""
        ohne.save()
    sent = len(mailserver.received)
    page = admin.client.post(
        f"/staff/users/{ohne.id}/activation",
        data={"csrf_token": admin.csrf_token},
        follow_redirects=True,
    ).text
    assert "has no usable address" in page
    assert len(mailserver.received) == sent
