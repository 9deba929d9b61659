"""Several people per customer: more than one portal login, each with its own username,
password, address and activation, all seeing the customer's orders; and the language a
login reads, recorded for its mails."""

from __future__ import annotations

from conftest import activation_link_in, csrf_from
from portal_helpers import PASSWORD, signed_in_customer

from shared.accounts.customers import get_customer
from shared.accounts.logins import create_login, logins_of, primary_login, set_login_state
from shared.db import write_transaction
from shared.mail.bounces import mark_bounced
from shared.models import Activation, Order, PortalLogin
from shared.notify.activation import activation_recipient, request_new_link, send_activation_mail
from shared.orders.orders import order_summary

BASE_URL = "http://portal.test"


def second_login(settings, customer_no: str = "K1", email: str = "grafik@agentur.example"):
    with write_transaction():
        login = create_login(get_customer(customer_no), "agentur", email=email)
        set_login_state(settings, login, PortalLogin.STATE_ACTIVE)
    return login


def sign_in_with_link(app, link: str, username: str):
    browser = app.test_client()
    path = link.removeprefix(BASE_URL)
    token = csrf_from(browser.get(path).text)
    form = {"password": PASSWORD, "password_confirm": PASSWORD, "csrf_token": token}
    assert browser.post(path, data=form).status_code == 302
    token = csrf_from(browser.get("/login").text)
    form = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert browser.post("/login", data=form).status_code == 302
    return browser


def test_two_people_of_one_customer_each_sign_in_and_see_its_orders(
    app, client, api, mailserver, settings, links
):
    signed_in_customer(client, api, mailserver, "K1", "A1")
    login = second_login(settings)
    with write_transaction():
        mail = send_activation_mail(settings, links, login)
    assert mail.recipients == "grafik@agentur.example"
    app.extensions["ptportal.tasks"].deliver_soon()

    agency = sign_in_with_link(app, activation_link_in(mailserver), "agentur")

    assert agency.get("/orders/A1").status_code == 200
    assert client.get("/orders/A1").status_code == 200
    checked = {row.login.username: row.checked for row in Activation.select()}
    assert checked == {"k1": 1, "agentur": 1}
    # One of them leaving does not lock out the other.
    with write_transaction():
        set_login_state(settings, PortalLogin.get(PortalLogin.username == "k1"), "inactive")
    assert client.get("/orders/A1").status_code == 302
    assert agency.get("/orders/A1").status_code == 200


def test_the_default_stays_one_login_per_customer(app, api, mailserver):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    for number in ("A1", "A2", "A3"):
        api.post("/customers", {"customer_no": "K1", "portal_enabled": True})
        api.post("/orders", {"project_no": number, "customer_no": "K1"})
    customer = get_customer("K1")
    assert [login.username for login in logins_of(customer)] == ["k1"]


def test_the_order_state_lists_every_login(app, api, mailserver, settings):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    api.post("/customers", {"customer_no": "K1", "portal_enabled": True})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1"})
    second_login(settings)

    summary = order_summary(Order.get())

    assert summary["portal_login"]["username"] == "k1"
    assert [login["username"] for login in summary["portal_logins"]] == ["k1", "agentur"]


def test_an_additional_login_gets_its_link_at_its_own_address_first(app, api, mailserver, settings):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    api.post("/customers", {"customer_no": "K1", "portal_enabled": True})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1", "contact_email": "c@x.example"})
    login = second_login(settings)
    order = Order.get()

    addressee = activation_recipient(login, order)
    assert (addressee.email, addressee.reason) == (
        "grafik@agentur.example",
        "the login's own address",
    )

    with write_transaction():
        mark_bounced("grafik@agentur.example", "5.1.1 user unknown", None)
    fallback = activation_recipient(login, order)
    assert fallback.email == "c@x.example"
    assert "the login's own address grafik@agentur.example is on the bounce list" in fallback.reason


def test_a_renewal_of_the_first_login_does_not_go_to_another_persons_address(
    app, api, mailserver, settings, links
):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    api.post("/customers", {"customer_no": "K1", "portal_enabled": True})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1"})
    login = second_login(settings)
    with write_transaction():
        send_activation_mail(settings, links, login)  # the newest activation mail

    assert request_new_link(settings, links, "k1") is True

    first = primary_login(get_customer("K1"))
    assert activation_recipient(first, None).email == "k@x.example"
    app.extensions["ptportal.tasks"].deliver_soon()
    assert mailserver.received[-1].rcpt_tos == ["k@x.example"]


def test_request_a_new_link_for_an_additional_login(app, client, api, mailserver, settings):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    api.post("/customers", {"customer_no": "K1", "portal_enabled": True})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1"})
    second_login(settings)
    token = csrf_from(client.get("/activate").text)

    client.post("/activate", data={"username": "AGENTUR", "csrf_token": token})

    assert mailserver.received[-1].rcpt_tos == ["grafik@agentur.example"]


# --- the language a login reads --------------------------------------------------------------


def test_the_browser_language_at_sign_in_is_recorded_and_used_for_mails(
    app, api, mailserver, settings, links
):
    api.post("/customers", {"customer_no": "K1", "name": "K", "email": "k@x.example"})
    api.post("/customers", {"customer_no": "K1", "portal_enabled": True, "language": "de"})
    api.post("/orders", {"project_no": "A1", "customer_no": "K1"})
    browser = app.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr-CH, fr;q=0.9, en;q=0.5"
    path = activation_link_in(mailserver).removeprefix(BASE_URL)
    token = csrf_from(browser.get(path).text)
    browser.post(
        path, data={"password": PASSWORD, "password_confirm": PASSWORD, "csrf_token": token}
    )
    token = csrf_from(browser.get("/login").text)
    browser.post("/login", data={"username": "k1", "password": PASSWORD, "csrf_token": token})

    assert PortalLogin.get().language == "fr"

    browser.get("/orders?lang=en")
    assert PortalLogin.get().language == "en"
    request_new_link(settings, links, "k1")
    app.extensions["ptportal.tasks"].deliver_soon()
    assert mailserver.received[-1].message["Subject"] == "Your access to the upload portal"

    browser.get("/orders?lang=de")
    assert PortalLogin.get().language == "de"


def test_staff_language_switch_records_nothing_for_customers(app, mailserver):
    from staff_helpers import signed_in_staff

    staff = signed_in_staff(app, app.config["PTPORTAL_SETTINGS"], "erna", admin=False)
    assert staff.get("/staff/", lang="en").status_code == 200
    assert not PortalLogin.select().exists()
