"""The workflow API (/api/v1) against the real app, real SQLite and the real token store."""

from __future__ import annotations

import pytest

from shared.accounts.api_tokens import create_token, revoke_token
from shared.models import Contact, Customer, Order, OutboxMail, PortalLogin, Ticket

# Switches off: these tests are about the API; the new-order behaviour has its own module.
OFF = {"portal_create_uplogin_automatically": 0, "portal_send_uplogin_email_automatically": 0}


@pytest.fixture
def ini_overrides():
    return {"workflow": dict(OFF)}


@pytest.fixture
def customer(api) -> str:
    response = api.post(
        "/customers", {"customer_no": "K100", "name": "Druckhaus Nord", "email": "k@nord.example"}
    )
    assert response.status_code == 201, response.get_json()
    return "K100"


@pytest.fixture
def order(api, customer) -> str:
    response = api.post("/orders", {"project_no": "A-1", "customer_no": customer})
    assert response.status_code == 201, response.get_json()
    return "A-1"


def counts() -> dict[str, int]:
    models = (Customer, Contact, Order, Ticket, PortalLogin, OutboxMail)
    return {model.__name__: model.select().count() for model in models}


def assert_error(response, status: int, field: str | None = None) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert response.is_json
    assert body["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# --- authentication ---------------------------------------------------------

PROTECTED = [
    ("post", "/api/v1/customers"),
    ("post", "/api/v1/customers/K100/contacts"),
    ("post", "/api/v1/orders"),
    ("post", "/api/v1/orders/A-1/tickets"),
    ("get", "/api/v1/orders/A-1"),
    ("patch", "/api/v1/orders/A-1"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/customers"),
    ("get", "/api/v1/customers/K100"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_paths_refuse_missing_token(client, method, path):
    response = getattr(client, method)(path, json={})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization", ["Bearer ", "Bearer ptp_wrong", "Basic dXNlcjpwdw==", "ptp_no_scheme"]
)
def test_wrong_token_is_refused(client, authorization):
    response = client.post("/api/v1/orders", json={}, headers={"Authorization": authorization})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_refused(client, api):
    assert api.get("/orders/nothing").status_code == 404  # the token works ...
    revoke_token("tests")
    response = api.get("/orders/nothing")  # ... and then it does not
    assert_error(response, 401)
    assert "revoked" in response.get_json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_other_tokens_keep_working_after_one_is_revoked(client, api):
    other = create_token("erp")
    revoke_token("tests")
    response = client.get("/api/v1/orders/x", headers={"Authorization": f"bearer {other}"})
    assert response.status_code == 404


def test_refused_request_writes_nothing(client, app):
    before = counts()
    response = client.post(
        "/api/v1/customers",
        json={"customer_no": "K1", "name": "X"},
        headers={"Authorization": "Bearer ptp_wrong"},
    )
    assert response.status_code == 401
    assert counts() == before


# --- customers and contacts ----------------------------------------------------


def test_customer_create_then_update(api):
    created = api.post(
        "/customers",
        {
            "customer_no": "K7",
            "name": "Müller Druck",
            "email": "info@mueller.example",
            "portal_enabled": True,
            "language": "en",
            "hotfolder_delete_after_days": 14,
        },
    )
    assert created.status_code == 201
    assert created.get_json() == {
        "customer_no": "K7",
        "name": "Müller Druck",
        "email": "info@mueller.example",
        "portal_enabled": True,
        "create_hotfolder": True,
        "hotfolder_delete_after_days": 14,
        "language": "en",
    }

    updated = api.post("/customers", {"customer_no": "K7", "portal_enabled": False})
    assert updated.status_code == 200
    body = updated.get_json()
    assert body["portal_enabled"] is False
    assert body["name"] == "Müller Druck"  # fields not sent stay as they were
    assert Customer.select().count() == 1


def test_new_customer_needs_a_name(api):
    assert_error(api.post("/customers", {"customer_no": "K8"}), 400, "name")
    assert Customer.select().count() == 0


def test_customer_name_cannot_be_emptied(api, customer):
    assert_error(api.post("/customers", {"customer_no": customer, "name": "  "}), 400, "name")
    assert Customer.get(Customer.customer_no == customer).name == "Druckhaus Nord"


DAYS = "hotfolder_delete_after_days"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"language": "it"}, "language"),
        ({DAYS: -1}, DAYS),
        ({DAYS: 1.5}, DAYS),
        ({DAYS: True}, DAYS),
        ({"portal_enabled": "true"}, "portal_enabled"),
        ({"portal_enabled": 1}, "portal_enabled"),
        ({"customer_no": 9}, "customer_no"),
        ({"name": "X" * 201}, "name"),
        ({"customer_no": "K" * 65}, "customer_no"),
        ({"customer_no": "../x"}, "customer_no"),
        ({"customer_no": "a/b"}, "customer_no"),
        ({"customer_no": ".hidden"}, "customer_no"),
        ({"customer_no": ""}, "customer_no"),
        ({"colour": "red"}, "colour"),
        ({"customer_no": None}, "customer_no"),
    ],
)
def test_customer_body_errors_name_the_field(api, changes, field):
    body = {"customer_no": "K9", "name": "X"} | changes
    assert_error(api.post("/customers", body), 400, field)
    assert Customer.select().count() == 0


