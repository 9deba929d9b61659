"""The activation link: choosing a password, invalid links, asking for a new link."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta

import pytest
from conftest import activation_link_in, csrf_from

from shared.accounts.logins import set_login_state
from shared.clock import utcnow
from shared.db import database
from shared.mail.defaults import ACTIVATION_TEMPLATE
from shared.models import ActivationToken, EmailTemplate, PortalLogin

BASE_URL = "http://portal.test"
GOOD_PASSWORD = "correct horse battery staple"
EXPENSIVE_ARGON2 = {
    "security": {"argon2_time_cost": "10", "argon2_memory_kib": "65536", "argon2_parallelism": "1"}
}


@pytest.fixture
def ini_overrides(request) -> dict[str, dict[str, object]]:
    """client.ini changes for one test: ``parametrize("ini_overrides", [...], indirect=True)``."""
    return getattr(request, "param", {})


def new_customer(api, mailserver, number: int = 1) -> str:
    """A portal-enabled customer with its first order; returns the activation link."""
    customer = {
        "customer_no": f"K{number}",
        "name": "Kunde",
        "email": f"k{number}@example.com",
        "portal_enabled": True,
    }
    assert api.post("/customers", customer).status_code == 201
    order = api.post("/orders", {"project_no": f"A{number}", "customer_no": f"K{number}"})
    assert order.status_code == 201
    return activation_link_in(mailserver)


def path_of(link: str) -> str:
    assert link.startswith(f"{BASE_URL}/activate/"), link
    return link.removeprefix(BASE_URL)


def open_form(client, path: str) -> str:
    """GET the link, expect the password form, return its CSRF token."""
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="password_confirm"' in html
    return csrf_from(html)


def choose_password(client, path: str, password: str, confirmation: str | None = None):
    token = open_form(client, path)
    form = {"csrf_token": token, "password": password}
    form["password_confirm"] = password if confirmation is None else confirmation
    return client.post(path, data=form)


def login(username: str = "k1") -> PortalLogin:
    return PortalLogin.get(PortalLogin.username == username)


def request_link(client, username: str, **kwargs):
    token = csrf_from(client.get("/activate", **kwargs).get_data(as_text=True))
    return client.post("/activate", data={"csrf_token": token, "username": username}, **kwargs)


def without_csrf(html: str) -> str:
    return re.sub(
        r'name="csrf_token" value="[^"]+"', "", re.sub(r'X-CSRFToken": "[^"]+"', "", html)
    )


def assert_invalid_page(response, reason: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 410
    assert "This link is no longer valid" in html
    assert reason in html
    assert 'id="request-link-form"' in html


# The mail and the link


def test_activation_mail_uses_the_template_and_the_configured_base_url(api, mailserver):
    link = new_customer(api, mailserver)

    mail = mailserver.received[-1]
    assert mail.rcpt_tos == ["k1@example.com"]
    template = EmailTemplate.get(
        (EmailTemplate.name == ACTIVATION_TEMPLATE) & (EmailTemplate.language == "de")
    )
    # Like every customer mail about one order, it names the order for replies.
    assert mail.message["Subject"] == f"[Auftrag A1] {template.subject}"
    assert link.startswith(f"{BASE_URL}/activate/")


def test_database_keeps_only_the_sha256_of_a_256_bit_token(api, mailserver):
    token = path_of(new_customer(api, mailserver)).removeprefix("/activate/")

    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
    cursor = database.execute_sql("SELECT * FROM activation_token")
    rows = cursor.fetchall()
    assert len(rows) == 1
    assert not any(token in str(value) for value in rows[0])
    assert ActivationToken.get().token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_foreign_host_header_on_the_api_does_not_change_the_link(client, api_token, mailserver):
    headers = {"Authorization": f"Bearer {api_token}", "Host": "evil.example"}
    customer = {"customer_no": "K1", "name": "Kunde", "email": "k1@example.com"}
    client.post("/api/v1/customers", json=customer | {"portal_enabled": True}, headers=headers)
    response = client.post(
        "/api/v1/orders", json={"project_no": "A1", "customer_no": "K1"}, headers=headers
    )

    assert response.status_code == 201
    assert activation_link_in(mailserver).startswith(f"{BASE_URL}/activate/")


def test_foreign_host_header_on_the_request_form_does_not_change_the_link(client, api, mailserver):
    new_customer(api, mailserver)

    response = request_link(client, "k1", headers={"Host": "evil.example"})

    assert response.status_code == 200
    assert len(mailserver.received) == 2
    text = mailserver.received[-1].message.get_body(preferencelist=("plain",)).get_content()
    assert "evil.example" not in text
    assert activation_link_in(mailserver).startswith(f"{BASE_URL}/activate/")


# Opening and using the link


def test_opening_the_link_shows_the_form_and_does_not_use_it_up(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))

    first = client.get(path)
    second = client.get(path)

    for response in (first, second):
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "k1" in html
        assert 'id="password-rules"' in html
        assert f'hx-post="{path}/check"' in html
    assert ActivationToken.get().used_at is None
    response = choose_password(client, path, GOOD_PASSWORD)
    assert response.status_code == 302


def test_good_password_redirects_to_login_and_uses_the_link_up(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))

    response = choose_password(client, path, GOOD_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?username=k1"
    assert login().password_hash.startswith("$argon2id$")
    assert ActivationToken.get().used_at is not None
    assert_invalid_page(client.get(path), "already been used")
    again = client.post(path, data={"csrf_token": csrf_from(client.get("/login").text)})
    assert_invalid_page(again, "already been used")


def test_expired_link_shows_the_invalid_page(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))
    token = open_form(client, path)
    ActivationToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()

    assert_invalid_page(client.get(path), "expired")
    posted = client.post(
        path,
        data={"csrf_token": token, "password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD},
    )
    assert_invalid_page(posted, "expired")
    assert login().password_hash is None


def test_link_is_valid_for_the_configured_minutes(api, mailserver):
    before = utcnow()
    new_customer(api, mailserver)

    expires = ActivationToken.get().expires_at
    assert before + timedelta(minutes=30) <= expires <= utcnow() + timedelta(minutes=30)


def test_unknown_token_shows_the_invalid_page(client):
    assert_invalid_page(client.get("/activate/" + "x" * 43), "not valid")


def test_link_of_an_inactive_login_shows_the_invalid_page(client, api, settings, mailserver):
    path = path_of(new_customer(api, mailserver))

    set_login_state(settings, login(), PortalLogin.STATE_INACTIVE)

    assert_invalid_page(client.get(path), "expired")


def test_post_without_csrf_token_is_refused_and_keeps_the_link(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))
    client.get(path)

    response = client.post(
        path, data={"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD}
    )

    assert response.status_code == 400
    assert "The form has expired" in response.text
    assert ActivationToken.get().used_at is None
    assert login().password_hash is None
    assert choose_password(client, path, GOOD_PASSWORD).status_code == 302


# Password rules


def rule_states(html: str) -> dict[str, str]:
    """``{rule: "ok" | "broken" | "pending"}`` from the ``#password-rules`` fragment."""
    pairs = re.findall(r'<li data-rule="(\w+)" class="rule-(\w+)"', html)
    return dict(pairs)


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("short", {"length"}),
        ("k1", {"length", "username"}),
        ("password1234", {"common"}),
        ("x" * 1025, {"too_long"}),
        (GOOD_PASSWORD, set()),
    ],
)
def test_check_endpoint_returns_the_rules_fragment(client, api, mailserver, password, broken):
    path = path_of(new_customer(api, mailserver))
    token = open_form(client, path)

    response = client.post(
        f"{path}/check",
        data={"password": password},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<ul id="password-rules"')
    assert "<html" not in html
    assert "HX-Request" in response.headers["Vary"]
    states = rule_states(html)
    assert {rule for rule, state in states.items() if state == "broken"} == broken
    assert ActivationToken.get().used_at is None


def test_check_endpoint_needs_the_csrf_header(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))
    open_form(client, path)

    response = client.post(
        f"{path}/check", data={"password": "short"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 400


def test_common_password_list_contains_the_example():
    from shared.accounts.passwords import common_passwords

    assert "password1234" in common_passwords()


@pytest.mark.parametrize(
    ("password", "rule"),
    [("short", "length"), ("Kunde-Nummer-Eins", "username"), ("password1234", "common")],
)
def test_password_breaking_a_rule_is_refused(client, api, mailserver, password, rule):
    path = path_of(new_customer(api, mailserver))
    # A username long enough that choosing it as password breaks only the username rule.
    PortalLogin.update(username="kunde-nummer-eins").execute()

    response = choose_password(client, path, password)

    assert response.status_code == 400
    assert rule_states(response.text)[rule] == "broken"
    assert PortalLogin.get().password_hash is None
    assert ActivationToken.get().used_at is None


def test_64_character_password_is_accepted(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))

    response = choose_password(client, path, "ab cd " * 10 + "efgh")

    assert response.status_code == 302
    assert login().password_hash is not None


def test_mismatched_confirmation_is_refused_and_keeps_the_link(client, api, mailserver):
    path = path_of(new_customer(api, mailserver))

    response = choose_password(client, path, GOOD_PASSWORD, GOOD_PASSWORD + "!")

    assert response.status_code == 400
    assert "do not match" in response.text
    assert login().password_hash is None
    assert ActivationToken.get().used_at is None


@pytest.mark.parametrize("ini_overrides", [EXPENSIVE_ARGON2], indirect=True)
def test_password_over_1_kib_is_refused_before_hashing(app, client, api, mailserver):
    path = path_of(new_customer(api, mailserver))
    token = open_form(client, path)
    vault = app.extensions["ptportal.vault"]
    started = time.perf_counter()
    vault.hash(GOOD_PASSWORD)
    one_hash = time.perf_counter() - started
    huge = "é" * 513  # 1026 bytes in UTF-8, but only 513 characters

    started = time.perf_counter()
    response = client.post(
        path, data={"csrf_token": token, "password": huge, "password_confirm": huge}
    )
    elapsed = time.perf_counter() - started

    assert response.status_code == 400
    assert "too long" in response.text
    assert elapsed < one_hash / 2, (elapsed, one_hash)
    assert login().password_hash is None
    assert ActivationToken.get().used_at is None


# Asking for a new link


def test_request_link_answers_the_same_for_unknown_usernames(client, api, mailserver):
    new_customer(api, mailserver)
    mails_before = len(mailserver.received)

    known = request_link(client, "k1")
    assert len(mailserver.received) == mails_before + 1
    unknown = request_link(client, "nobody")

    assert len(mailserver.received) == mails_before + 1
    assert known.status_code == unknown.status_code == 200
    assert without_csrf(known.text) == without_csrf(unknown.text)
    assert mailserver.received[-1].rcpt_tos == ["k1@example.com"]


def test_request_link_for_an_inactive_login_sends_nothing(client, api, settings, mailserver):
    new_customer(api, mailserver)
    set_login_state(settings, login(), PortalLogin.STATE_INACTIVE)
    mails_before = len(mailserver.received)

    response = request_link(client, "k1")

    assert response.status_code == 200
    assert len(mailserver.received) == mails_before


@pytest.mark.parametrize(
    "ini_overrides", [{"portal": {"link_requests_per_hour": 3}}], indirect=True
)
def test_request_link_is_rate_limited_per_address(client):
    for _ in range(3):
        assert request_link(client, "nobody").status_code == 200

    response = request_link(client, "nobody-else")

    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "ini_overrides", [{"portal": {"link_requests_per_hour": 3}}], indirect=True
)
def test_request_link_is_rate_limited_per_username(client, api, mailserver):
    new_customer(api, mailserver)
    mails_before = len(mailserver.received)
    for number in range(3):
        address = {"REMOTE_ADDR": f"10.0.0.{number}"}
        assert request_link(client, "k1", environ_base=address).status_code == 200

    response = request_link(client, "K1", environ_base={"REMOTE_ADDR": "10.0.0.99"})

    assert response.status_code == 429
    assert len(mailserver.received) == mails_before + 3
    other = request_link(client, "nobody", environ_base={"REMOTE_ADDR": "10.0.0.98"})
    assert other.status_code == 200


