"""What an order says about its print data (trim size, page count): parsed once, set through
the workflow API (create and PATCH) and the staff order page, documented in OpenAPI."""

from __future__ import annotations

import pytest
from portal_helpers import customer_with_order
from print_data_helpers import signed_in_staff

from shared.errors import Invalid
from shared.models import Order
from shared.orders.print_spec import parse_trim_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("210 x 297", (210.0, 297.0)),
        ("148x210 mm", (148.0, 210.0)),
        ("99,5 × 210", (99.5, 210.0)),
        ("a4", (210.0, 297.0)),
        ("", None),
    ],
)
def test_trim_sizes_are_read_in_the_ways_people_write_them(text, size):
    assert parse_trim_size(text) == size


@pytest.mark.parametrize("text", ["A4 quer", "210", "0 x 297", "210 x 297 cm", "20000 x 10"])
def test_nonsense_trim_sizes_are_refused(text):
    with pytest.raises(Invalid) as refused:
        parse_trim_size(text)
    assert refused.value.field == "trim_size"


@pytest.fixture
def customer(api):
    customer_with_order(api, "K1", "A1")


def test_the_api_creates_and_changes_them(api, customer):
    body = {"project_no": "A2", "customer_no": "K1", "trim_size": "A5", "page_count": 8}
    created = api.post("/orders", body)
    assert created.status_code == 201, created.text
    assert (created.json["trim_size"], created.json["page_count"]) == ("148 x 210", 8)

    changed = api.patch("/orders/A2", {"page_count": 12})
    assert changed.status_code == 200
    assert (changed.json["trim_size"], changed.json["page_count"]) == ("148 x 210", 12)
    cleared = api.patch("/orders/A2", {"trim_size": "", "page_count": 0})
    assert (cleared.json["trim_size"], cleared.json["page_count"]) == (None, None)
    assert api.get("/orders/A2").json["trim_size"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trim_size": "gross"}, "trim_size"),
        ({"page_count": -1}, "page_count"),
        ({"page_count": "8"}, "page_count"),
        ({"colour": "x"}, "colour"),
    ],
)
def test_the_api_says_which_field_is_wrong(api, customer, body, field):
    response = api.patch("/orders/A1", body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert Order.get().trim_width_mm is None


def test_patching_a_missing_order_is_404(api, customer):
    assert api.patch("/orders/NOPE", {"page_count": 2}).status_code == 404


def test_openapi_documents_the_fields_and_the_new_calls(client):
    document = client.get("/api/v1/openapi.json").json
    create = document["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]
    assert {"trim_size", "page_count"} <= set(create["schema"]["properties"])
    assert "patch" in document["paths"]["/orders/{project_no}"]
    assert "get" in document["paths"]["/orders/{project_no}/approval"]
    assert "get" in document["paths"]["/orders/{project_no}/files"]


def test_staff_set_them_on_the_order_page(app, settings, customer):
    staff = signed_in_staff(app, settings)
    page = staff.client.get("/staff/orders/A1").text
    assert 'id="print-spec"' in page and 'name="trim_size"' in page

    response = staff.post("/staff/orders/A1/print-spec", trim_size="297 x 420", page_count="4")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/staff/orders/A1#print-spec")
    order = Order.get()
    assert (order.trim_width_mm, order.trim_height_mm, order.page_count) == (297.0, 420.0, 4)
    page = staff.client.get("/staff/orders/A1").text
    assert 'value="297 x 420"' in page and "Trim size and page count saved." in page

    staff.post("/staff/orders/A1/print-spec", trim_size="riesig", page_count="4")
    assert "The trim size is not valid" in staff.client.get("/staff/orders/A1").text
    assert Order.get().trim_width_mm == 297.0
    staff.post("/staff/orders/A1/print-spec", trim_size="", page_count="")
    assert Order.get().trim_width_mm is None and Order.get().page_count is None
    assert staff.client.post("/staff/orders/A1/print-spec", data={}).status_code == 400, "CSRF"
