"""The origin check: state-changing requests from another site are refused, token or not."""

from __future__ import annotations

import base64

import pytest
from conftest import csrf_from
from portal_helpers import BASE_URL, signed_in_customer

from shared.accounts.staff import create_staff
from shared.models import Customer, OrderFile, PortalSession

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = "application/offset+octet-stream"
STAFF_PASSWORD = "Kaffee-Druckmaschine-Montag-42"

FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://portal.test"},  # another scheme is another origin
    {"Origin": "http://portal.test:8080"},
    {"Origin": "http://portal.test.evil.example"},
    {"Origin": "not a url"},
    {"Referer": "https://evil.example/page"},
    {"Referer": "http://evil.example/http://portal.test/"},
    {"Origin": "https://evil.example", "Referer": "http://portal.test/orders"},
]
OWN = [
    {},
    {"Origin": "http://portal.test"},
    {"Origin": "HTTP://Portal.Test:80"},
    {"Referer": "http://portal.test/orders/A1"},
]


@pytest.fixture
def customer(client, api, mailserver):
    return signed_in_customer(client, api, mailserver, "K1", "A1")


def announce(client, customer, headers: dict[str, str]):
    name = base64.b64encode(b"Flyer.pdf").decode()
    upload = {"Upload-Length": "5", "Upload-Metadata": f"filename {name}"}
    return client.post("/orders/A1/uploads", headers=TUS | customer.headers | upload | headers)


@pytest.mark.parametrize("headers", FOREIGN)
def test_a_foreign_origin_cannot_sign_out_even_with_the_token(client, customer, headers):
    response = client.post("/logout", data={"csrf_token": customer.csrf_token}, headers=headers)

    assert response.status_code == 403
    assert "This request came from another site and was refused." in response.text
    assert client.get("/orders").status_code == 200, "still signed in"


@pytest.mark.parametrize("headers", OWN)
def test_the_own_origin_or_none_signs_out_as_before(client, customer, headers):
    response = client.post("/logout", data={"csrf_token": customer.csrf_token}, headers=headers)

    assert response.status_code == 302
    assert PortalSession.select().count() == 0


@pytest.mark.parametrize("headers", FOREIGN[:2] + FOREIGN[6:7])
def test_a_foreign_origin_cannot_sign_in(app, client, customer, headers):
    browser = app.test_client()
    token = csrf_from(browser.get("/login").text)
    form = {"csrf_token": token, "username": "k1", "password": "correct horse battery staple"}

    response = browser.post("/login", data=form, headers=headers)

    assert response.status_code == 403
    assert browser.get("/orders").status_code == 302


@pytest.mark.parametrize("headers", FOREIGN[:2] + FOREIGN[6:7])
def test_tus_requests_from_a_foreign_origin_are_refused_as_json(client, customer, headers):
    refused = announce(client, customer, headers)
    assert refused.status_code == 403
    assert refused.json["error"] == "This request came from another site and was refused."
    assert OrderFile.select().count() == 0

    location = announce(client, customer, {}).headers["Location"]
    chunk = TUS | customer.headers | {"Upload-Offset": "0"} | headers
    patched = client.patch(location, data=b"12345", headers=chunk, content_type=CHUNK_TYPE)
    deleted = client.delete(location, headers=TUS | customer.headers | headers)

    assert (patched.status_code, deleted.status_code) == (403, 403)
    file = OrderFile.get()
    assert (file.state, file.received_bytes) == (OrderFile.STATE_UPLOADING, 0)
    offset = client.head(location, headers=TUS | headers).headers["Upload-Offset"]
    assert offset == "0", "HEAD asks, it changes nothing: answered from any origin"


def test_a_staff_action_from_a_foreign_origin_is_refused(app, settings):
    from mail_helpers import make_customer, make_file, make_order

    create_staff(settings, "anna", "Anna", "anna@testdruck.example", False, STAFF_PASSWORD)
    file = make_file(make_order(make_customer()), state=OrderFile.STATE_REJECTED)
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"csrf_token": token, "username": "anna", "password": STAFF_PASSWORD}
    assert browser.post("/staff/login", data=form).status_code == 302
    token = csrf_from(browser.get("/staff/").text)

    response = browser.post(
        f"/staff/files/{file.id}/discard",
        data={"csrf_token": token, "back": "/staff/"},
        headers={"Origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert OrderFile.get_by_id(file.id).state == OrderFile.STATE_REJECTED


def test_the_api_takes_bearer_tokens_from_anywhere(client, api_token):
    # No cookies, no CSRF target: a browser never attaches the bearer token by itself.
    headers = {"Authorization": f"Bearer {api_token}", "Origin": "https://erp.example"}
    body = {"customer_no": "K7", "name": "Kunde"}

    response = client.post("/api/v1/customers", json=body, headers=headers)

    assert response.status_code == 201
    assert Customer.select().count() == 1


def test_reading_pages_from_a_foreign_origin_is_fine(client, customer):
    assert client.get("/orders", headers={"Origin": "https://evil.example"}).status_code == 200


def test_the_origin_is_that_of_the_base_url():
    from portal.security import origin_of

    assert BASE_URL == "http://portal.test"
    assert origin_of("https://Upload.Example.com:443/portal/") == "https://upload.example.com"
    assert origin_of("http://[::1]:8000") == "http://[::1]:8000"
    assert origin_of("http://portal.test:99999") is None
    assert origin_of("javascript:alert(1)") is None
