"""What a new order sets in motion (SPEC §Behaviour 1–2, 4, 6), through the real API.

Mail goes through the real outbox to the real SMTP server (``mailserver``); the
app delivers at once, so a mail is in ``mailserver.received`` when the request returns.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from shared.accounts.logins import set_login_state, set_password_with_token, sign_in, token_state
from shared.db import write_transaction
from shared.files.folders import ORDER_FOLDERS
from shared.models import Activation, Contact, Customer, Order, OutboxMail, PortalLogin
from shared.orders.orders import (
    ACTION_ACTIVATION_QUEUED,
    ACTION_FOLDERS_CREATED,
    ACTION_LOGIN_ACTIVATED,
    ACTION_LOGIN_CREATED,
)

LINK_PREFIX = "http://portal.test/activate/"
PASSWORD = "Blaue Druckplatte 77!"


@pytest.fixture
def ini_overrides(request) -> dict:
    """client.ini changes from ``parametrize(..., indirect=True)``; none by default."""
    return getattr(request, "param", {})


def switches(create: int, send: int) -> dict:
    return {
        "workflow": {
            "portal_create_uplogin_automatically": create,
            "portal_send_uplogin_email_automatically": send,
        }
    }


BOTH_ON = switches(1, 1)


def add_customer(api, customer_no: str = "K1", **fields) -> None:
    body = {
        "customer_no": customer_no,
        "name": "Druckhaus Nord",
        "email": "info@nord.example",
        "portal_enabled": True,
    }
    response = api.post("/customers", body | fields)
    assert response.status_code in (200, 201), response.get_json()


def new_order(api, project_no: str = "A-1", customer_no: str = "K1", **fields) -> dict:
    body = {
        "project_no": project_no,
        "customer_no": customer_no,
        "job_description": "Flyer A5",
        "due_date": "2026-12-31",
    }
    response = api.post("/orders", body | fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def folders_exist(settings, project_no: str, customer_no: str = "K1") -> bool:
    base = settings.storage.order_root / customer_no / project_no
    return all((base / folder).is_dir() for folder in ORDER_FOLDERS)


def login() -> PortalLogin | None:
    return PortalLogin.select().first()


def text_of(received) -> str:
    return received.message.get_body(preferencelist=("plain",)).get_content()


def link_in(received) -> str:
    line = next(line for line in text_of(received).splitlines() if "/activate/" in line)
    return line.strip()


def token_in(received) -> str:
    """The activation token of the link, without the ``?lang=`` query."""
    return urlsplit(link_in(received)).path.removeprefix("/activate/")


# --- the switches --------------------------------------------------------------------


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_both_switches_on_create_login_send_mail_activate_and_create_folders(
    api, settings, mailserver
):
    add_customer(api)
    body = new_order(api)

    assert body["actions"] == [
        ACTION_LOGIN_CREATED,
        ACTION_ACTIVATION_QUEUED,
        ACTION_LOGIN_ACTIVATED,
        ACTION_FOLDERS_CREATED,
    ]
    assert body["portal_login"] == {"username": "k1", "state": "active", "activated": False}
    assert body["folders_created"] is True
    assert folders_exist(settings, "A-1")
    activation = Activation.get(Activation.login == login())
    assert (activation.checked, activation.updated) == (0, None)

    assert len(mailserver.received) == 1
    mail = mailserver.received[0]
    assert mail.rcpt_tos == ["info@nord.example"]
    assert mail.mail_from == "portal@testdruck.example"
    assert OutboxMail.get().status == OutboxMail.STATUS_SENT


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_activation_mail_content(api, mailserver):
    add_customer(api)
    new_order(api, "2026-0815", job_description="Broschüre A4, 16 Seiten")

    message = mailserver.received[0].message
    assert message["Subject"] == "[Auftrag 2026-0815] Ihr Zugang zum Upload-Portal"
    assert message["To"] == "info@nord.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]

    text = text_of(mailserver.received[0])
    html = message.get_body(preferencelist=("html",)).get_content()
    link = link_in(mailserver.received[0])
    assert link.startswith(LINK_PREFIX)
    assert "Benutzername: k1" in text
    assert "Auftrag: 2026-0815" in text
    assert "Broschüre A4, 16 Seiten" in text
    assert "31.12.2026" in text
    assert "{{" not in text  # every placeholder was filled
    assert f'href="{link}"' in html
    assert "Testdruck" in text  # the signature frames the mail

    # The link is live: a valid, unused token for this login.
    assert link.endswith("?lang=de")
    state, row = token_state(token_in(mailserver.received[0]))
    assert state.value == "valid"
    assert row.login.username == "k1"


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_activation_mail_in_the_customers_language(api, mailserver):
    add_customer(api, language="en")
    new_order(api)
    message = mailserver.received[0].message
    assert message["Subject"] == "[Order A-1] Your access to the upload portal"
    assert "Your username: k1" in text_of(mailserver.received[0])


@pytest.mark.parametrize("ini_overrides", [switches(1, 0)], indirect=True)
def test_create_only_makes_an_inactive_login_and_nothing_else(api, settings, mailserver):
    add_customer(api)
    body = new_order(api)

    assert body["actions"] == [ACTION_LOGIN_CREATED]
    assert body["portal_login"] == {"username": "k1", "state": "inactive", "activated": False}
    assert Activation.select().count() == 1
    assert OutboxMail.select().count() == 0
    assert mailserver.received == []
    assert not (settings.storage.order_root / "K1").exists()


@pytest.mark.parametrize("ini_overrides", [switches(0, 1), switches(0, 0)], indirect=True)
def test_without_create_switch_no_login_appears(api, settings, mailserver):
    add_customer(api)
    body = new_order(api)

    assert body["actions"] == []
    assert body["portal_login"] is None
    assert PortalLogin.select().count() == 0
    assert OutboxMail.select().count() == 0
    assert mailserver.received == []
    assert not (settings.storage.order_root / "K1").exists()


@pytest.mark.parametrize(
    "ini_overrides", [switches(1, 1), switches(1, 0), switches(0, 1)], indirect=True
)
def test_customer_not_portal_enabled_gets_nothing(api, settings, mailserver):
    add_customer(api, portal_enabled=False)
    body = new_order(api)

    assert body["actions"] == []
    assert PortalLogin.select().count() == 0
    assert OutboxMail.select().count() == 0
    assert mailserver.received == []
    assert not settings.storage.order_root.joinpath("K1").exists()


@pytest.mark.parametrize("ini_overrides", [switches(0, 1)], indirect=True)
def test_existing_login_is_mailed_and_activated_by_the_send_switch(api, settings, mailserver):
    """With only the send switch on, a login staff created gets the mail with the next order."""
    from shared.accounts.logins import create_login

    add_customer(api)
    with write_transaction():
        create_login(Customer.get(Customer.customer_no == "K1"), username="nord")
    body = new_order(api)

    assert body["actions"] == [
        ACTION_ACTIVATION_QUEUED,
        ACTION_LOGIN_ACTIVATED,
        ACTION_FOLDERS_CREATED,
    ]
    assert "Benutzername: nord" in text_of(mailserver.received[0])
    assert folders_exist(settings, "A-1")


# --- the recipient (SPEC §Behaviour 6) ------------------------------------------------


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
@pytest.mark.parametrize(
    ("order_contact", "expected"),
    [("chosen@nord.example", "chosen@nord.example"), (None, "fav@nord.example")],
)
def test_recipient_is_order_contact_else_favorite(api, mailserver, order_contact, expected):
    add_customer(api)
    api.post("/customers/K1/contacts", {"email": "other@nord.example"})
    api.post("/customers/K1/contacts", {"email": "fav@nord.example", "favorite": True})
    api.post("/customers/K1/contacts", {"email": "late@nord.example"})
    extra = {"contact_email": order_contact} if order_contact else {}
    new_order(api, **extra)

    assert [mail.rcpt_tos for mail in mailserver.received] == [[expected]]
    reason = OutboxMail.get().recipient_reason
    assert reason == ("order contact" if order_contact else "favorite contact")


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_recipient_is_customer_email_without_favorite(api, mailserver):
    add_customer(api)
    api.post("/customers/K1/contacts", {"email": "plain@nord.example"})  # not a favorite
    new_order(api)
    assert mailserver.received[0].rcpt_tos == ["info@nord.example"]
    assert OutboxMail.get().recipient_reason == "customer email"


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_existing_contact_chosen_by_email_is_reused(api, mailserver):
    add_customer(api)
    api.post("/customers/K1/contacts", {"email": "anna@nord.example", "name": "Anna"})
    body = new_order(api, contact_email="Anna@Nord.example")
    assert body["contact_email"] == "anna@nord.example"
    assert Contact.select().count() == 1
    assert mailserver.received[0].rcpt_tos == ["anna@nord.example"]


# --- customers without any address -----------------------------------------------------


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_customer_without_address_is_refused_and_nothing_is_written(api, settings, mailserver):
    add_customer(api, email="")
    tables = (Order, PortalLogin, Activation, Contact, OutboxMail)
    before = {model: model.select().count() for model in tables}

    response = api.post("/orders", {"project_no": "A-1", "customer_no": "K1"})

    body = response.get_json()
    assert response.status_code == 400, body
    assert body["field"] == "contact_email"
    assert "K1" in body["error"] and "no usable email address" in body["error"]
    assert {model: model.select().count() for model in tables} == before
    assert mailserver.received == []
    assert not settings.storage.order_root.joinpath("K1").exists()

    # The caller fixes it by naming a contact, and the same request then goes through.
    fixed = new_order(api, contact_email="buyer@nord.example")
    assert fixed["portal_login"]["state"] == "active"
    assert mailserver.received[0].rcpt_tos == ["buyer@nord.example"]
    assert Order.select().count() == 1


@pytest.mark.parametrize("ini_overrides", [switches(1, 0)], indirect=True)
def test_customer_without_address_gets_orders_when_no_mail_is_due(api, mailserver):
    add_customer(api, email="")
    body = new_order(api)
    assert body["actions"] == [ACTION_LOGIN_CREATED]
    assert mailserver.received == []


# --- later orders -------------------------------------------------------------------------


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_deactivated_login_stays_inactive_and_gets_no_mail(api, settings, mailserver):
    add_customer(api)
    new_order(api, "A-1")
    assert len(mailserver.received) == 1
    with write_transaction():
        set_login_state(settings, login(), PortalLogin.STATE_INACTIVE)

    body = new_order(api, "A-2")

    assert body["actions"] == []
    assert body["portal_login"]["state"] == "inactive"
    assert login().state == PortalLogin.STATE_INACTIVE
    assert login().deactivated_at is not None
    assert len(mailserver.received) == 1
    assert OutboxMail.select().count() == 1
    assert not settings.storage.order_root.joinpath("K1", "A-2").exists()
    assert Order.get(Order.project_no == "A-2").folders_created is False


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_activated_customer_gets_folders_but_no_new_mail(app, api, settings, mailserver):
    add_customer(api)
    new_order(api, "A-1")
    token = token_in(mailserver.received[0])
    vault = app.extensions["ptportal.vault"]
    set_password_with_token(vault, token, PASSWORD)
    assert sign_in(vault, "k1", PASSWORD).login is not None
    assert Activation.get().checked == 1

    body = new_order(api, "A-2")

    assert body["actions"] == [ACTION_FOLDERS_CREATED]
    assert body["portal_login"] == {"username": "k1", "state": "active", "activated": True}
    assert folders_exist(settings, "A-2")
    assert len(mailserver.received) == 1
    assert OutboxMail.select().count() == 1


@pytest.mark.parametrize("ini_overrides", [BOTH_ON], indirect=True)
def test_login_not_yet_activated_gets_a_fresh_link_with_the_next_order(api, mailserver):
    add_customer(api)
    new_order(api, "A-1")
    body = new_order(api, "A-2")

    assert body["actions"] == [ACTION_ACTIVATION_QUEUED, ACTION_FOLDERS_CREATED]
    assert len(mailserver.received) == 2
    assert "Auftrag: A-2" in text_of(mailserver.received[1])
    assert link_in(mailserver.received[0]) != link_in(mailserver.received[1])
    assert PortalLogin.select().count() == 1
