"""Notification events against a real SMTP server: switches, overrides, escalation, batching."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import links_for
from mail_helpers import (
    db_fixture,  # noqa: F401 (fixture "db")
    flush,
    make_customer,
    make_file,
    make_order,
    make_staff,
    text_of,
    to,
)
from smtp_helpers import make_tls, smtp_server, starttls_options

from shared.clock import utcnow
from shared.db import write_transaction
from shared.events import (
    EVENTS,
    FILE_FINAL,
    FILE_REJECTED,
    FILES_DELIVERED,
    LINK_REQUESTED,
    LOGIN_CREATED,
    PASSWORD_SET,
    UPLOAD_RECEIVED,
    UPLOAD_REQUEST,
    notify,
)
from shared.files.folders import FOLDER_FINAL
from shared.mail.bounces import record_bounce
from shared.mail.delivery import deliver_due
from shared.models import Notification, OrderFile, OutboxMail
from shared.notify.rules import global_rule, save_rule
from shared.notify.sending import send_due_notifications
from shared.orders.orders import add_ticket, create_order

OWNER = "owner@druckerei.example"


def set_rule(kind, customer=None, *, active=True, roles=(), staff=(), addresses=""):
    with write_transaction():
        return save_rule(
            kind,
            customer,
            active=active,
            roles=roles,
            extra_staff=staff,
            extra_addresses=addresses,
            template_name=EVENTS[kind].template_name,
        )


def record(kind, **where):
    with write_transaction():
        return notify(kind, **where)


@pytest.fixture
def shop(db):
    """An admin, the order's owner, a customer (not using the portal) and an order with a file."""
    admin = make_staff("boss", admin=True)
    owner = make_staff("owner")
    customer = make_customer("K1")
    order = make_order(customer, "A-1", owner=owner)
    return admin, owner, customer, order


def event_for(kind, order):
    """Record one event of ``kind`` the way its cause would."""
    if kind in (UPLOAD_RECEIVED, FILES_DELIVERED):
        return record(kind, file=make_file(order, "flyer.pdf"))
    if kind == FILE_FINAL:
        return record(kind, file=make_file(order, "proof.pdf", folder=FOLDER_FINAL))
    if kind == FILE_REJECTED:
        file = make_file(order, "virus.pdf", state=OrderFile.STATE_REJECTED, signature="Eicar")
        return record(kind, file=file, detail="Eicar")
    return record(kind, order=order, detail="info@k1.example")


STAFF_EVENTS = [LOGIN_CREATED, LINK_REQUESTED, PASSWORD_SET, UPLOAD_RECEIVED, FILES_DELIVERED]


# --- active switch and recipients by role ------------------------------------------


@pytest.mark.parametrize("kind", [*STAFF_EVENTS, FILE_REJECTED, FILE_FINAL])
def test_event_active_switch(kind, settings, mailserver, shop):
    _, _, _, order = shop
    set_rule(kind, roles=["owner", "customer"])
    event_for(kind, order)
    assert flush(settings).sent == 2
    assert {r for item in mailserver.received for r in item.rcpt_tos} == {
        OWNER,
        "info@k1.example",
    }

    set_rule(kind, active=False, roles=["owner", "customer"])
    event_for(kind, order)
    report = flush(settings)
    assert report.sent == 0 and len(mailserver.received) == 2
    assert Notification.select().where(Notification.outcome == "event switched off").count() == 1


def test_default_rules_follow_the_event_list(db):
    # Staff hear about their orders; customers about rejections and Final files.
    assert global_rule(UPLOAD_RECEIVED).role_list == ["owner"]
    assert global_rule(FILE_FINAL).role_list == ["customer"]
    assert global_rule(FILE_REJECTED).role_list == ["customer", "owner"]
    assert not global_rule(LINK_REQUESTED).active


def test_all_staff_admins_additional_staff_and_addresses(settings, mailserver, shop):
    _, _, _, order = shop
    helper = make_staff("helper")
    set_rule(
        UPLOAD_RECEIVED,
        roles=["admins"],
        staff=[helper],
        addresses="prepress@druckerei.example; Boss@Druckerei.example",
    )
    event_for(UPLOAD_RECEIVED, order)
    assert flush(settings).sent == 3  # the admin's address given twice is mailed once
    reasons = {row.recipients: row.recipient_reason for row in OutboxMail.select()}
    assert reasons == {
        "boss@druckerei.example": "admin",
        "helper@druckerei.example": "additional staff",
        "prepress@druckerei.example": "additional address",
    }

    set_rule(UPLOAD_RECEIVED, roles=["staff"])
    event_for(UPLOAD_RECEIVED, order)
    flush(settings)
    assert {r for item in mailserver.received[3:] for r in item.rcpt_tos} == {
        "boss@druckerei.example",
        OWNER,
        "helper@druckerei.example",
    }