def test_contact_add_update_and_favorite_switching(api, customer):
    first = api.post(f"/customers/{customer}/contacts", {"email": "a@nord.example", "name": "A"})
    assert first.status_code == 201
    assert first.get_json() == {"email": "a@nord.example", "name": "A", "favorite": False}

    fav_a = api.post(
        f"/customers/{customer}/contacts", {"email": "a@nord.example", "favorite": True}
    )
    assert fav_a.get_json() == {"email": "a@nord.example", "name": "A", "favorite": True}

    fav_b = api.post(
        f"/customers/{customer}/contacts",
        {"email": "b@nord.example", "name": "B", "favorite": True},
    )
    assert fav_b.get_json()["favorite"] is True
    favorites = Contact.select().where(Contact.favorite == True)  # noqa: E712
    assert [c.email for c in favorites] == ["b@nord.example"]

    # Updating a contact without saying "favorite" leaves the favorite alone ...
    api.post(f"/customers/{customer}/contacts", {"email": "b@nord.example", "name": "Bea"})
    b = Contact.get(Contact.email == "b@nord.example")
    assert (b.name, b.favorite) == ("Bea", True)
    # ... and an explicit false takes it away.
    api.post(f"/customers/{customer}/contacts", {"email": "b@nord.example", "favorite": False})
    assert not Contact.select().where(Contact.favorite == True).exists()  # noqa: E712
    assert Contact.select().count() == 2


def test_contact_matched_by_email_regardless_of_case(api, customer):
    api.post(f"/customers/{customer}/contacts", {"email": "Anna@Nord.example"})
    again = api.post(f"/customers/{customer}/contacts", {"email": "anna@nord.example", "name": "A"})
    assert again.status_code == 201
    assert Contact.select().count() == 1


def test_contact_of_unknown_customer_is_404(api):
    body = assert_error(api.post("/customers/K404/contacts", {"email": "a@b.example"}), 404)
    assert "K404" in body["error"]
    assert Contact.select().count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": ""}, "email"),
        ({"email": "no at sign"}, "email"),
        ({"email": "a@b.example", "favorite": "yes"}, "favorite"),
        ({"email": "a@b.example", "phone": "123"}, "phone"),
    ],
)
def test_contact_body_errors_name_the_field(api, customer, body, field):
    assert_error(api.post(f"/customers/{customer}/contacts", body), 400, field)
    assert Contact.select().count() == 0


# --- request bodies in general -------------------------------------------------


