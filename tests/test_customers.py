"""Staff pages for customers: list and search, create and edit, contacts, portal logins."""

from __future__ import annotations

import re

import pytest
from conftest import activation_link_in, csrf_from
from portal_helpers import PASSWORD
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    admin_fixture,
    clerk_fixture,
    field_error,
    typed_value,
)

from shared.accounts.customers import create_customer
from shared.db import write_transaction
from shared.models import (
    Activation,
    AuditEntry,
    Contact,
    Customer,
    NotificationRule,
    Order,
    PortalLogin,
)
from shared.paging import PER_PAGE

BASE_URL = "http://portal.test"


def new_customer(clerk, **fields):
    form = {
        "customer_no": "K1",
        "name": "Druckhaus Nord",
        "email": "info@nord.example",
        "language": "de",
        "portal_enabled": "1",
        "create_hotfolder": "1",
        "hotfolder_delete_after_days": "30",
    }
    return clerk.post("/staff/new-customer", htmx=True, **(form | fields))


def customer_page(clerk, customer_no: str = "K1") -> str:
    response = clerk.get(f"/staff/customers/{customer_no}")
    assert response.status_code == 200
    return response.text


# --- list ----------------------------------------------------------------------------


def test_customer_list_pages_and_searches(app, clerk):
    for number in range(PER_PAGE + 3):
        create_customer(f"K{number:03d}", name=f"Kunde {number}", email=f"k{number}@x.example")
    create_customer("Z9", name="Zebra Druck")

    first = clerk.get("/staff/customers/").text
    assert first.count('<tr id="customer-') == PER_PAGE
    assert "Page 1 of 2" in first

    second = clerk.get("/staff/customers/", page=2, htmx=True)
    assert second.text.lstrip().startswith('<div id="customer-list">')
    assert "<html" not in second.text
    assert second.text.count('<tr id="customer-') == 4
    assert "Vary" in second.headers and "HX-Request" in second.headers["Vary"]

    found = clerk.get("/staff/customers/", q="zebra", htmx=True).text
    assert "Zebra Druck" in found and found.count('<tr id="customer-') == 1
    assert "No customer matches" in clerk.get("/staff/customers/", q="nichts").text


# --- create and edit -------------------------------------------------------------------


def test_staff_create_a_customer_with_the_form(app, clerk):
    response = new_customer(clerk, language="en", hotfolder_delete_after_days="14")

    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/staff/customers/K1"
    customer = Customer.get(Customer.customer_no == "K1")
    assert (customer.name, customer.email, customer.language) == (
        "Druckhaus Nord",
        "info@nord.example",
        "en",
    )
    assert customer.portal_enabled and customer.create_hotfolder
    assert customer.hotfolder_delete_after_days == 14
    entry = AuditEntry.get(AuditEntry.action == "customer.create")
    assert (entry.actor_kind, entry.actor_name, entry.customer_no) == ("staff", "carl", "K1")
    assert "Druckhaus Nord" in customer_page(clerk)


def test_the_new_customer_form_starts_from_the_system_defaults(app, clerk, admin):
    admin.post(
        "/staff/defaults/",
        username_from="customer_no",
        login_state="inactive",
        hotfolder_delete_after_days="90",
        apply_to="new",
    )
    page = clerk.get("/staff/new-customer").text
    assert typed_value(page, "hotfolder_delete_after_days") == "90"
    assert 'id="create_hotfolder" name="create_hotfolder" value="1" checked' not in page


def test_bad_input_is_answered_inline_keeping_what_was_typed(app, clerk):
    response = new_customer(
        clerk,
        customer_no="K 1/..",
        name="",
        email="nicht-eine-adresse",
        hotfolder_delete_after_days="-3",
    )

    assert response.status_code == 200  # htmx swaps only 2xx
    html = response.text
    assert html.lstrip().startswith('<form id="customer-form"')
    assert field_error(html, "name") == "Please fill this in."
    assert field_error(html, "email") == "This is not an email address."
    assert field_error(html, "hotfolder_delete_after_days") == "A whole number from 0 to 3650."
    assert typed_value(html, "email") == "nicht-eine-adresse"
    assert typed_value(html, "customer_no") == "K 1/.."
    assert 'aria-invalid="true"' in html
    assert not Customer.select().exists()
    assert not AuditEntry.select().where(AuditEntry.action == "customer.create").exists()


