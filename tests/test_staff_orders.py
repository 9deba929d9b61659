"""Orders in the staff UI: create, edit, owner, close, cancel, reopen, tickets; what a closed
order means for the customer's page, uploads, reminders and the daily digest."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from conftest import links_for
from mail_helpers import flush, make_customer, to
from order_helpers import CHUNK_TYPE, PDF, TUS, announce
from portal_helpers import signed_in_customer
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    admin_fixture,
    clerk_fixture,
    field_error,
    typed_value,
)

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import AuditEntry, Order, PortalLogin, SystemDefault, Ticket
from shared.notify.digest import collect, local_now
from shared.orders.orders import add_ticket, create_order, set_order_state


def new_order(clerk, **fields):
    form = {
        "project_no": "A-100",
        "customer_no": "K1",
        "job_description": "Flyer A5",
        "due_date": "2026-12-24",
        "contact_email": "",
        "owner": "carl",
    }
    return clerk.post("/staff/new-order", htmx=True, **(form | fields))


def order_page(clerk, project_no: str = "A-100") -> str:
    response = clerk.get(f"/staff/orders/{project_no}")
    assert response.status_code == 200
    return response.text


# --- create ----------------------------------------------------------------------------


def test_staff_create_an_order_with_owner_and_the_customer_gets_the_activation_mail(
    app, clerk, mailserver
):
    make_customer("K1", portal_enabled=True)

    response = new_order(clerk)

    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/staff/orders/A-100"
    order = Order.get(Order.project_no == "A-100")
    assert order.owner.username == "carl"
    assert order.due_date == date(2026, 12, 24) and order.job_description == "Flyer A5"
    assert PortalLogin.get().state == "active"
    [mail] = to(mailserver, "info@k1.example")
    assert "A-100" in mail.message["Subject"]
    page = order_page(clerk)
    assert "The activation mail is on its way to the customer." in page
    assert '<dd id="order-owner">Carl</dd>' in page
    entry = AuditEntry.get(AuditEntry.action == "order.create")
    assert entry.actor_name == "carl" and "owner: None → carl" in entry.detail


def test_new_order_problems_are_shown_inline_and_nothing_is_written(app, clerk):
    make_customer("K1", portal_enabled=True)

    html = new_order(
        clerk,
        project_no="A 100",
        customer_no="",
        due_date="24.12.2026",
        contact_email="nobody",
        job_description="Plakat",
    ).text

    assert html.lstrip().startswith('<form id="order-new-form"')
    assert field_error(html, "customer_no") == "Please fill this in."
    assert field_error(html, "due_date") == "A date like 2026-12-31."
    assert field_error(html, "contact_email") == "This is not an email address."
    assert typed_value(html, "due_date") == "24.12.2026"
    assert "Plakat</textarea>" in html
    assert not Order.select().exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"project_no": "A 100"}, "project_no", "letters, digits"),
        ({"customer_no": "K404"}, "customer_no", "There is no customer with this number."),
        ({"owner": "niemand"}, "owner", "Please choose an active staff user."),
    ],
)
def test_domain_refusals_name_their_field(app, clerk, fields, field, message):
    make_customer("K1", portal_enabled=True)
    html = new_order(clerk, **fields).text
    assert message in field_error(html, field)
    assert not Order.select().exists()


def test_duplicate_order_number_is_refused_and_nothing_half_written(app, clerk, mailserver):
    make_customer("K1", portal_enabled=True)
    make_customer("K2", portal_enabled=True)
    assert new_order(clerk).status_code == 204
    mails = len(mailserver.received)

    html = new_order(clerk, customer_no="K2", contact_email="neu@k2.example").text

    assert field_error(html, "project_no") == "An order with this number exists already."
    assert Order.select().count() == 1
    # The second customer got neither a login, nor a contact, nor a mail.
    assert PortalLogin.select().count() == 1
    assert len(mailserver.received) == mails
    assert AuditEntry.select().where(AuditEntry.action == "order.create").count() == 1


def test_a_customer_without_any_address_is_refused_with_advice(app, clerk):
    make_customer("K1", portal_enabled=True, email="")
    html = new_order(clerk).text
    assert "no address for the portal access" in field_error(html, "contact_email")
    assert not Order.select().exists() and not PortalLogin.select().exists()


# --- edit, owner, state --------------------------------------------------------------------


@pytest.fixture
def order(app, settings) -> Order:
    make_customer("K1", portal_enabled=True)
    order, _ = create_order(settings, links_for(settings), project_no="A-100", customer_no="K1")
    return order


def test_edit_the_order_and_set_the_owner(app, clerk, admin, order):
    html = clerk.post(
        "/staff/orders/A-100/edit",
        htmx=True,
        job_description="Plakat A1",
        due_date="2027-01-15",
        contact_email="anna@k1.example",
        owner="ada",
    ).text

    assert html.lstrip().startswith('<section class="card" id="order-details">')
    assert "The order was saved." in html
    order = Order.get_by_id(order.id)
    assert (order.job_description, order.due_date) == ("Plakat A1", date(2027, 1, 15))
    assert order.contact.email == "anna@k1.example" and order.owner.username == "ada"
    entry = AuditEntry.get(AuditEntry.action == "order.update")
    assert "owner: None → ada" in entry.detail and "job_description:  → Plakat A1" in entry.detail

    clerk.post("/staff/orders/A-100/edit", htmx=True, owner="", due_date="", contact_email="")
    order = Order.get_by_id(order.id)
    assert order.owner_id is None and order.due_date is None and order.contact_id is None


def test_bad_edits_are_refused_inline(app, clerk, order):
    html = clerk.post(
        "/staff/orders/A-100/edit", htmx=True, due_date="morgen", owner="niemand"
    ).text
    assert field_error(html, "due_date") == "A date like 2026-12-31."
    assert "<details open>" in html
    assert Order.get_by_id(order.id).due_date is None


def test_a_disabled_staff_user_cannot_become_owner(app, clerk, admin, order):
    with write_transaction():
        admin.user.active = False
        admin.user.save()
    html = clerk.post("/staff/orders/A-100/edit", htmx=True, owner="ada").text
    assert field_error(html, "owner") == "Please choose an active staff user."
    assert Order.get_by_id(order.id).owner_id is None


def test_close_cancel_and_reopen(app, clerk, order):
    html = clerk.post("/staff/orders/A-100/state", htmx=True, state="closed").text
    assert "The order is closed" in html
    assert Order.get_by_id(order.id).state == "closed"
    assert Order.get_by_id(order.id).closed_at is not None
    clerk.post("/staff/orders/A-100/state", htmx=True, state="cancelled")
    assert Order.get_by_id(order.id).state == "cancelled"
    clerk.post("/staff/orders/A-100/state", htmx=True, state="open")
    order = Order.get_by_id(order.id)
    assert order.state == "open" and order.closed_at is None
    details = [e.detail for e in AuditEntry.select().where(AuditEntry.action == "order.state")]
    assert details == ["open → closed", "closed → cancelled", "cancelled → open"]
    assert clerk.post("/staff/orders/A-100/state", state="weg").status_code == 400


def test_the_order_list_filters_by_state_owner_and_customer(app, clerk, settings):
    links = links_for(settings)
    make_customer("K1")
    make_customer("K2")
    for number, customer in (("A-1", "K1"), ("A-2", "K1"), ("B-1", "K2")):
        create_order(settings, links, project_no=number, customer_no=customer)
    clerk.post("/staff/orders/A-2/edit", owner="carl")
    set_order_state("B-1", "cancelled")

    def listed(**query) -> list[str]:
        html = clerk.get("/staff/orders/", htmx=True, **query).text
        return re.findall(r'/staff/orders/([\w-]+)"', html)

    assert listed() == ["B-1", "A-2", "A-1"]
    assert listed(state="cancelled") == ["B-1"]
    assert listed(owner="carl") == ["A-2"]
    assert listed(owner="-") == ["B-1", "A-1"]
    assert listed(customer="K1") == ["A-2", "A-1"]
    assert listed(q="B-") == ["B-1"]
    page = clerk.get("/staff/orders/").text
    assert 'data-state="cancelled"' in page and "Order cancelled" in page


# --- tickets -----------------------------------------------------------------------------------


def test_add_tickets_in_the_ui(app, clerk, order):
    html = clerk.post(
        "/staff/orders/A-100/tickets", htmx=True, ticket_no="T1", title="Korrektur"
    ).text
    assert html.lstrip().startswith('<section class="card" id="tickets">')
    assert "The ticket T1 was added." in html and "Korrektur" in html

    again = clerk.post("/staff/orders/A-100/tickets", htmx=True, ticket_no="T1").text
    assert field_error(again, "ticket_no", "ticket-") == (
        "This order has a ticket with this number already."
    )
    empty = clerk.post("/staff/orders/A-100/tickets", htmx=True, ticket_no=" ", title="x").text
    assert field_error(empty, "ticket_no", "ticket-") == "Please fill this in."
    assert [t.ticket_no for t in Ticket.select()] == ["T1"]
    assert "T1" in order_page(clerk)


# --- what closing means for the customer ------------------------------------------------------


@pytest.fixture
def customer(client, api, mailserver):
    return signed_in_customer(client, api, mailserver, "K1", "A1")


def test_the_customer_sees_tickets_and_a_closed_order_as_closed(app, client, customer):
    add_ticket("A1", "T7", "Nachdruck")
    open_page = client.get("/orders/A1").text
    assert 'id="upload"' in open_page and "T7" in open_page and "Nachdruck" in open_page

    set_order_state("A1", Order.STATE_CLOSED)

    page = client.get("/orders/A1").text
    assert 'id="order-closed"' in page and "This order is closed." in page
    assert 'id="upload"' not in page
    listing = client.get("/orders").text
    assert "Order closed" in listing


def test_what_the_portal_shows_follows_the_system_defaults(app, client, customer):
    add_ticket("A1", "T7", "Nachdruck")
    with write_transaction():
        SystemDefault.update(
            show_tickets=False, show_job_description=False, show_due_date=False
        ).execute()
    page = client.get("/orders/A1").text
    assert "Nachdruck" not in page and "Job description" not in page and "Due date" not in page
    assert "Job description" not in client.get("/orders").text


def test_a_closed_order_refuses_uploads_with_a_clear_message(app, client, customer):
    set_order_state("A1", Order.STATE_CANCELLED)

    response = announce(client, customer.headers, "A1", "spaet.pdf", len(PDF))

    assert response.status_code == 403
    assert response.get_json()["error"] == (
        "This order is closed: it takes no more uploads. Please contact the print shop."
    )
    plain = client.post(
        "/orders/A1/files",
        data={"file": (io.BytesIO(PDF), "spaet.pdf"), "csrf_token": customer.csrf_token},
        headers=customer.headers,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "it takes no more uploads" in plain.text


def test_an_upload_started_before_closing_cannot_be_finished(app, client, customer):
    started = announce(client, customer.headers, "A1", "halb.pdf", len(PDF))
    assert started.status_code == 201
    set_order_state("A1", Order.STATE_CLOSED)

    response = client.patch(
        started.headers["Location"],
        data=PDF,
        headers=TUS | customer.headers | {"Upload-Offset": "0"},
        content_type=CHUNK_TYPE,
    )

    assert response.status_code == 403
    assert "no more uploads" in response.get_json()["error"]


def test_staff_still_place_files_into_a_closed_order(app, clerk, customer):
    set_order_state("A1", Order.STATE_CLOSED)
    response = announce(clerk.client, clerk.headers, "A1", "final.pdf", len(PDF), folder="Final")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "ini_overrides", [{"workflow": {"portal_reminder_email_automatically": 2}}], indirect=True
)
def test_closed_orders_get_no_upload_requests(app, settings, mailserver, customer):
    flush(settings)
    set_order_state("A1", Order.STATE_CLOSED)
    add_ticket("A1", "T1", "Korrektur")

    flush(settings)

    assert not [m for m in mailserver.received if "hochladen" in m.message["Subject"]]


def test_closed_and_cancelled_orders_leave_the_digest(app, settings):
    today = local_now(settings, utcnow()).date()
    make_customer("K1", portal_enabled=True)
    links = links_for(settings)
    for number in ("A-OPEN", "A-CLOSED", "A-CANCELLED"):
        create_order(settings, links, project_no=number, customer_no="K1")
        with write_transaction():
            Order.update(due_date=today + timedelta(days=1)).where(
                Order.project_no == number
            ).execute()
    set_order_state("A-CLOSED", Order.STATE_CLOSED)
    set_order_state("A-CANCELLED", Order.STATE_CANCELLED)

    listed = [item.order.project_no for item in collect(settings, today, utcnow())]

    assert listed == ["A-OPEN"]