def test_malformed_json_is_400(client, api_token):
    response = client.post(
        "/api/v1/customers",
        data='{"customer_no": "K1", ',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert_error(response, 400, "body")
    assert Customer.select().count() == 0


def test_json_must_be_sent_as_json(client, api_token):
    response = client.post(
        "/api/v1/customers",
        data='{"customer_no": "K1", "name": "X"}',
        content_type="text/plain",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert_error(response, 400, "body")


@pytest.mark.parametrize("body", [[], ["customer_no"], "K1", 42, None, True])
@pytest.mark.parametrize("path", ["/customers", "/orders", "/customers/K100/contacts"])
def test_body_must_be_a_json_object(api, customer, path, body):
    assert_error(api.post(path, body), 400, "body")


def test_too_large_body_is_refused_with_json(client, api_token):
    response = client.post(
        "/api/v1/customers",
        json={"customer_no": "K1", "name": "x" * (2 * 1024 * 1024)},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert_error(response, 413)


# --- orders --------------------------------------------------------------------


def test_order_create_returns_201_location_and_actions(api, customer):
    response = api.post(
        "/orders",
        {
            "project_no": "2026-0042",
            "customer_no": customer,
            "job_description": "Flyer A5, 4/4",
            "due_date": "2026-12-31",
        },
    )
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/api/v1/orders/2026-0042")
    body = response.get_json()
    assert body["project_no"] == "2026-0042"
    assert body["customer_no"] == customer
    assert body["job_description"] == "Flyer A5, 4/4"
    assert body["due_date"] == "2026-12-31"
    assert body["actions"] == []  # customer is not portal-enabled
    assert body["portal_login"] is None

    # The Location answers with the same state.
    shown = api.get(response.headers["Location"].split("/api/v1", 1)[1])
    assert shown.status_code == 200
    assert shown.get_json() == {k: v for k, v in body.items() if k != "actions"}


def test_order_with_contact_email_creates_the_contact(api, customer):
    response = api.post(
        "/orders", {"project_no": "A-2", "customer_no": customer, "contact_email": "c@nord.example"}
    )
    assert response.status_code == 201
    assert response.get_json()["contact_email"] == "c@nord.example"
    assert Contact.select().count() == 1


def test_duplicate_project_no_is_409_and_writes_nothing(api, order, customer):
    before = counts()
    response = api.post(
        "/orders",
        {"project_no": order, "customer_no": customer, "contact_email": "new@nord.example"},
    )
    body = assert_error(response, 409)
    assert order in body["error"]
    assert counts() == before  # neither a second order nor the new contact


def test_unknown_customer_names_customer_no(api):
    response = api.post("/orders", {"project_no": "A-3", "customer_no": "K404"})
    body = assert_error(response, 400, "customer_no")
    assert "K404" in body["error"]
    assert Order.select().count() == 0


def test_invalid_contact_email_creates_neither_order_nor_contact(api, customer):
    before = counts()
    response = api.post(
        "/orders", {"project_no": "A-4", "customer_no": customer, "contact_email": "broken@"}
    )
    assert_error(response, 400, "contact_email")
    assert counts() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project_no": "../x"}, "project_no"),
        ({"project_no": "a/b"}, "project_no"),
        ({"project_no": "a\\b"}, "project_no"),
        ({"project_no": ".."}, "project_no"),
        ({"project_no": "x" * 65}, "project_no"),
        ({"project_no": " "}, "project_no"),
        ({"project_no": 42}, "project_no"),
        ({"due_date": "31.12.2026"}, "due_date"),
        ({"due_date": "2026-02-30"}, "due_date"),
        ({"due_date": "20261231"}, "due_date"),
        ({"due_date": "2026-W53-1"}, "due_date"),
        ({"due_date": 20261231}, "due_date"),
        ({"job_description": "x" * 2001}, "job_description"),
        ({"job_description": ["a"]}, "job_description"),
        ({"customer_no": None}, "customer_no"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_order_body_errors_name_the_field(api, customer, changes, field):
    body = {"project_no": "A-5", "customer_no": customer} | changes
    assert_error(api.post("/orders", body), 400, field)
    assert Order.select().count() == 0


def test_optional_fields_may_be_null(api, customer):
    response = api.post(
        "/orders",
        {"project_no": "A-6", "customer_no": customer, "due_date": None, "contact_email": None},
    )
    assert response.status_code == 201
    assert response.get_json()["due_date"] is None


# --- tickets and order state ------------------------------------------------------


def test_tickets_are_added_once_per_order(api, order):
    first = api.post(f"/orders/{order}/tickets", {"ticket_no": "T1", "title": "Proof"})
    assert first.status_code == 201
    assert first.get_json() == {"ticket_no": "T1", "title": "Proof"}
    assert api.post(f"/orders/{order}/tickets", {"ticket_no": "T2"}).status_code == 201

    duplicate = api.post(f"/orders/{order}/tickets", {"ticket_no": "T1", "title": "again"})
    assert "T1" in assert_error(duplicate, 409)["error"]
    assert Ticket.select().count() == 2


def test_same_ticket_number_in_two_orders(api, customer, order):
    api.post("/orders", {"project_no": "A-7", "customer_no": customer})
    assert api.post(f"/orders/{order}/tickets", {"ticket_no": "T1"}).status_code == 201
    assert api.post("/orders/A-7/tickets", {"ticket_no": "T1"}).status_code == 201


def test_ticket_for_unknown_order_is_404(api):
    body = assert_error(api.post("/orders/NOPE/tickets", {"ticket_no": "T1"}), 404)
    assert "NOPE" in body["error"]
    assert Ticket.select().count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "ticket_no"), ({"ticket_no": " "}, "ticket_no"), ({"ticket_no": 1}, "ticket_no")],
)
def test_ticket_body_errors(api, order, body, field):
    assert_error(api.post(f"/orders/{order}/tickets", body), 400, field)
    assert Ticket.select().count() == 0


def test_order_state_shows_login_and_tickets(api, customer, order):
    from shared.accounts.logins import create_login
    from shared.db import write_transaction

    api.post(f"/orders/{order}/tickets", {"ticket_no": "T1", "title": "Proof"})
    api.post(f"/orders/{order}/tickets", {"ticket_no": "T2"})
    state = api.get(f"/orders/{order}").get_json()
    assert state["portal_login"] is None
    assert state["folders_created"] is False
    assert state["tickets"] == [
        {"ticket_no": "T1", "title": "Proof"},
        {"ticket_no": "T2", "title": ""},
    ]

    with write_transaction():
        create_login(Customer.get(Customer.customer_no == customer))
    state = api.get(f"/orders/{order}").get_json()
    assert state["portal_login"] == {"username": "k100", "state": "inactive", "activated": False}


def test_unknown_order_is_404(api):
    body = assert_error(api.get("/orders/NOPE"), 404)
    assert "NOPE" in body["error"]


# --- OpenAPI ------------------------------------------------------------------------

OPERATIONS = {
    ("/customers", "get"),
    ("/customers", "post"),
    ("/customers/{customer_no}", "get"),
    ("/customers/{customer_no}/contacts", "post"),
    ("/orders", "get"),
    ("/orders", "post"),
    ("/orders/{project_no}/tickets", "post"),
    ("/orders/{project_no}", "get"),
    ("/orders/{project_no}", "patch"),
    ("/orders/{project_no}/files", "get"),
    ("/orders/{project_no}/approval", "get"),
}

# A valid body per operation; each test drops or breaks one field of it.
VALID_BODIES = {
    "/customers": {"customer_no": "K200", "name": "Neu"},
    "/customers/{customer_no}/contacts": {"email": "x@nord.example"},
    "/orders": {"project_no": "B-1", "customer_no": "K100"},
    "/orders/{project_no}/tickets": {"ticket_no": "T9"},
}


def concrete(path: str) -> str:
    return path.replace("{customer_no}", "K100").replace("{project_no}", "A-1")


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")  # no token needed
    assert response.status_code == 200
    return response.get_json()


def test_openapi_document_structure(spec):
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] and spec["info"]["version"]
    found = {(path, method) for path, item in spec["paths"].items() for method in item}
    # The hotfolder agents' endpoints are tested with the agent (tests/test_agent_api.py).
    assert {(path, method) for path, method in found if not path.startswith("/agent/")} == (
        OPERATIONS
    )
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, method in OPERATIONS:
        operation = spec["paths"][path][method]
        assert operation["summary"]
        assert "401" in operation["responses"]
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert names == [n for n in ("customer_no", "project_no") if "{" + n + "}" in path]
        if method in ("post", "patch"):
            assert operation["requestBody"]["required"] is True