def test_customer_override_replaces_the_rule_for_that_customer_only(settings, mailserver, shop):
    _, _, customer, order = shop
    other = make_order(make_customer("K2"), "B-1", owner=shop[1])
    set_rule(UPLOAD_RECEIVED, customer, roles=["customer"], addresses="druck@k1.example")
    event_for(UPLOAD_RECEIVED, order)
    event_for(UPLOAD_RECEIVED, other)
    flush(settings)
    got = sorted((item.rcpt_tos[0], item.message["Subject"]) for item in mailserver.received)
    assert [address for address, _ in got] == ["druck@k1.example", "info@k1.example", OWNER]
    assert all("[Auftrag" not in subject for address, subject in got if address == OWNER)

    set_rule(UPLOAD_RECEIVED, customer, active=False, roles=["customer"])
    event_for(UPLOAD_RECEIVED, order)
    event_for(UPLOAD_RECEIVED, other)
    flush(settings)
    assert [item.rcpt_tos for item in mailserver.received[3:]] == [[OWNER]]


# --- escalation -------------------------------------------------------------------


def escalate(settings, order):
    set_rule(UPLOAD_RECEIVED, roles=["customer"])
    event_for(UPLOAD_RECEIVED, order)
    flush(settings)
    row = OutboxMail.select().order_by(OutboxMail.id.desc()).first()
    return row.recipients, row.recipient_reason


def test_escalation_order_contact_then_favorite_then_customer(settings, mailserver, shop):
    _, owner, customer, _ = shop
    order = make_order(customer, "A-2", owner=owner, contact="anna@k1.example")
    assert escalate(settings, order) == ("anna@k1.example", "order contact")

    with write_transaction():
        record_bounce("anna@k1.example", "550 5.1.1 no such user")
        from shared.accounts.customers import add_contact

        add_contact(customer, "fav@k1.example", favorite=True)
    recipients, reason = escalate(settings, order)
    assert recipients == "fav@k1.example"
    assert (
        reason
        == "favorite contact (escalated: order contact anna@k1.example is on the bounce list)"
    )

    with write_transaction():
        record_bounce("fav@k1.example", "550 5.1.1 no such user")
    recipients, reason = escalate(settings, order)
    assert recipients == "info@k1.example"
    assert reason.startswith("customer email (escalated: order contact")


def test_escalation_customer_without_address_goes_to_the_owner(settings, mailserver, db):
    owner = make_staff("owner")
    order = make_order(make_customer("K9", email=""), "Z-1", owner=owner)
    recipients, reason = escalate(settings, order)
    assert recipients == OWNER
    assert reason == "staff owner (escalated: customer K9 has no usable address)"
    assert "[Auftrag" not in mailserver.received[-1].message["Subject"]  # a staff mail now


@pytest.mark.parametrize(
    ("owner_fields", "why"),
    [({"active": False}, "is disabled"), ({"email": ""}, "has no email address")],
    ids=["disabled", "no-email"],
)
def test_escalation_unusable_owner_goes_to_admins(settings, mailserver, db, owner_fields, why):
    make_staff("boss", admin=True)
    make_staff("second", admin=True)
    make_staff("retired", admin=True, active=False)
    owner = make_staff("owner", **owner_fields)
    order = make_order(make_customer("K9", email=""), "Z-1", owner=owner)
    _, reason = escalate(settings, order)
    assert sorted(r for item in mailserver.received for r in item.rcpt_tos) == [
        "boss@druckerei.example",
        "second@druckerei.example",
    ]
    assert reason == (
        f"admin (escalated: customer K9 has no usable address; staff owner owner {why})"
    )


def test_escalation_without_owner_or_admin_sends_nothing_and_says_so(settings, mailserver, db):
    order = make_order(make_customer("K9", email=""), "Z-1")
    set_rule(UPLOAD_RECEIVED, roles=["customer"])
    event_for(UPLOAD_RECEIVED, order)
    assert flush(settings).sent == 0
    assert Notification.get().outcome == "no usable recipient"


# --- batching ------------------------------------------------------------------------