def test_number_format_is_refused_next_to_the_field(app, clerk):
    html = new_customer(clerk, customer_no="K 1/..").text
    assert "letters, digits" in field_error(html, "customer_no")
    assert not Customer.select().exists()


def test_a_plain_post_with_problems_gets_the_whole_page_with_422(app, clerk):
    response = clerk.post("/staff/new-customer", customer_no="K1", name="", language="de")
    assert response.status_code == 422
    assert "<html" in response.text and "Please fill this in." in response.text


def test_duplicate_customer_number_is_refused_and_nothing_changes(app, clerk):
    create_customer("K1", name="Original", email="alt@x.example")

    html = new_customer(clerk, name="Doppelt").text

    assert field_error(html, "customer_no") == "A customer with this number exists already."
    assert typed_value(html, "name") == "Doppelt"
    assert Customer.get(Customer.customer_no == "K1").name == "Original"
    assert Customer.select().count() == 1


def test_edit_a_customer_inline(app, clerk):
    create_customer("K1", name="Alt", email="alt@x.example")
    form = {
        "customer_no": "K1",
        "name": "Neu GmbH",
        "email": "neu@x.example",
        "language": "fr",
        "hotfolder_delete_after_days": "0",
    }

    response = clerk.post("/staff/customers/K1", htmx=True, **form)

    assert response.status_code == 200
    assert "The customer&#39;s details were saved." in response.text
    customer = Customer.get(Customer.customer_no == "K1")
    assert (customer.name, customer.language, customer.portal_enabled) == ("Neu GmbH", "fr", False)
    assert customer.hotfolder_delete_after_days == 0
    entry = AuditEntry.get(AuditEntry.action == "customer.update")
    assert "name: Alt → Neu GmbH" in entry.detail and "language: de → fr" in entry.detail


def test_customer_number_changes_only_while_there_are_no_orders(app, clerk, settings, links):
    from shared.orders.orders import create_order

    create_customer("K1", name="Kunde")
    form = {"name": "Kunde", "language": "de", "hotfolder_delete_after_days": "30"}
    moved = clerk.post("/staff/customers/K1", htmx=True, customer_no="K2", **form)
    assert moved.headers["HX-Redirect"] == "/staff/customers/K2"
    create_order(settings, links, project_no="A1", customer_no="K2")

    html = clerk.post("/staff/customers/K2", htmx=True, customer_no="K3", **form).text

    assert "cannot change" in field_error(html, "customer_no")
    assert Customer.get_by_id(1).customer_no == "K2"
    assert 'name="customer_no" type="text" value="K2" readonly' in customer_page(clerk, "K2")


def test_unknown_customer_is_404(app, clerk):
    assert clerk.get("/staff/customers/NOPE").status_code == 404
    assert clerk.post("/staff/customers/NOPE/contacts", email="a@b.example").status_code == 404


# --- contacts ---------------------------------------------------------------------------


