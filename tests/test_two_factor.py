"""Two-factor sign-in for staff: TOTP set up on the account page (QR code drawn by the
portal), the code as a second step of the sign-in, recovery codes, required for all."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from conftest import csrf_from
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    admin_fixture,
    clerk_fixture,
    password_step,
)

from shared.accounts import two_factor
from shared.models import AuditEntry, RecoveryCode, StaffUser
from shared.tokens import token_hash


def secret_on(html: str) -> str:
    match = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html)
    assert match, "no secret on the page"
    return match.group(1).replace(" ", "")


def recovery_codes_on(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", html)


def set_up(session) -> tuple[str, list[str]]:
    """Switch TOTP on for a signed-in staff session; returns the secret and recovery codes."""
    page = session.post("/staff/account/two-factor").text
    assert 'src="data:image/svg+xml' in page
    secret = secret_on(page)
    done = session.post("/staff/account/two-factor/confirm", code=pyotp.TOTP(secret).now())
    assert done.status_code == 200
    return secret, recovery_codes_on(done.text)


def code_step(client, code: str):
    token = csrf_from(client.get("/staff/login/code").text)
    return client.post("/staff/login/code", data={"code": code, "csrf_token": token})


def next_step_code(secret: str, steps: int = 1) -> str:
    """A code the authenticator shows ``steps`` steps from now (still accepted: drift)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def test_set_up_shows_a_server_drawn_qr_code_and_needs_a_matching_code(app, clerk):
    page = clerk.post("/staff/account/two-factor").text
    secret = secret_on(page)
    assert re.search(r'<img src="data:image/svg\+xml[^"]+" alt="QR code', page)

    wrong = clerk.post("/staff/account/two-factor/confirm", code="000000")

    assert wrong.status_code == 422 and "This code is not correct." in wrong.text
    assert secret_on(wrong.text) == secret  # the same secret, to try again
    assert not StaffUser.get_by_id(clerk.user.id).has_two_factor

    done = clerk.post("/staff/account/two-factor/confirm", code=pyotp.TOTP(secret).now())
    codes = recovery_codes_on(done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    user = StaffUser.get_by_id(clerk.user.id)
    assert user.has_two_factor and user.totp_secret == secret
    stored = {row.code_hash for row in RecoveryCode.select()}
    assert token_hash(codes[0].replace("-", "")) in stored
    assert not any(code.replace("-", "") in stored for code in codes)


def test_sign_in_asks_for_the_code_after_the_password(app, clerk):
    secret, _codes = set_up(clerk)
    browser = app.test_client()

    first = password_step(browser, "carl")

    assert first.status_code == 302 and first.headers["Location"] == "/staff/login/code"
    assert browser.get("/staff/").status_code == 302  # not signed in yet
    assert code_step(browser, "123456").status_code == 401
    signed_in = code_step(browser, next_step_code(secret))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    assert browser.get("/staff/").status_code == 200
    entry = (
        AuditEntry.select()
        .where(AuditEntry.action == "sign_in.staff_success")
        .order_by(AuditEntry.id.desc())[0]
    )
    assert entry.detail == "password and TOTP code" and entry.actor_name == "carl"
    assert AuditEntry.select().where(AuditEntry.action == "sign_in.second_factor_failure").count()


def test_the_next_page_survives_the_second_step(app, clerk):
    secret, _codes = set_up(clerk)
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    browser.post(
        "/staff/login?next=/staff/customers/",
        data={
            "username": "carl",
            "password": "Kaffee-Druckmaschine-Montag-42",
            "csrf_token": token,
        },
    )
    response = code_step(browser, next_step_code(secret))
    assert response.headers["Location"] == "/staff/customers/"


def test_a_code_works_once(app, clerk):
    secret, _codes = set_up(clerk)
    code = next_step_code(secret)
    first = app.test_client()
    password_step(first, "carl")
    assert code_step(first, code).status_code == 302

    second = app.test_client()
    password_step(second, "carl")
    assert code_step(second, code).status_code == 401


def test_a_recovery_code_works_once_instead_of_the_app(app, clerk):
    _secret, codes = set_up(clerk)
    browser = app.test_client()
    password_step(browser, "carl")

    assert code_step(browser, codes[3].upper()).status_code == 302

    again = app.test_client()
    password_step(again, "carl")
    assert code_step(again, codes[3]).status_code == 401
    assert two_factor.unused_recovery_codes(clerk.user) == 9
    used = AuditEntry.get(AuditEntry.action == "sign_in.recovery_code_used")
    assert used.detail == "9 left"


def test_five_wrong_codes_and_the_password_is_asked_again(app, clerk):
    set_up(clerk)
    browser = app.test_client()
    password_step(browser, "carl")
    for _ in range(4):
        assert code_step(browser, "000000").status_code == 401
    token = csrf_from(browser.get("/staff/login/code").text)
    fifth = browser.post("/staff/login/code", data={"code": "000000", "csrf_token": token})
    assert fifth.status_code == 302 and fifth.headers["Location"] == "/staff/login"
    assert browser.get("/staff/login/code").headers["Location"] == "/staff/login"


def test_the_second_step_expires(app, clerk):
    secret, _codes = set_up(clerk)
    browser = app.test_client()
    password_step(browser, "carl")
    with browser.session_transaction() as session:
        session["staff_pending"]["at"] -= 301
        session.modified = True
    token = csrf_from(browser.get("/staff/login").text)
    late = browser.post(
        "/staff/login/code", data={"code": next_step_code(secret), "csrf_token": token}
    )
    assert late.headers["Location"] == "/staff/login"
    assert browser.get("/staff/").status_code == 302


def test_without_the_password_step_there_is_no_second_step(app, client):
    assert client.get("/staff/login/code").headers["Location"] == "/staff/login"


def test_required_for_all_staff_sets_it_up_at_the_next_sign_in(app, admin, clerk):
    admin.post("/staff/users/two-factor-required", required="1")
    browser = app.test_client()

    assert password_step(browser, "carl").headers["Location"] == "/staff/login/code"
    page = browser.get("/staff/login/code").text
    assert "required for all staff" in page
    secret = secret_on(page)
    assert code_step(browser, "000000").status_code == 401
    done = code_step(browser, pyotp.TOTP(secret).now())

    assert done.status_code == 200 and len(recovery_codes_on(done.text)) == 10
    assert browser.get("/staff/").status_code == 200
    assert StaffUser.get_by_id(clerk.user.id).totp_secret == secret
    # Required: it cannot be switched off by the user.
    token = csrf_from(browser.get("/staff/account/").text)
    browser.post("/staff/account/two-factor/off", data={"csrf_token": token})
    assert StaffUser.get_by_id(clerk.user.id).has_two_factor


def test_switch_off_renew_codes_and_admin_reset(app, admin, clerk):
    set_up(clerk)
    renewed = recovery_codes_on(clerk.post("/staff/account/recovery-codes").text)
    assert len(renewed) == 10
    clerk.post("/staff/account/two-factor/off")
    assert not StaffUser.get_by_id(clerk.user.id).has_two_factor
    assert not RecoveryCode.select().exists()

    set_up(clerk)
    admin.post(f"/staff/users/{clerk.user.id}/two-factor/reset")
    assert not StaffUser.get_by_id(clerk.user.id).has_two_factor
    assert password_step(app.test_client(), "carl").headers["Location"] == "/"  # no code step
    reset = AuditEntry.select().where(AuditEntry.action == "staff.two_factor_disable")
    assert [entry.detail for entry in reset] == ["", "by an admin"]


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_codes_of_the_neighbouring_steps_count(offset):
    secret = two_factor.new_secret()
    now = time.time()
    code = pyotp.TOTP(secret).at(now + offset)
    assert two_factor._matching_step(secret, code, now) is not None
    assert two_factor._matching_step(secret, pyotp.TOTP(secret).at(now + 90), now) is None
