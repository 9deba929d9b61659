"""The staff mail pages through the real app: events, editor, preview, outbox, bounces, sending."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import csrf_from
from mail_helpers import make_customer, make_order, text_of, to

from shared.accounts.staff import create_staff
from shared.clock import utcnow
from shared.db import write_transaction
from shared.events import UPLOAD_RECEIVED
from shared.mail.bounces import is_bounced, record_bounce
from shared.models import (
    BouncedAddress,
    EmailSignature,
    EmailTemplate,
    NotificationRule,
    OutboxMail,
    StaffUser,
)
from shared.notify.rules import global_rule

PASSWORD = "Kaffee-Druckmaschine-Montag-42"
HTMX = {"HX-Request": "true"}


class Staff:
    """A signed-in staff browser that posts forms with the CSRF token."""

    def __init__(self, client, user: StaffUser) -> None:
        self.client = client
        self.user = user
        self.token = csrf_from(client.get("/staff/mail/").text)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)


@pytest.fixture
def staff(app, settings) -> Staff:
    user = create_staff(settings, "anna", "Anna Muster", "anna@testdruck.example", True, PASSWORD)
    client = app.test_client()
    token = csrf_from(client.get("/staff/login").text)
    response = client.post(
        "/staff/login", data={"username": "anna", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return Staff(client, user)


@pytest.fixture
def order(app):
    customer = make_customer("K1", email="info@k1.example")
    return make_order(customer, "2024-0815", due=utcnow().date() + timedelta(days=1))


@pytest.mark.parametrize(
    "path",
    [
        "/staff/mail/",
        "/staff/mail/events/upload_received",
        "/staff/mail/templates",
        "/staff/mail/signatures",
        "/staff/mail/outbox",
        "/staff/mail/bounces",
        "/staff/mail/orders/2024-0815/send",
    ],
)
def test_pages_need_a_staff_sign_in(client, order, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


def test_post_without_csrf_token_is_refused(staff):
    response = staff.client.post("/staff/mail/bounces", data={"email": "x@example.com"})
    assert response.status_code == 400
    assert BouncedAddress.select().count() == 0


# --- events ---------------------------------------------------------------------------


def test_event_list_shows_every_event_with_switch_and_template_link(staff):
    page = staff.get("/staff/mail/").text
    for kind in ("login_created", "upload_received", "files_delivered", "deadline_alert"):
        assert f'id="event-{kind}"' in page
    assert "Upload received" in page and "Upload eingegangen" in page
    assert "/staff/mail/templates/" in page


def test_edit_event_rule_and_customer_override(staff, order):
    helper = create_staff(staff_settings(staff), "bert", "Bert", "b@x.example", False, PASSWORD)
    response = staff.post(
        "/staff/mail/events/upload_received",
        {
            "roles": ["owner", "admins"],
            "extra_staff": [str(helper.id)],
            "extra_addresses": "prepress@druckerei.example\nnot-an-address",
            "template_name": "Upload eingegangen",
        },
    )
    assert response.status_code == 422
    assert "is not an email address" in response.text

    response = staff.post(
        "/staff/mail/events/upload_received",
        {
            "roles": ["owner", "admins"],
            "extra_staff": [str(helper.id)],
            "extra_addresses": "prepress@druckerei.example",
            "template_name": "Upload eingegangen",
        },
    )
    assert response.status_code == 302
    rule = global_rule(UPLOAD_RECEIVED)
    assert not rule.active
    assert rule.role_list == ["owner", "admins"]
    assert rule.address_list == ["prepress@druckerei.example"]

    response = staff.get("/staff/mail/events/upload_received/customers?customer_no=K1")
    assert response.headers["Location"].endswith("/staff/mail/events/upload_received/customers/K1")
    response = staff.post(
        "/staff/mail/events/upload_received/customers/K1",
        {"active": "1", "roles": ["customer"], "template_name": "Upload eingegangen"},
    )
    assert response.status_code == 302
    page = staff.get("/staff/mail/events/upload_received").text
    assert "Kunde K1 (K1)" in page
    override = NotificationRule.get(NotificationRule.customer.is_null(False))
    assert override.active and override.role_list == ["customer"]

    staff.post("/staff/mail/events/upload_received/customers/K1/delete")
    assert NotificationRule.select().where(NotificationRule.customer.is_null(False)).count() == 0


def staff_settings(staff):
    return staff.client.application.config["PTPORTAL_SETTINGS"]


# --- template editor --------------------------------------------------------------------


def template_form(**changes) -> dict:
    form = {
        "name": "Rückfrage",
        "language": "de",
        "owner": "",
        "subject": 'Rückfrage zu {{data_project["project_no"]}}',
        "content": 'Guten Tag,\nbitte laden Sie hier hoch: {{data_project["upload_link"]}}\n'
        'Termin: {{ticketdata_project["due_date"]}}',
        "order": "2024-0815",
    }
    return form | changes


def test_new_template_is_saved_and_previewed_against_a_real_order(staff, order):
    response = staff.post("/staff/mail/templates/preview", template_form(), headers=HTMX)
    assert response.status_code == 200
    assert 'id="mail-preview"' in response.text
    assert "[Auftrag 2024-0815] Rückfrage zu 2024-0815" in response.text
    assert "http://portal.test/orders/2024-0815" in response.text
    assert order.due_date.strftime("%d.%m.%Y") in response.text

    response = staff.post("/staff/mail/templates/new", template_form())
    assert response.status_code == 302
    assert EmailTemplate.get(EmailTemplate.name == "Rückfrage").subject.startswith("Rückfrage")


@pytest.mark.parametrize(
    ("field", "source", "message"),
    [
        ("content", '{{data_project["no_such_key"]}}', "unknown placeholder"),
        ("content", "{{ secret_key }}", "unknown placeholder: secret_key"),
        ("subject", "{% if %}", "syntax error in line 1"),
        ("content", "{{ data_project.__class__.__mro__ }}", "__mro__&#39; is not allowed"),
        ("content", "{{ ''.__class__.__subclasses__() }}", "not allowed"),
        ("content", "{{ data_project.items() }}", "calling functions or methods"),
        ("content", '{{ data_project["project_no"].upper() }}', "calling functions"),
        ("content", "{% include '/etc/passwd' %}", "cannot load other templates or files"),
        ("content", "{{ lipsum }}", "unknown placeholder: lipsum"),
        ("content", '{{ data_project|attr("__init__") }}', "is unsafe"),
        ("content", "{{ config }}", "unknown placeholder: config"),
    ],
)
def test_broken_or_escaping_template_is_refused_next_to_its_field(
    staff, order, field, source, message
):
    response = staff.post("/staff/mail/templates/new", template_form(**{field: source}))
    assert response.status_code == 422
    assert message in response.text
    assert f'id="error-{field}" class="error" role="alert">' in response.text
    assert EmailTemplate.get_or_none(EmailTemplate.name == "Rückfrage") is None

    preview = staff.post(
        "/staff/mail/templates/preview", template_form(**{field: source}), headers=HTMX
    )
    assert "No preview" in preview.text
    assert f'hx-swap-oob="outerHTML:#error-{field}"' in preview.text
    assert message in preview.text


def test_editing_keeps_the_stored_template_when_the_draft_is_broken(staff, order):
    template = EmailTemplate.get(
        EmailTemplate.name == "Upload-Aufforderung", EmailTemplate.language == "de"
    )
    before = template.content
    url = f"/staff/mail/templates/{template.id}"
    form = template_form(name=template.name, content='{{ data_project["oops"] }}')
    assert staff.post(url, form).status_code == 422
    assert EmailTemplate.get_by_id(template.id).content == before
    form = template_form(name=template.name, owner=str(staff.user.id))
    assert staff.post(url, form).status_code == 302
    stored = EmailTemplate.get_by_id(template.id)
    assert stored.owner_id == staff.user.id and "bitte laden Sie hier hoch" in stored.content


def test_signature_html_is_sanitised_and_text_kept(staff, order):
    form = {
        "name": "Herbst",
        "head_html": '<p onclick="steal()">Hallo <script>alert(1)</script><img src="http://t/x"></p>',
        "foot_html": '<a href="javascript:alert(1)">x</a> <a href="https://shop.example">Shop</a>',
        "head_text": "Hallo",
        "foot_text": "-- \nDruckerei <Nord>",
        "status": "1",
    }
    preview = staff.post("/staff/mail/signatures/preview", form, headers=HTMX)
    assert "Druckerei &lt;Nord&gt;" in preview.text
    assert staff.post("/staff/mail/signatures/new", form).status_code == 302
    signature = EmailSignature.get(EmailSignature.name == "Herbst")
    assert signature.head_html == "<p>Hallo </p>"
    assert (
        "javascript" not in signature.foot_html
        and 'href="https://shop.example"' in signature.foot_html
    )
    assert signature.foot_text == "-- \nDruckerei <Nord>"
    # Switching one on switches the default off: one frame for every mail.
    switched_on = EmailSignature.select().where(EmailSignature.status == True)  # noqa: E712
    assert [s.name for s in switched_on] == ["Herbst"]


# --- outbox, bounces, send now -----------------------------------------------------------


def failed_mail(**fields) -> OutboxMail:
    values = {
        "message_id": "<failed@test>",
        "kind": "test",
        "sender": "portal@testdruck.example",
        "recipients": "kunde@example.com",
        "subject": "Ein Test",
        "text_body": "Hallo",
        "html_body": "<p>Hallo</p>",
        "status": OutboxMail.STATUS_FAILED,
        "attempts": 1,
        "last_error": "554 5.7.1 rejected as spam",
    }
    with write_transaction():
        return OutboxMail.create(**(values | fields))


def test_outbox_shows_failed_mail_and_retry_sends_it(staff, mailserver):
    mail = failed_mail()
    page = staff.get("/staff/mail/outbox?view=failed").text
    assert "kunde@example.com" in page and "554 5.7.1 rejected as spam" in page
    assert 'data-state="failed"' in page

    response = staff.post(f"/staff/mail/outbox/{mail.id}/retry", {"view": "failed"})
    assert response.status_code == 302
    assert (
        OutboxMail.get_by_id(mail.id).status == OutboxMail.STATUS_SENT
    )  # the app delivers at once
    assert [item.message["Subject"] for item in mailserver.received] == ["Ein Test"]
    assert "kunde@example.com" in staff.get("/staff/mail/outbox?view=sent").text


def test_bounce_list_mark_and_clear(staff, mailserver):
    with write_transaction():
        record_bounce("weg@example.com", "550 5.1.1 user unknown")
    page = staff.get("/staff/mail/bounces").text
    assert "weg@example.com" in page and "550 5.1.1 user unknown" in page

    assert staff.post("/staff/mail/bounces", {"email": "kaputt"}).status_code == 422
    assert (
        staff.post(
            "/staff/mail/bounces", {"email": "Alt@Example.com", "reason": "Firma zu"}
        ).status_code
        == 302
    )
    assert is_bounced("alt@example.com")
    row = BouncedAddress.get(BouncedAddress.email == "weg@example.com")
    assert staff.post(f"/staff/mail/bounces/{row.id}/clear").status_code == 302
    assert not is_bounced("weg@example.com")


def test_send_now_shows_what_was_sent(staff, mailserver, order):
    with write_transaction():
        customer = order.customer
        customer.portal_enabled = True
        customer.save()
    response = staff.post("/staff/mail/send-now", headers=HTMX)
    assert response.status_code == 200
    assert 'id="send-result"' in response.text and "<html" not in response.text
    # The order has no owner: its alert escalates to the admin (anna).
    assert "Sent: 2, failed: 0" in response.text
    assert "info@k1.example" in response.text and "anna@testdruck.example" in response.text
    assert "Aufträge warten auf Druckdaten (1)" in response.text
    assert "HX-Request" in response.headers["Vary"]
    again = staff.post("/staff/mail/send-now")
    assert "Nothing was due" in again.text and "<html" in again.text
    assert len(mailserver.received) == 2


@pytest.mark.parametrize("ini_overrides", [{"smtp": {"port": 1}}], indirect=True)
def test_send_now_shows_the_smtp_error(staff, order):
    failed_mail(status=OutboxMail.STATUS_PENDING, next_attempt_at=utcnow())
    response = staff.post("/staff/mail/send-now", headers=HTMX)
    assert "The mail server answered: cannot connect to 127.0.0.1:1" in response.text


# --- manual send ----------------------------------------------------------------------------


def test_manual_send_from_the_order_owner_is_sender_and_gets_a_copy(
    staff, mailserver, order, settings
):
    owner = create_staff(settings, "chef", "Clara Chef", "clara@testdruck.example", False, PASSWORD)
    template = EmailTemplate.get(
        EmailTemplate.name == "Upload-Aufforderung", EmailTemplate.language == "de"
    )
    with write_transaction():
        template.owner = owner
        template.save()

    assert "/staff/mail/orders/2024-0815/send" in staff.get("/staff/orders/2024-0815").text
    preview = staff.get(f"/staff/mail/orders/2024-0815/send?template={template.id}", headers=HTMX)
    assert 'id="manual-preview"' in preview.text
    assert "[Auftrag 2024-0815] Bitte Druckdaten hochladen: Flyer A5" in preview.text
    assert mailserver.received == []

    response = staff.post("/staff/mail/orders/2024-0815/send", {"template": str(template.id)})
    assert response.status_code == 302
    [to_customer] = to(mailserver, "info@k1.example")
    [copy] = to(mailserver, "clara@testdruck.example")
    assert to_customer.message["From"] == "Clara Chef <clara@testdruck.example>"
    assert to_customer.mail_from == "clara@testdruck.example"
    assert copy.message["Subject"] == to_customer.message["Subject"]
    assert "http://portal.test/orders/2024-0815" in text_of(to_customer)
    reasons = sorted(row.recipient_reason for row in OutboxMail.select())
    assert reasons == ["copy for the sender", "customer email, sent by anna"]


def test_manual_send_to_a_bounced_customer_is_refused(staff, mailserver, order):
    with write_transaction():
        record_bounce("info@k1.example", "550 5.1.1")
    template = EmailTemplate.get(
        EmailTemplate.name == "Upload-Aufforderung", EmailTemplate.language == "de"
    )
    response = staff.post("/staff/mail/orders/2024-0815/send", {"template": str(template.id)})
    assert response.status_code == 422
    assert "no usable email address" in response.text
    assert OutboxMail.select().count() == 0