def test_contacts_with_one_favorite(app, clerk):
    create_customer("K1", name="Kunde")
    first = clerk.post(
        "/staff/customers/K1/contacts", htmx=True, email="anna@x.example", name="Anna"
    )
    assert first.text.lstrip().startswith('<section class="card" id="contacts">')
    clerk.post("/staff/customers/K1/contacts", htmx=True, email="ben@x.example", favorite="1")
    anna = Contact.get(Contact.email == "anna@x.example")

    html = clerk.post(f"/staff/customers/K1/contacts/{anna.id}/favorite", htmx=True).text

    assert "anna@x.example is now the favorite contact." in html
    favorites = [c.email for c in Contact.select().where(Contact.favorite == True)]  # noqa: E712
    assert favorites == ["anna@x.example"]

    html = clerk.post(f"/staff/customers/K1/contacts/{anna.id}/delete", htmx=True).text
    assert "The contact anna@x.example was removed." in html
    assert [c.email for c in Contact.select()] == ["ben@x.example"]
    actions = [e.action for e in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions.count("customer.contact_save") == 3
    assert actions[-1] == "customer.contact_delete"


def test_a_bad_contact_address_is_refused_inline(app, clerk):
    create_customer("K1", name="Kunde")
    html = clerk.post("/staff/customers/K1/contacts", htmx=True, email="x", name="Xaver").text
    assert field_error(html, "email", "contact-") == "This is not an email address."
    assert typed_value(html, "name", "contact-") == "Xaver"
    assert not Contact.select().exists()


def test_a_contact_of_another_customer_is_404(app, clerk):
    create_customer("K1", name="Eins")
    create_customer("K2", name="Zwei")
    clerk.post("/staff/customers/K2/contacts", email="z@x.example")
    other = Contact.get()
    assert clerk.post(f"/staff/customers/K1/contacts/{other.id}/delete").status_code == 404
    assert Contact.select().count() == 1


# --- portal logins --------------------------------------------------------------------------


def portal_customer(number: str = "K1") -> Customer:
    with write_transaction():
        return create_customer(
            number, name="Kunde", email=f"{number.lower()}@x.example", portal_enabled=True
        )


def test_create_a_login_from_the_defaults_and_send_the_link(app, clerk, mailserver):
    portal_customer()

    html = clerk.post(
        "/staff/customers/K1/logins", htmx=True, state="active", send_link="1", language=""
    ).text

    assert "The portal login k1 was created." in html
    assert "A new activation link for k1 goes to k1@x.example." in html
    login = PortalLogin.get()
    assert (login.username, login.state) == ("k1", "active")
    assert mailserver.received[-1].rcpt_tos == ["k1@x.example"]
    assert "/activate/" in activation_link_in(mailserver)
    assert re.search(r'<tr id="login-\d+" data-state="active">', html)


def test_activation_is_shown_checked_with_its_time_after_the_first_sign_in(
    app, clerk, client, mailserver
):
    portal_customer()
    clerk.post("/staff/customers/K1/logins", state="active", send_link="1", language="")
    assert "not yet" in customer_page(clerk)
    path = activation_link_in(mailserver).removeprefix(BASE_URL)
    token = csrf_from(client.get(path).text)
    client.post(
        path, data={"password": PASSWORD, "password_confirm": PASSWORD, "csrf_token": token}
    )
    token = csrf_from(client.get("/login").text)
    signed_in = client.post(
        "/login", data={"username": "k1", "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 302

    page = customer_page(clerk)

    activation = Activation.get()
    assert activation.checked == 1 and activation.updated is not None
    row = re.search(r'<tr id="login-\d+".*?</tr>', page, re.S).group(0)
    assert "checked" in row


def test_deactivating_a_login_signs_it_out(app, clerk, client, api, mailserver):
    from portal_helpers import signed_in_customer

    signed_in_customer(client, api, mailserver, "K1", "A1")
    assert client.get("/orders").status_code == 200
    login = PortalLogin.get()

    html = clerk.post(
        f"/staff/customers/K1/logins/{login.id}/state", htmx=True, state="inactive"
    ).text

    assert "k1 is inactive and signed out." in html
    assert client.get("/orders").status_code == 302
    states = AuditEntry.select().where(AuditEntry.action == "login.state").order_by(AuditEntry.id)
    assert [entry.detail for entry in states] == ["active", "inactive"]
    assert states[-1].actor_name == "carl"


def test_a_new_link_for_an_inactive_login_is_refused_with_a_reason(app, clerk, mailserver):
    portal_customer()
    clerk.post("/staff/customers/K1/logins", state="inactive", language="")
    login = PortalLogin.get()

    html = clerk.post(f"/staff/customers/K1/logins/{login.id}/activation", htmx=True).text

    assert "Set k1 active first" in html
    assert not mailserver.received


def test_a_further_login_needs_its_own_address_and_gets_its_mail_there(app, clerk, mailserver):
    portal_customer()
    clerk.post("/staff/customers/K1/logins", state="active", send_link="1", language="")

    refused = clerk.post(
        "/staff/customers/K1/logins", htmx=True, username="agentur", state="active", language=""
    ).text
    assert field_error(refused, "email", "new-login-") == "Please fill this in."
    assert typed_value(refused, "username", "new-login-") == "agentur"
    assert PortalLogin.select().count() == 1

    html = clerk.post(
        "/staff/customers/K1/logins",
        htmx=True,
        username="agentur",
        email="grafik@agentur.example",
        state="active",
        send_link="1",
        language="en",
    ).text

    assert "A new activation link for agentur goes to grafik@agentur.example." in html
    assert mailserver.received[-1].rcpt_tos == ["grafik@agentur.example"]
    assert "Your access to the upload portal" in mailserver.received[-1].message["Subject"]
    assert PortalLogin.select().where(PortalLogin.customer == Customer.get()).count() == 2


def test_a_taken_username_is_refused_and_nothing_is_written(app, clerk):
    portal_customer("K1")
    portal_customer("K2")
    clerk.post("/staff/customers/K1/logins", username="nord", state="inactive", language="")

    html = clerk.post(
        "/staff/customers/K2/logins", htmx=True, username="NORD", state="inactive", language=""
    ).text

    assert field_error(html, "username", "new-login-") == "This username is taken."
    assert PortalLogin.select().count() == 1
    assert AuditEntry.select().where(AuditEntry.action == "login.create").count() == 1


def test_a_new_login_whose_link_has_nowhere_to_go_is_not_created(app, clerk, mailserver):
    with write_transaction():
        create_customer("K1", name="Ohne Adresse", portal_enabled=True)

    html = clerk.post(
        "/staff/customers/K1/logins", htmx=True, state="active", send_link="1", language=""
    ).text

    assert "no usable address" in field_error(html, "send_link", "new-login-")
    assert not PortalLogin.select().exists()


def test_adjust_a_login(app, clerk):
    portal_customer()
    clerk.post("/staff/customers/K1/logins", state="inactive", language="")
    login = PortalLogin.get()

    html = clerk.post(
        f"/staff/customers/K1/logins/{login.id}",
        htmx=True,
        username="nord-druck",
        email="druck@nord.example",
        language="en",
    ).text

    assert "The portal login nord-druck was saved." in html
    login = PortalLogin.get()
    assert (login.username, login.email, login.language) == (
        "nord-druck",
        "druck@nord.example",
        "en",
    )
    bad = clerk.post(
        f"/staff/customers/K1/logins/{login.id}", htmx=True, username="mit leer", language=""
    ).text
    assert "without spaces" in field_error(bad, "username", f"login-{login.id}-")
    assert PortalLogin.get().username == "nord-druck"


def test_the_customer_page_links_its_notification_overrides(app, clerk):
    customer = portal_customer()
    NotificationRule.create(kind="upload_received", customer=customer, template_name="x")

    page = customer_page(clerk)

    assert "/staff/mail/events/upload_received/customers/K1" in page
    row = re.search(r"Upload received</td>.*?</tr>", page, re.S).group(0)
    assert "own settings" in row


@pytest.mark.parametrize("path", ["/staff/customers/", "/staff/new-customer"])
def test_customer_pages_need_a_staff_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


def test_orders_of_the_customer_are_one_click_away(app, clerk, settings, links):
    from shared.orders.orders import create_order

    portal_customer()
    create_order(settings, links, project_no="A1", customer_no="K1")
    page = customer_page(clerk)
    assert "/staff/orders/?customer=K1" in page
    listing = clerk.get("/staff/orders/", customer="K1").text
    assert "A1" in listing and Order.select().count() == 1
