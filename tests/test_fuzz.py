"""Hostile input never gets a 5xx: every operation of the workflow API's OpenAPI document
(schemathesis, and bodies of hostile values built from the same field lists).

Deterministic (derandomised, no example database) and bounded in examples, so the tests
take seconds and fail the same way on every run.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from conftest import csrf_from
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import api_schema
from portal.openapi import document

API = schemathesis.openapi.from_dict(document())
API.config.generation.update(max_examples=30, deterministic=True, database="none")
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# Text that has broken things: lone surrogates (which no database stores), NUL, controls,
# direction overrides, combining marks, and what is long or looks like a number.
NASTY_TEXT = [
    "\ud800",
    "a\udfffb",
    "\udbff\udfff",
    "\x00",
    "K1\x00",
    "\x1b[31m",
    "\r\n",
    "\u202eK1",
    "e\u0301" * 50,
    "\ufeff",
    "A" * 5000,
    "../../etc/passwd",
    "99999999999999999999999",
    "-1",
    "NaN",
    "K1",
    "A1",
    "",
    " ",
]
nasty_text = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(st.characters(exclude_categories=()), max_size=40),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3)
    ),
    max_leaves=6,
)


def field_value(field: api_schema.Field):
    """Mostly the right type with hostile content; sometimes anything at all."""
    right = {
        "string": nasty_text,
        "boolean": st.booleans(),
        "integer": st.integers(min_value=-(2**70), max_value=2**70),
        "date": st.one_of(st.sampled_from(["2026-12-31", "2026-02-30", "0000-01-01"]), nasty_text),
    }[field.kind]
    return st.one_of(right, right, right, json_values)


@st.composite
def hostile_body(draw, fields: tuple[api_schema.Field, ...]) -> dict:
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    body = {field.name: draw(field_value(field)) for field in chosen}
    if draw(st.integers(0, 9)) == 0:
        body[draw(nasty_text)] = draw(json_values)
    return body


OPERATIONS = [
    ("/customers", api_schema.CUSTOMER),
    ("/customers/{no}/contacts", api_schema.CONTACT),
    ("/orders", api_schema.ORDER),
    ("/orders/{no}/tickets", api_schema.TICKET),
]


@pytest.fixture
def api_world(api):
    """A customer K1 with an order A1, so that plausible bodies reach the database."""
    assert api.post("/customers", {"customer_no": "K1", "name": "Kunde"}).status_code == 201
    assert api.post("/orders", {"project_no": "A1", "customer_no": "K1"}).status_code == 201
    return api


def send(client, api_token: str, method: str, path: str, raw: bytes | None = None):
    headers = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    return client.open(f"/api/v1{path}", method=method, data=raw, headers=headers)


def encoded(body: object) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape \ud800, as any JSON library may.
    return json.dumps(body, ensure_ascii=True).encode()


def in_path(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="", errors="surrogatepass") or "%20"


@API.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_5xx_in_any_api_operation(case, app, api_token):
    response = case.call(app=app, headers={"Authorization": f"Bearer {api_token}"})

    assert response.status_code < 500, case.as_curl_command()


@pytest.mark.parametrize(("path", "fields"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_hostile_bodies_get_a_4xx_with_a_reason(client, api_token, api_world, path, fields):
    @FUZZ
    @given(
        number=st.one_of(st.just("K1" if "customers" in path else "A1"), nasty_text),
        body=hostile_body(fields),
    )
    def run(number: str, body: dict) -> None:
        response = send(client, api_token, "POST", path.format(no=in_path(number)), encoded(body))
        assert response.status_code < 500, (path, number, body)
        if response.status_code >= 400:
            assert response.json["error"], (path, body)

    run()


@pytest.mark.parametrize(("path", "fields"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_a_lone_surrogate_or_nul_in_any_string_field_is_a_400(
    client, api_token, api_world, path, fields
):
    valid = {
        "customer_no": "K2",
        "name": "Kunde",
        "email": "anna@kunde.example",
        "project_no": "A2",
        "job_description": "Flyer",
        "contact_email": "anna@kunde.example",
        "ticket_no": "T1",
        "title": "Korrektur",
        "language": "de",
    }
    number = "K1" if "customers" in path else "A1"
    for field in fields:
        if field.kind != "string":
            continue
        base = {
            other.name: valid[other.name]
            for other in fields
            if other.kind == "string" and other.name in valid
        }
        for bad in ("\ud800", "x\udc00y", "x\x00y"):
            body = base | {field.name: bad}

            response = send(client, api_token, "POST", path.format(no=number), encoded(body))

            assert response.status_code == 400, (field.name, bad, response.text)
            assert response.json["field"] == field.name


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400(client, api_token, opening):
    response = send(client, api_token, "POST", "/customers", (opening * 50_000).encode())

    assert response.status_code == 400
    assert "nested" in response.json["error"]


# Every route of the portal, with hostile values in its path parameters


PLAUSIBLE = {
    "project_no": "A1",
    "customer_no": "K1",
    "section": "held",
    "kind": "upload_received",
    "filename": "css/portal.css",
}
HOSTILE_PATH_VALUES = [
    "99999999999999999999999",
    "9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "-1",
    "0",
    "00000000000000000000001",
    "\x00",
    "A1\x00",
    "\x1f",
    "\x7f",
    "\ud800",
    "%00",
    "%ED%A0%80",
    "..",
    ".",
    "%2e%2e",
    "A" * 3000,
    "\u202e",
    "\uff10",
    "١٢",
    " ",
    "'; DROP TABLE orders; --",
    "<script>",
]
WHO = ["anonymous", "customer", "staff"]


@pytest.fixture
def browsers(app, client, api, mailserver, settings):
    """A signed-in customer (order A1 of K1), a signed-in staff user and nobody: each a client
    with the headers its page would send (CSRF token, tus version)."""
    from portal_helpers import signed_in_customer

    from shared.accounts.staff import create_staff

    customer = signed_in_customer(client, api, mailserver, "K1", "A1")
    password = "Kaffee-Druckmaschine-Montag-42"
    create_staff(settings, "anna", "Anna", "anna@testdruck.example", True, password)
    staff = app.test_client()
    token = csrf_from(staff.get("/staff/login").text)
    form = {"csrf_token": token, "username": "anna", "password": password}
    assert staff.post("/staff/login", data=form).status_code == 302
    staff_token = csrf_from(staff.get("/staff/").text)
    tus = {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Length": "10"}
    return {
        "anonymous": (app.test_client(), tus),
        "customer": (client, tus | customer.headers),
        "staff": (staff, tus | {"X-CSRFToken": staff_token}),
    }


def route_cases(app) -> list[tuple[str, str, list[str]]]:
    """(rule, method, parameter names) for every route with path parameters."""
    cases = []
    for rule in app.url_map.iter_rules():
        if not rule.arguments:
            continue
        methods = sorted(rule.methods - {"OPTIONS", "HEAD"} or {"HEAD"})
        cases += [(rule.rule, method, sorted(rule.arguments)) for method in methods]
    return cases


def fill(rule: str, values: dict[str, str]) -> str:
    """The rule's path with each ``<converter:name>`` replaced by its value, percent-encoded."""
    import re

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda match: in_path(values[match.group(1)]), rule)