def test_burst_of_twenty_uploads_is_one_mail_listing_them_all(settings, mailserver, shop):
    _, _, _, order = shop
    for number in range(20):
        event_for_file = make_file(order, f"seite-{number:02d}.pdf")
        record(UPLOAD_RECEIVED, file=event_for_file)

    # Within the batch time nothing goes out, and no connection is opened.
    assert (
        send_due_notifications(settings, links_for(settings), utcnow() + timedelta(seconds=60)) == 0
    )
    assert deliver_due(settings.smtp).sent == 0

    assert flush(settings).sent == 1
    [mail] = to(mailserver, OWNER)
    text = text_of(mail)
    assert all(f"seite-{number:02d}.pdf (1,2 MB)" in text for number in range(20))
    assert mail.message["Subject"] == "Druckdaten eingegangen: 20 Datei(en)"
    assert "http://portal.test/staff/orders/A-1" in text  # staff get the staff page
    assert Notification.select().where(Notification.processed_at.is_null()).count() == 0


def test_batches_are_per_order_and_per_kind(settings, mailserver, shop):
    _, owner, customer, order = shop
    second = make_order(customer, "A-2", owner=owner)
    for target in (order, order, second):
        event_for(UPLOAD_RECEIVED, target)
    event_for(FILES_DELIVERED, order)
    assert flush(settings).sent == 3


def test_batch_whose_files_are_gone_sends_nothing(settings, mailserver, shop):
    _, _, _, order = shop
    file = make_file(order, "weg.pdf")
    record(UPLOAD_RECEIVED, file=file)
    with write_transaction():
        OrderFile.update(state=OrderFile.STATE_DELETED).execute()
    assert flush(settings).sent == 0
    assert mailserver.received == []
    assert Notification.get().outcome == "nothing left to send"


# --- language, Reply-To, subject reference -------------------------------------------


@pytest.mark.parametrize(
    "ini_overrides",
    [
        {
            "smtp": {"reply_to": "auftrag@druckerei.example"},
            "notifications": {"staff_language": "en"},
        }
    ],
    indirect=True,
)
def test_customer_mail_has_reply_to_reference_and_language(settings, mailserver, db):
    owner = make_staff("owner")
    customer = make_customer("K1", language="en")
    order = make_order(customer, "2024-0815", owner=owner)
    set_rule(FILE_FINAL, roles=["customer", "owner"])
    event_for(FILE_FINAL, order)
    flush(settings)

    [customer_mail] = to(mailserver, "info@k1.example")
    message = customer_mail.message
    assert message["Subject"] == "[Order 2024-0815] Your files are ready"
    assert message["Reply-To"] == "auftrag@druckerei.example"
    assert "http://portal.test/orders/2024-0815" in text_of(customer_mail)

    [staff_mail] = to(mailserver, OWNER)
    assert staff_mail.message["Reply-To"] is None
    assert staff_mail.message["Subject"] == "Your files are ready"  # staff_language = en


def test_german_customer_gets_german_reference(settings, mailserver, shop):
    _, _, _, order = shop
    event_for(FILE_FINAL, order)
    flush(settings)
    [mail] = mailserver.received
    assert mail.message["Subject"] == "[Auftrag A-1] Ihre Dateien stehen bereit"
    assert mail.message["Reply-To"] is None  # no reply_to configured


def test_french_customer_gets_french_mail_with_the_commande_reference(settings, mailserver, db):
    customer = make_customer("K1", language="fr")
    order = make_order(customer, "A-1")
    event_for(FILE_FINAL, order)
    flush(settings)
    [mail] = mailserver.received
    assert mail.message["Subject"] == "[Commande A-1] Vos fichiers sont disponibles"
    text = text_of(mail)
    assert "dossier « Final »" in text and "Commande : A-1" in text
    assert "- proof.pdf (1,2 MB)" in text  # a decimal comma, as in German


# --- upload requests (portal_reminder_email_automatically) ------------------------------


def reminders(settings, mailserver):
    """Create a portal customer's order and two tickets; the upload requests that went out."""
    make_customer("K1", portal_enabled=True)
    create_order(
        settings,
        links_for(settings),
        project_no="A-7",
        customer_no="K1",
        job_description="Plakat A1",
    )
    add_ticket("A-7", "T1", "Korrektur")
    add_ticket("A-7", "T2", "Nachdruck")
    flush(settings)
    return [
        item
        for item in to(mailserver, "info@k1.example")
        if "Druckdaten hochladen" in item.message["Subject"]
    ]