def request_schema(spec: dict, path: str) -> dict:
    return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("path", sorted(VALID_BODIES))
def test_valid_example_bodies_are_accepted(api, order, spec, path):
    schema = request_schema(spec, path)
    body = VALID_BODIES[path]
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert api.post(concrete(path), body).status_code == 201


@pytest.mark.parametrize("path", sorted(VALID_BODIES))
def test_schema_required_lists_match_validation(api, order, spec, path):
    schema = request_schema(spec, path)
    assert schema["additionalProperties"] is False
    for name in schema["properties"]:
        body = dict(VALID_BODIES[path])
        body.pop(name, None)
        response = api.post(concrete(path), body)
        if name in schema["required"]:
            assert_error(response, 400, name)
        else:
            # An optional field left out never causes an error about that field.
            assert response.get_json().get("field") != name, (path, name)

    extra = VALID_BODIES[path] | {"not_in_schema": "x"}
    assert_error(api.post(concrete(path), extra), 400, "not_in_schema")


@pytest.mark.parametrize("path", sorted(VALID_BODIES))
def test_schema_types_match_validation(api, order, spec, path):
    """A value of the wrong JSON type for any property is refused, naming it."""
    wrong = {"string": 12, "boolean": "true", "integer": "12"}
    for name, prop in request_schema(spec, path)["properties"].items():
        types = [prop["type"]] if isinstance(prop["type"], str) else prop["type"]
        (kind,) = [t for t in types if t != "null"]
        body = dict(VALID_BODIES[path]) | {name: wrong[kind]}
        assert_error(api.post(concrete(path), body), 400, name)
        if prop.get("maxLength"):
            body[name] = "x" * (prop["maxLength"] + 1)
            assert_error(api.post(concrete(path), body), 400, name)
        if prop.get("format") == "date":
            body[name] = "31.12.2026"
            assert_error(api.post(concrete(path), body), 400, name)


