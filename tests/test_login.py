"""Signing in and out: sessions on the server, Argon2id hashes, cookies, headers, rate limits."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from argon2 import extract_parameters
from conftest import (
    CHEAP_ARGON2,
    activation_link_in,
    base_sections,
    csrf_from,
    tasks_for,
    write_ini,
)
from portal_helpers import OPEN_REDIRECT_BYPASSES, assert_stays_on_the_portal

from shared.accounts.logins import set_login_state
from shared.accounts.usernames import username_key
from shared.config import load_settings
from shared.db import database
from shared.models import Activation, PortalLogin, PortalSession, RateLimitCounter

BASE_URL = "http://portal.test"
GOOD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a second long passphrase"
COOKIE = "ptportal_session"
EXPENSIVE_ARGON2 = {
    "security": {"argon2_time_cost": "10", "argon2_memory_kib": "65536", "argon2_parallelism": "1"}
}
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture
def ini_overrides(request) -> dict[str, dict[str, object]]:
    """client.ini changes for one test: ``parametrize("ini_overrides", [...], indirect=True)``."""
    return getattr(request, "param", {})


@pytest.fixture
def username(client, api, mailserver) -> str:
    """A customer whose portal login has ``GOOD_PASSWORD``; signed out again."""
    customer = {"customer_no": "K1", "name": "Kunde", "email": "k1@example.com"}
    api.post("/customers", customer | {"portal_enabled": True})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1"})
    assert set_password(client, activation_link_in(mailserver), GOOD_PASSWORD).status_code == 302
    return "k1"


def set_password(client, link: str, password: str):
    path = link.removeprefix(BASE_URL)
    token = csrf_from(client.get(path).text)
    form = {"csrf_token": token, "password": password, "password_confirm": password}
    return client.post(path, data=form)


def sign_in(client, username: str, password: str, query: str = "", **kwargs):
    token = csrf_from(client.get("/login").text)
    form = {"csrf_token": token, "username": username, "password": password}
    return client.post(f"/login{query}", data=form, **kwargs)


def sign_out(client):
    token = csrf_from(client.get("/orders").text)
    return client.post("/logout", data={"csrf_token": token})


def cookie_value(client) -> str:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else ""


def client_with_cookie(app, value: str):
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def is_signed_in(client) -> bool:
    response = client.get("/orders")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def login_row(username: str = "k1") -> PortalLogin:
    return PortalLogin.get(PortalLogin.username == username)


def error_of(html: str) -> str:
    match = re.search(r'id="login-error">([^<]*)<', html)
    assert match, "no error on the page"
    return match.group(1)


# Signing in


def test_sign_in_redirects_and_marks_the_activation_once(client, username):
    activation = Activation.get(Activation.login == login_row())
    assert (activation.checked, activation.updated) == (0, None)

    response = sign_in(client, username, GOOD_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert is_signed_in(client)
    first = Activation.get(Activation.login == login_row())
    assert first.checked == 1
    assert first.updated is not None

    sign_out(client)
    assert sign_in(client, username, GOOD_PASSWORD).status_code == 302
    assert Activation.get(Activation.login == login_row()).updated == first.updated


def test_wrong_password_and_unknown_username_look_the_same(client, username):
    wrong = sign_in(client, username, "not the password at all")
    unknown = sign_in(client, "nobody", "not the password at all")

    assert wrong.status_code == unknown.status_code == 401
    assert error_of(wrong.text) == error_of(unknown.text)
    assert not is_signed_in(client)
    activation = Activation.get(Activation.login == login_row())
    assert activation.checked == 0


def test_username_is_matched_without_surrounding_spaces(client, username):
    assert sign_in(client, f"  {username} ", GOOD_PASSWORD).status_code == 302


@pytest.mark.parametrize("typed", ["K1", "k1", " K1 "])
def test_username_case_does_not_matter(client, username, typed):
    assert sign_in(client, typed, GOOD_PASSWORD).status_code == 302


# Look-alikes of "k1": compatibility characters are refused, never folded into letters.
LOOK_ALIKES = [
    "\u212a1",  # KELVIN SIGN, which str.lower() turns into "k"
    "\uff4b\uff11",  # full-width k1
    "\uff2b1",  # full-width K
    "k\u00b9",  # superscript one
    "k\u2081",  # subscript one
    "k\u200b1",  # zero-width space
    "k\u00ad1",  # soft hyphen
    "\u24da1",  # circled k
    "\U0001d4801",  # mathematical bold capital K
    "\u043a1",  # Cyrillic k: another letter, not a form of k
]


@pytest.mark.parametrize("typed", LOOK_ALIKES)
def test_look_alikes_of_a_username_do_not_sign_in(client, username, typed):
    response = sign_in(client, typed, GOOD_PASSWORD)

    assert response.status_code == 401
    assert error_of(response.text) == "Username or password is not correct."
    assert not is_signed_in(client)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("K10001", "k10001"),
        ("  Anna.Muster ", "anna.muster"),
        ("Stra\u00dfe", "strasse"),
        ("J\u00fcrgen", "j\u00fcrgen"),
        ("\u212a10001", None),
        ("\uff2b10001", None),
        ("\ufb01le", None),  # the ligature fi
        ("k\x00", None),
        ("k\ud800", None),
        ("", None),
        ("k" * 201, None),
    ],
)
def test_one_canonical_form_for_usernames(text, key):
    assert username_key(text) == key


def test_names_with_look_alikes_cannot_be_created(app, settings):
    from shared.accounts.customers import upsert_customer
    from shared.accounts.logins import create_login
    from shared.accounts.staff import create_staff
    from shared.errors import Invalid

    customer, _ = upsert_customer("K9", name="Kunde")
    with pytest.raises(Invalid):
        create_login(customer, "\u212a9")
    with pytest.raises(Invalid):
        create_staff(settings, "\uff41nna", "Anna", "", False, GOOD_PASSWORD)
    assert create_login(customer, "Kunde-Neun").username == "kunde-neun"


def test_customer_taken_off_the_portal_is_signed_out_and_cannot_sign_in(client, api, username):
    sign_in(client, username, GOOD_PASSWORD)
    assert is_signed_in(client)

    response = api.post("/customers", {"customer_no": "K1", "portal_enabled": False})
    assert response.status_code == 200

    assert not is_signed_in(client)
    refused = sign_in(client, username, GOOD_PASSWORD)
    assert refused.status_code == 401
    assert "deactivated" in error_of(refused.text)


def test_inactive_login_cannot_sign_in_and_its_sessions_end(client, app, settings, username):
    sign_in(client, username, GOOD_PASSWORD)
    assert is_signed_in(client)

    set_login_state(settings, login_row(), PortalLogin.STATE_INACTIVE)

    assert not is_signed_in(client)
    assert PortalSession.select().count() == 0
    other = app.test_client()
    response = sign_in(other, username, GOOD_PASSWORD)
    assert response.status_code == 401
    assert "deactivated" in error_of(response.text)
    assert not is_signed_in(other)


def test_stored_hash_is_argon2id_with_the_configured_parameters(username):
    stored = login_row().password_hash

    assert stored.startswith("$argon2id$")
    parameters = extract_parameters(stored)
    assert parameters.time_cost == int(CHEAP_ARGON2["argon2_time_cost"])
    assert parameters.memory_cost == int(CHEAP_ARGON2["argon2_memory_kib"])
    assert parameters.parallelism == int(CHEAP_ARGON2["argon2_parallelism"])
    assert GOOD_PASSWORD not in stored


def test_hash_is_upgraded_at_sign_in_when_the_parameters_change(
    settings, username, tmp_path, mailserver
):
    from portal import create_app

    old_hash = login_row().password_hash
    stronger = {"argon2_time_cost": "2", "argon2_memory_kib": "128", "argon2_parallelism": "1"}
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    sections = base_sections(
        mailserver.port, database={"url": settings.database.url}, security=stronger
    )
    second = load_settings(write_ini(second_dir, sections))
    assert second.database.url == settings.database.url
    database.close()
    upgraded_app = create_app(second, tasks=tasks_for(second))

    response = sign_in(upgraded_app.test_client(), username, GOOD_PASSWORD)

    assert response.status_code == 302
    new_hash = login_row().password_hash
    assert new_hash != old_hash
    parameters = extract_parameters(new_hash)
    assert (parameters.time_cost, parameters.memory_cost) == (2, 128)
    assert sign_in(upgraded_app.test_client(), username, GOOD_PASSWORD).status_code == 302
    assert login_row().password_hash == new_hash


def test_password_over_1_kib_is_refused_at_sign_in(client, username):
    response = sign_in(client, username, "x" * 1025)

    assert response.status_code == 401
    assert not is_signed_in(client)


@pytest.mark.parametrize("ini_overrides", [EXPENSIVE_ARGON2], indirect=True)
def test_password_over_1_kib_is_not_hashed_at_sign_in(app, client):
    started = time.perf_counter()
    assert sign_in(client, "nobody", "a normal wrong password").status_code == 401
    one_check = time.perf_counter() - started

    started = time.perf_counter()
    assert sign_in(client, "nobody", "x" * 1025).status_code == 401
    elapsed = time.perf_counter() - started

    assert elapsed < one_check / 2, (elapsed, one_check)


# Signing out and server-side sessions


def test_logout_needs_post_with_csrf(client, username):
    sign_in(client, username, GOOD_PASSWORD)

    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert is_signed_in(client)
    response = sign_out(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert not is_signed_in(client)


def test_copied_cookie_stops_working_after_logout(client, app, username):
    sign_in(client, username, GOOD_PASSWORD)
    copied = cookie_value(client)
    assert is_signed_in(client_with_cookie(app, copied))

    sign_out(client)

    response = client_with_cookie(app, copied).get("/orders")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert PortalSession.select().count() == 0


def test_new_password_by_link_ends_the_other_sessions(client, app, username, mailserver):
    sign_in(client, username, GOOD_PASSWORD)
    assert is_signed_in(client)
    other = app.test_client()
    token = csrf_from(other.get("/activate").text)
    other.post("/activate", data={"csrf_token": token, "username": username})

    assert set_password(other, activation_link_in(mailserver), NEW_PASSWORD).status_code == 302

    assert not is_signed_in(client)
    assert sign_in(other, username, GOOD_PASSWORD).status_code == 401
    assert sign_in(other, username, NEW_PASSWORD).status_code == 302


def test_session_is_rotated_at_sign_in(client, app, username):
    old_csrf = csrf_from(client.get("/login").text)
    before = cookie_value(client)
    assert before

    sign_in(client, username, GOOD_PASSWORD)

    after = cookie_value(client)
    assert after != before
    assert not is_signed_in(client_with_cookie(app, before))
    # Nothing from the anonymous session survives, not even its CSRF secret.
    assert client.post("/logout", data={"csrf_token": old_csrf}).status_code == 400
    assert is_signed_in(client)
    sign_out(client)
    sign_in(client, username, GOOD_PASSWORD)
    assert cookie_value(client) != after
    assert PortalSession.select().count() == 1


def test_sign_in_counts_are_shared_by_every_process_on_the_database(settings, client, username):
    from portal import create_app

    limit = settings.portal.login_attempts_per_minute
    for _ in range(limit):
        sign_in(client, username, "wrong password here")

    # Another worker, another host or a restarted portal: the same count.
    other = create_app(settings, tasks=tasks_for(settings)).test_client()
    token = csrf_from(other.get("/login").text)
    form = {"csrf_token": token, "username": username, "password": GOOD_PASSWORD}
    response = other.post("/login", data=form, environ_base={"REMOTE_ADDR": "10.9.9.9"})

    assert response.status_code == 429
    assert RateLimitCounter.select().count() >= 2, "per address and per username"


@pytest.mark.parametrize(
    "ini_overrides", [{"portal": {"rate_limit_storage_url": "memory://"}}], indirect=True
)
def test_memory_storage_counts_in_this_process_only(settings, client, username):
    from portal import create_app

    for _ in range(settings.portal.login_attempts_per_minute):
        sign_in(client, username, "wrong password here")
    assert sign_in(client, username, GOOD_PASSWORD).status_code == 429

    fresh = create_app(settings, tasks=tasks_for(settings))

    assert sign_in(fresh.test_client(), username, GOOD_PASSWORD).status_code == 302
    assert RateLimitCounter.select().count() == 0


# Cookies and headers


def set_cookie_headers(response) -> list[str]:
    return [value for value in response.headers.getlist("Set-Cookie") if value.startswith(COOKIE)]


def test_session_cookie_is_httponly_and_lax_but_not_secure_over_http(client, username):
    response = sign_in(client, username, GOOD_PASSWORD)

    (header,) = set_cookie_headers(response)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


@pytest.mark.parametrize(
    "ini_overrides", [{"portal": {"base_url": "https://portal.test"}}], indirect=True
)
def test_session_cookie_is_secure_when_the_base_url_is_https(client):
    response = client.get("/login", base_url="https://portal.test")

    (header,) = set_cookie_headers(response)
    assert "Secure" in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def assert_security_headers(response) -> None:
    assert response.mimetype == "text/html"
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


@pytest.mark.parametrize(
    "path",
    ["/login", "/activate", "/activate/no-such-token", "/no-such-page", "/", "/?lang=en"],
)
def test_html_responses_carry_the_security_headers(client, username, path):
    for signed_in in (False, True):
        if signed_in:
            sign_in(client, username, GOOD_PASSWORD)
        response = client.get(path)
        if response.status_code == 302:
            continue
        assert_security_headers(response)


def test_error_pages_carry_the_security_headers(client, username):
    assert_security_headers(client.post("/login", data={}))
    failed = sign_in(client, username, "wrong password here")
    assert failed.status_code == 401
    assert_security_headers(failed)


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("template", template_files(), ids=lambda path: path.name)
def test_templates_have_no_inline_scripts_or_handlers(template):
    html = template.read_text("utf-8")

    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL | re.I):
        attributes, body = match.groups()
        assert "src=" in attributes, f"inline script in {template.name}"
        assert not body.strip(), f"script body in {template.name}"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), f"event handler in {template.name}"
    assert not re.search(r"\shx-on", html, re.I), f"hx-on handler in {template.name}"
    assert "javascript:" not in html.lower()
    assert not re.search(r"\sstyle\s*=", html, re.I), f"inline style in {template.name}"


@pytest.mark.parametrize("template", template_files(), ids=lambda path: path.name)
def test_every_post_form_has_a_csrf_field(template):
    html = template.read_text("utf-8")

    for form in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.DOTALL | re.I):
        attributes, body = form.groups()
        if re.search(r'method="post"', attributes, re.I):
            assert 'name="csrf_token"' in body, f"form without CSRF field in {template.name}"


def test_htmx_requests_send_the_csrf_header():
    base = (TEMPLATES / "base.html").read_text("utf-8")

    assert """hx-headers='{"X-CSRFToken": "{{ csrf_token() }}"}'""" in base


def test_login_without_csrf_token_is_refused(client, username):
    client.get("/login")

    response = client.post("/login", data={"username": username, "password": GOOD_PASSWORD})

    assert response.status_code == 400
    assert not is_signed_in(client)


# Rate limits and redirects

THREE_PER_MINUTE = {"portal": {"login_attempts_per_minute": 3}}


@pytest.mark.parametrize("ini_overrides", [THREE_PER_MINUTE], indirect=True)
def test_sign_in_is_rate_limited_per_address(client, username):
    for number in range(3):
        assert sign_in(client, f"guess-{number}", "wrong password here").status_code == 401

    response = sign_in(client, username, GOOD_PASSWORD)

    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert_security_headers(response)
    assert not is_signed_in(client)


@pytest.mark.parametrize("ini_overrides", [THREE_PER_MINUTE], indirect=True)
def test_sign_in_is_rate_limited_per_username(client, username):
    for number in range(3):
        address = {"REMOTE_ADDR": f"10.0.0.{number}"}
        response = sign_in(client, username, "wrong password here", environ_base=address)
        assert response.status_code == 401

    address = {"REMOTE_ADDR": "10.0.0.99"}
    assert sign_in(client, username.upper(), GOOD_PASSWORD, environ_base=address).status_code == 429
    other = sign_in(client, "nobody", "wrong password", environ_base={"REMOTE_ADDR": "10.0.0.98"})
    assert other.status_code == 401


@pytest.mark.parametrize("target", OPEN_REDIRECT_BYPASSES)
def test_next_never_leaves_the_portal(client, username, target):
    query = f"?next={quote(target, safe='', errors='surrogatepass')}"

    response = sign_in(client, username, GOOD_PASSWORD, query=query)

    assert_stays_on_the_portal(response)


@pytest.mark.parametrize(
    "target", ["/orders", "/orders/A1", "/orders?q=Flyer", "/?lang=en", "/orders/%C3%841"]
)
def test_next_goes_to_a_page_of_the_portal(client, username, target):
    response = sign_in(client, username, GOOD_PASSWORD, query=f"?next={quote(target, safe='')}")

    assert response.status_code == 302
    assert response.headers["Location"] == target


@pytest.mark.parametrize(
    "ini_overrides",
    [{"portal": {"login_attempts_per_minute": 2, "proxy_count": 1}}],
    indirect=True,
)
def test_behind_a_proxy_limits_count_per_forwarded_client(client, username):
    def attempt(address: str):
        environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": address}
        token = csrf_from(client.get("/login", environ_base=environ).text)
        form = {"csrf_token": token, "username": f"nobody-{address}", "password": "x"}
        return client.post("/login", data=form, environ_base=environ).status_code

    assert [attempt("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.9") == 401, "another client behind the same proxy is not blocked"


def test_a_poll_from_another_tab_cannot_put_an_old_session_cookie_back(client, username):
    sign_in(client, username, GOOD_PASSWORD)
    client.get("/orders")  # the CSRF token is in the session from here on
    polled = client.get("/orders", headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert "Set-Cookie" not in polled.headers, "only a changed session sends a cookie"


# One browser, customer and staff one after the other

STAFF_PASSWORD = "Kaffee-Druckmaschine-Montag-42"


def staff_sign_in(client, password: str = STAFF_PASSWORD):
    page = client.get("/staff/login")
    assert page.status_code == 200
    form = {"csrf_token": csrf_from(page.text), "username": "anna", "password": password}
    return client.post("/staff/login", data=form)


def submit_buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit"[^>]*>([^<]*)<', html)


@pytest.fixture
def staff_user(settings):
    from shared.accounts.staff import create_staff

    return create_staff(settings, "anna", "Anna", "anna@testdruck.example", False, STAFF_PASSWORD)


def test_staff_sign_in_replaces_a_customer_session_in_one_step(client, username, staff_user):
    sign_in(client, username, GOOD_PASSWORD)
    customer_cookie = cookie_value(client)
    page = client.get("/staff/login").text
    assert submit_buttons(page) == ["Sign in"], "no sign-out button to press by mistake"
    assert "You are signed in as k1." in page

    response = staff_sign_in(client)

    assert response.status_code == 302
    assert client.get("/staff/").status_code == 200
    assert client.get("/orders").status_code == 404, "no longer the customer"
    assert not is_signed_in(client_with_cookie(client.application, customer_cookie))
    assert PortalSession.select().count() == 1


def test_customer_sign_in_replaces_a_staff_session_in_one_step(client, username, staff_user):
    assert staff_sign_in(client).status_code == 302
    staff_cookie = cookie_value(client)
    page = client.get("/login")
    assert page.status_code == 200, "the form, not a redirect to the staff pages"
    assert submit_buttons(page.text) == ["Sign in"]

    response = sign_in(client, username, GOOD_PASSWORD)

    assert response.status_code == 302
    assert is_signed_in(client)
    assert client.get("/staff/").headers["Location"].startswith("/staff/login")
    assert client_with_cookie(client.application, staff_cookie).get("/staff/").status_code == 302
    assert PortalSession.select().count() == 1


def test_a_failed_sign_in_keeps_the_other_session(client, username, staff_user):
    sign_in(client, username, GOOD_PASSWORD)

    assert staff_sign_in(client, "wrong password").status_code == 401

    assert is_signed_in(client)