def test_new_link_works_and_older_links_die_with_the_new_password(client, api, mailserver):
    first = path_of(new_customer(api, mailserver))
    request_link(client, "k1")
    renewal = path_of(activation_link_in(mailserver))
    assert renewal != first
    # Asking for a new link leaves the first one usable (it may still be in transit) ...
    open_form(client, first)

    assert choose_password(client, renewal, GOOD_PASSWORD).status_code == 302

    # ... but once a password is set, every older unused link is dead.
    assert_invalid_page(client.get(first), "already been used")
    assert ActivationToken.select().where(ActivationToken.used_at.is_null()).count() == 0


def test_a_new_link_reaches_a_customer_whose_only_address_is_an_order_contact(
    client, api, settings, mailserver
):
    customer = {"customer_no": "K1", "name": "Kunde", "email": "", "portal_enabled": True}
    assert api.post("/customers", customer).status_code == 201
    order = {"project_no": "A1", "customer_no": "K1", "contact_email": "anna@kunde.example"}
    assert api.post("/orders", order).status_code == 201
    assert mailserver.received[-1].rcpt_tos == ["anna@kunde.example"]
    mails_before = len(mailserver.received)

    answer = request_link(client, "k1")

    assert len(mailserver.received) == mails_before + 1
    assert mailserver.received[-1].rcpt_tos == ["anna@kunde.example"]
    new_link = activation_link_in(mailserver)
    assert new_link != activation_link_in(mailserver, index=mails_before - 1)
    assert without_csrf(answer.text) == without_csrf(request_link(client, "nobody").text)


def test_a_new_link_with_nowhere_to_go_tells_staff_and_answers_the_same(
    client, api, settings, mailserver
):
    from mail_helpers import flush, make_staff, to

    from shared.db import write_transaction
    from shared.events import ACTIVATION_UNDELIVERABLE
    from shared.mail.bounces import record_bounce
    from shared.models import Notification

    make_staff("chefin", admin=True, email="chefin@druckerei.example")
    new_customer(api, mailserver)
    with write_transaction():
        record_bounce("k1@example.com", "550 5.1.1 user unknown")
    mails_before = len(mailserver.received)

    answer = request_link(client, "k1")

    assert len(mailserver.received) == mails_before  # nothing to the bounced address
    assert without_csrf(answer.text) == without_csrf(request_link(client, "nobody").text)
    event = Notification.get(Notification.kind == ACTIVATION_UNDELIVERABLE)
    assert event.customer.customer_no == "K1" and event.detail == "k1"
    flush(settings)
    subjects = [item.message["Subject"] for item in to(mailserver, "chefin@druckerei.example")]
    assert "Aktivierungslink für Kunde nicht zustellbar" in subjects