@pytest.mark.parametrize(
    ("ini_overrides", "expected"),
    [
        ({"workflow": {"portal_reminder_email_automatically": 0}}, 0),
        ({"workflow": {"portal_reminder_email_automatically": 1}}, 1),
        ({"workflow": {"portal_reminder_email_automatically": 2}}, 1),
    ],
    indirect=["ini_overrides"],
    ids=["mode0", "mode1", "mode2"],
)
def test_reminder_modes(settings, mailserver, db, expected):
    mode = settings.workflow.portal_reminder_email_automatically
    mails = reminders(settings, mailserver)
    assert len(mails) == expected
    if mode == 0:
        assert Notification.select().where(Notification.kind == UPLOAD_REQUEST).count() == 3
        return
    message = mails[0].message
    text = text_of(mails[0])
    assert message["Subject"] == "[Auftrag A-7] Bitte Druckdaten hochladen: Plakat A1"
    assert "http://portal.test/orders/A-7" in text
    assert "Benutzername: k1" in text
    assert "Auftrag: A-7" in text
    if mode == 2:
        # Both tickets arrived within the batch time: one mail names both.
        assert "Ticket T1: Korrektur" in text and "Ticket T2: Nachdruck" in text
    else:
        assert "Ticket" not in text


@pytest.mark.parametrize(
    "ini_overrides", [{"workflow": {"portal_reminder_email_automatically": 2}}], indirect=True
)
def test_mode_2_sends_one_request_per_later_ticket(settings, mailserver, db):
    make_customer("K1", portal_enabled=True, language="en")
    create_order(settings, links_for(settings), project_no="A-7", customer_no="K1")
    flush(settings)
    add_ticket("A-7", "T1", "Proof")
    flush(settings)
    add_ticket("A-7", "T2", "Reprint")
    flush(settings)
    requests = [m for m in mailserver.received if "upload your print data" in m.message["Subject"]]
    assert len(requests) == 2
    assert "Ticket T2: Reprint" in text_of(requests[1])


@pytest.mark.parametrize(
    "ini_overrides", [{"workflow": {"portal_reminder_email_automatically": 1}}], indirect=True
)
def test_no_upload_request_for_a_customer_without_portal(settings, mailserver, db):
    make_customer("K1", portal_enabled=False)
    create_order(settings, links_for(settings), project_no="A-7", customer_no="K1")
    assert flush(settings).sent == 0


# --- the causes record their events -------------------------------------------------------


def test_account_events_are_recorded_by_their_causes(settings, db):
    from shared.accounts.logins import create_login
    from shared.notify.activation import request_new_link, send_activation_mail

    customer = make_customer("K1", portal_enabled=True)
    with write_transaction():
        login = create_login(customer, state="active")
        send_activation_mail(settings, links_for(settings), login)
    assert request_new_link(settings, links_for(settings), "k1")
    kinds = [row.kind for row in Notification.select().order_by(Notification.id)]
    assert kinds == [LOGIN_CREATED, LINK_REQUESTED]


def test_mail_over_starttls_with_login(settings, db, tmp_path):
    from dataclasses import replace

    from smtp_helpers import RecordingHandler

    tls = make_tls(tmp_path)
    owner = make_staff("owner")
    order = make_order(make_customer("K1"), "A-1", owner=owner)
    event_for(UPLOAD_RECEIVED, order)
    handler = RecordingHandler()
    with smtp_server(handler, **starttls_options(tls, "shop", "s3cret")) as port:
        smtp = replace(
            settings.smtp,
            server="localhost",
            port=port,
            security="starttls",
            ca_file=tls.ca_file,
            username="shop",
            password="s3cret",
        )
        send_due_notifications(settings, links_for(settings), utcnow() + timedelta(seconds=121))
        assert deliver_due(smtp).sent == 1
    assert handler.received[0].rcpt_tos == [OWNER]


@pytest.mark.parametrize(
    "ini_overrides", [{"workflow": {"portal_reminder_email_automatically": 1}}], indirect=True
)
def test_upload_request_switch_and_override(settings, mailserver, db):
    make_customer("K1", portal_enabled=True)
    other = make_customer("K2", portal_enabled=True)
    set_rule(UPLOAD_REQUEST, other, roles=["customer"], addresses="druck@k2.example")
    set_rule(UPLOAD_REQUEST, active=False, roles=["customer"])
    create_order(settings, links_for(settings), project_no="A-1", customer_no="K1")
    create_order(settings, links_for(settings), project_no="B-1", customer_no="K2")
    flush(settings)
    requests = [m for m in mailserver.received if "Druckdaten hochladen" in m.message["Subject"]]
    assert sorted(r for item in requests for r in item.rcpt_tos) == [
        "druck@k2.example",
        "info@k2.example",
    ]