# --- changing orders, lists ------------------------------------------------------------------


@pytest.fixture
def owner(app, settings):
    from shared.accounts.staff import create_staff

    return create_staff(
        settings, "olga", "Olga", "olga@druck.example", False, "Setzkasten-und-Bleilettern"
    )


def patch(client, api, path: str, body: object):
    return client.patch(f"/api/v1{path}", json=body, headers=api.headers)


def test_order_created_with_owner(api, customer, owner):
    response = api.post("/orders", {"project_no": "B-7", "customer_no": customer, "owner": "olga"})
    assert response.status_code == 201
    assert response.get_json()["owner"] == "olga"
    assert_error(
        api.post("/orders", {"project_no": "B-8", "customer_no": customer, "owner": "nobody"}),
        400,
        "owner",
    )
    assert not Order.select().where(Order.project_no == "B-8").exists()


def test_patch_changes_the_given_fields_and_null_clears(client, api, order, owner):
    changed = patch(
        client,
        api,
        "/orders/A-1",
        {"job_description": "Plakat", "due_date": "2027-02-01", "owner": "olga"},
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["job_description"], body["due_date"], body["owner"]) == (
        "Plakat",
        "2027-02-01",
        "olga",
    )

    cleared = patch(client, api, "/orders/A-1", {"due_date": None, "owner": None}).get_json()
    assert cleared["due_date"] is None and cleared["owner"] is None
    assert cleared["job_description"] == "Plakat"


def test_patch_closes_cancels_and_reopens(client, api, order):
    closed = patch(client, api, "/orders/A-1", {"state": "closed"}).get_json()
    assert closed["state"] == "closed" and closed["closed_at"]
    assert patch(client, api, "/orders/A-1", {"state": "cancelled"}).get_json()["state"] == (
        "cancelled"
    )
    reopened = patch(client, api, "/orders/A-1", {"state": "open"}).get_json()
    assert reopened["state"] == "open" and reopened["closed_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "finished"}, "state"),
        ({"due_date": "1.2.2027"}, "due_date"),
        ({"owner": "nobody"}, "owner"),
        ({"contact_email": "no-address"}, "contact_email"),
        ({"project_no": "X"}, "project_no"),
    ],
)
def test_patch_refusals_name_the_field_and_change_nothing(client, api, order, body, field):
    before = Order.get(Order.project_no == "A-1")
    assert_error(patch(client, api, "/orders/A-1", body | {"job_description": "neu"}), 400, field)
    after = Order.get(Order.project_no == "A-1")
    assert (after.job_description, after.state) == (before.job_description, before.state)