def request(client, headers: dict, method: str, path: str):
    kwargs = {"headers": headers}
    if method == "PATCH":
        kwargs |= {"data": b"0123456789", "content_type": "application/offset+octet-stream"}
    elif method == "POST":
        kwargs |= {"data": {"back": "/", "q": "x"}}
    return client.open(path, method=method, **kwargs)


@pytest.mark.parametrize("who", WHO)
def test_every_route_answers_hostile_path_values_without_a_5xx(app, browsers, who):
    client, headers = browsers[who]
    failures = []
    for rule, method, names in route_cases(app):
        for name in names:
            for value in HOSTILE_PATH_VALUES:
                values = {other: PLAUSIBLE.get(other, "1") for other in names} | {name: value}
                path = fill(rule, values)
                response = request(client, headers, method, path)
                if response.status_code >= 500:
                    failures.append(f"{method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures[:40])


@pytest.mark.parametrize("who", WHO)
def test_every_route_answers_generated_path_values_without_a_5xx(app, browsers, who):
    client, headers = browsers[who]
    cases = route_cases(app)

    @FUZZ
    @given(data=st.data())
    def run(data) -> None:
        rule, method, names = data.draw(st.sampled_from(cases))
        values = {name: data.draw(st.one_of(nasty_text, st.integers().map(str))) for name in names}
        query = {key: data.draw(nasty_text) for key in ("q", "page", "folder", "next")}
        path = fill(rule, values) + "?" + "&".join(f"{k}={in_path(v)}" for k, v in query.items())

        response = request(client, headers, method, path)

        assert response.status_code < 500, f"{method} {path}"

    run()


@pytest.mark.parametrize(
    "address",
    [
        "anna\x00@kunde.example",
        "anna@kunde.example\x00",
        "an\x1fna@kunde.example",
        "a\ud800@b.example",
    ],
)
def test_an_email_address_with_nul_or_controls_is_refused(address):
    from shared.errors import Invalid
    from shared.mail.addresses import check_email

    with pytest.raises(Invalid):
        check_email("email", address)


def test_a_nul_in_a_query_is_a_400_everywhere(browsers):
    for client, headers in browsers.values():
        for query in ("?q=%00", "?page=1%00", "?next=/%00", "?folder=Final%00"):
            for path in ("/", "/login", "/orders", "/orders/A1", "/staff/", "/staff/hotfolder/"):
                response = client.get(path + query, headers=headers)

                assert response.status_code == 400, path + query
                assert "The request contains a NUL character." in response.text


def test_a_nul_in_a_form_value_is_a_400(app):
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    form = {"csrf_token": token, "username": "k1\x00", "password": "x"}

    response = client.post("/login", data=form)

    assert response.status_code == 400
    assert "NUL" in response.text