def test_patch_of_an_unknown_order_is_404(client, api):
    assert_error(patch(client, api, "/orders/NOPE", {"state": "closed"}), 404)


def test_order_list_pages_and_filters(client, api, customer, owner):
    api.post("/customers", {"customer_no": "K200", "name": "Süd"})
    for number in range(5):
        api.post("/orders", {"project_no": f"N-{number}", "customer_no": customer})
    api.post("/orders", {"project_no": "S-1", "customer_no": "K200", "due_date": "2027-03-01"})
    patch(client, api, "/orders/N-1", {"state": "closed", "owner": "olga"})

    first = api.get("/orders?per_page=2").get_json()
    assert (first["total"], first["pages"], first["page"]) == (6, 3, 1)
    assert [item["project_no"] for item in first["items"]] == ["S-1", "N-4"]
    assert api.get("/orders?per_page=2&page=3").get_json()["items"][-1]["project_no"] == "N-0"
    only = api.get("/orders?customer_no=K200").get_json()["items"]
    assert [item["project_no"] for item in only] == ["S-1"]
    assert [i["project_no"] for i in api.get("/orders?state=closed").get_json()["items"]] == ["N-1"]
    owned = api.get("/orders?owner=olga").get_json()["items"]
    assert [(i["project_no"], i["owner"]) for i in owned] == [("N-1", "olga")]
    due = api.get("/orders?due_from=2027-01-01&due_until=2027-12-31").get_json()["items"]
    assert [i["project_no"] for i in due] == ["S-1"]
    assert [i["project_no"] for i in api.get("/orders?q=S-").get_json()["items"]] == ["S-1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=0", "per_page"),
        ("page=x", "page"),
        ("state=alt", "state"),
        ("due_from=morgen", "due_from"),
        ("colour=red", "colour"),
    ],
)
def test_list_query_errors_name_the_parameter(api, query, field):
    assert_error(api.get(f"/orders?{query}"), 400, field)


def test_customer_list_and_one_customer(api, customer):
    api.post("/customers", {"customer_no": "K200", "name": "Süd", "email": "s@sued.example"})
    api.post("/customers/K200/contacts", {"email": "anna@sued.example", "favorite": True})
    listing = api.get("/customers?q=sued").get_json()
    assert listing["total"] == 1 and listing["items"][0]["customer_no"] == "K200"
    assert api.get("/customers").get_json()["total"] == 2
    one = api.get("/customers/K200").get_json()
    assert one["contacts"] == [{"email": "anna@sued.example", "name": "", "favorite": True}]
    assert one["portal_logins"] == []
    assert_error(api.get("/customers/NOPE"), 404)


def test_api_changes_are_in_the_audit_log_under_the_token_name(client, api, order):
    from shared.models import AuditEntry

    patch(client, api, "/orders/A-1", {"state": "closed"})
    entry = AuditEntry.get(AuditEntry.action == "order.state")
    assert (entry.actor_kind, entry.actor_name, entry.target) == ("api", "tests", "order A-1")
    assert entry.address == "127.0.0.1"


def test_openapi_lists_the_query_parameters(spec):
    parameters = spec["paths"]["/orders"]["get"]["parameters"]
    names = {p["name"] for p in parameters if p["in"] == "query"}
    assert names == {
        "page",
        "per_page",
        "q",
        "customer_no",
        "state",
        "owner",
        "due_from",
        "due_until",
    }
    patch_schema = spec["paths"]["/orders/{project_no}"]["patch"]["requestBody"]["content"]
    assert set(patch_schema["application/json"]["schema"]["properties"]) == {
        "job_description",
        "due_date",
        "contact_email",
        "owner",
        "state",
        "trim_size",
        "page_count",
    }
