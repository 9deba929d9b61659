"""The daily digest on a real SMTP server: contents, schedule, one connection, no duplicates."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from conftest import links_for
from mail_helpers import (
    db_fixture,  # noqa: F401 (fixture "db")
    make_customer,
    make_file,
    make_order,
    make_staff,
    text_of,
    to,
)
from smtp_helpers import RecordingHandler, make_tls, smtp_server, starttls_options

from shared.clock import utcnow
from shared.db import write_transaction
from shared.events import DEADLINE_ALERT, EVENTS
from shared.mail import delivery
from shared.models import DigestRun, OrderFile, OutboxMail
from shared.notify.digest import local_now, queue_due_mail, scheduled_run, send_now
from shared.notify.rules import save_rule

OWNER = "owner@druckerei.example"
CUSTOMER = "info@k1.example"


@pytest.fixture
def due_orders(settings, db):
    """Orders around today's date: which belong in the digest and which do not."""
    today = local_now(settings, utcnow()).date()
    owner = make_staff("owner")
    customer = make_customer("K1", portal_enabled=True)
    soon = make_order(customer, "A-SOON", owner=owner, due=today + timedelta(days=1))
    make_order(customer, "A-LATE", owner=owner, due=today - timedelta(days=3), job="Plakat")
    uploaded = make_order(customer, "A-DONE", owner=owner, due=today + timedelta(days=1))
    make_order(customer, "A-LATER", owner=owner, due=today + timedelta(days=10))
    make_order(customer, "A-ANCIENT", owner=owner, due=today - timedelta(days=60))
    offline = make_customer("K2", portal_enabled=False)
    make_order(offline, "B-OFFLINE", owner=owner, due=today)
    make_file(soon, "virus.pdf", state=OrderFile.STATE_REJECTED, signature="Eicar-Test")
    make_file(uploaded, "waiting.pdf", scanned_at=utcnow() - timedelta(hours=2))
    return today


def test_digest_contents_per_recipient_over_one_connection(settings, mailserver, due_orders):
    result = send_now(settings, links_for(settings))

    assert result.report.sent == 2
    assert mailserver.connections == 1
    [customer_mail] = to(mailserver, CUSTOMER)
    text = text_of(customer_mail)
    assert customer_mail.message["Subject"] == "Aufträge warten auf Druckdaten (2)"
    assert "Überfällig, noch ohne Druckdaten:\n- A-LATE – Plakat" in text
    assert "Bald fällig, noch ohne Druckdaten:\n- A-SOON – Flyer A5" in text
    assert "http://portal.test/orders/A-SOON" in text
    for absent in ("A-DONE", "A-LATER", "A-ANCIENT", "B-OFFLINE", "virus.pdf", "waiting.pdf"):
        assert absent not in text

    [staff_mail] = to(mailserver, OWNER)
    text = text_of(staff_mail)
    assert staff_mail.message["Subject"] == "Aufträge warten auf Druckdaten (4)"
    assert "- A-SOON – Flyer A5 (Kunde K1)" in text
    assert "http://portal.test/staff/orders/A-LATE" in text
    assert "Bei der Virenprüfung abgelehnte Dateien:\n- A-SOON: virus.pdf (Eicar-Test)" in text
    assert "Noch nicht an den Hotfolder übergebene Dateien:\n- A-DONE: waiting.pdf" in text
    reasons = {row.recipients: row.recipient_reason for row in result.mails}
    assert reasons == {CUSTOMER: "customer email", OWNER: "staff owner"}


def test_customer_digest_about_one_order_names_it_in_the_subject(settings, mailserver, db):
    today = local_now(settings, utcnow()).date()
    customer = make_customer("K1", portal_enabled=True, language="en")
    make_order(customer, "2024-0815", due=today)
    send_now(settings, links_for(settings))
    [mail] = to(mailserver, CUSTOMER)
    assert mail.message["Subject"] == "[Order 2024-0815] Orders waiting for print data (1)"


def test_french_customer_digest_reads_french(settings, mailserver, db):
    today = local_now(settings, utcnow()).date()
    customer = make_customer("K1", portal_enabled=True, language="fr")
    make_order(customer, "A-SOON", due=today + timedelta(days=1))
    send_now(settings, links_for(settings))
    [mail] = to(mailserver, CUSTOMER)
    subject = "[Commande A-SOON] Commandes en attente de fichiers d'impression (1)"
    assert mail.message["Subject"] == subject
    due = (today + timedelta(days=1)).strftime("%d/%m/%Y")
    assert (
        "Échéance proche, toujours sans fichiers d'impression:\n"
        f"- A-SOON – Flyer A5, échéance {due}\n  http://portal.test/orders/A-SOON"
    ) in text_of(mail)


def test_nothing_due_opens_no_connection(settings, db):
    make_order(make_customer("K1", portal_enabled=True), "A-1")  # no due date
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        quiet = replace(settings, smtp=replace(settings.smtp, port=port))
        result = send_now(quiet, links_for(quiet))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever knocked
    assert result.mails == [] and result.report.error == ""


def test_run_twice_sends_nothing_twice(settings, mailserver, due_orders):
    first = send_now(settings, links_for(settings))
    second = send_now(settings, links_for(settings))
    assert len(first.digest.queued) == 2
    assert second.digest.queued == [] and second.digest.already_sent == 2
    assert second.report.sent == 0
    # The scheduled run of the same day finds every key used as well.
    late = datetime.combine(due_orders, datetime.max.time()) - timedelta(hours=3)
    assert scheduled_run(settings, links_for(settings), late).queued == []
    assert len(mailserver.received) == 2


def test_crash_between_send_and_commit_sends_nothing_twice(
    settings, mailserver, due_orders, monkeypatch
):
    real = delivery.write_transaction
    calls = {"n": 0}

    def crash_after_first_send():
        calls["n"] += 1
        if calls["n"] == 3:  # claim, unknown-sweep … then the "sent" commit of the first mail
            raise SystemExit("worker killed")
        return real()

    monkeypatch.setattr(delivery, "write_transaction", crash_after_first_send)
    now = utcnow()
    with pytest.raises(SystemExit):
        send_now(settings, links_for(settings), now)
    monkeypatch.setattr(delivery, "write_transaction", real)
    assert len(mailserver.received) == 1

    # The worker restarts: the same day's job again, later the stuck-mail sweep.
    send_now(settings, links_for(settings), now + timedelta(minutes=1))
    send_now(settings, links_for(settings), now + timedelta(minutes=30))
    recipients = sorted(r for item in mailserver.received for r in item.rcpt_tos)
    assert recipients == sorted([CUSTOMER, OWNER])
    states = sorted(row.status for row in OutboxMail.select())
    assert states == [OutboxMail.STATUS_SENT, OutboxMail.STATUS_UNKNOWN]


@pytest.mark.parametrize(
    "ini_overrides",
    [{"portal": {"time_zone": "Europe/Berlin"}, "notifications": {"send_time": "07:30"}}],
    indirect=True,
)
def test_scheduled_at_send_time_in_the_configured_zone(settings, mailserver, db):
    customer = make_customer("K1", portal_enabled=True)
    make_order(customer, "A-1", due=datetime(2030, 1, 16).date())
    # 07:30 in Berlin is 06:30 UTC in winter (huey's crontab would have said 07:30 UTC).
    assert queue_due_mail(settings, links_for(settings), datetime(2030, 1, 15, 6, 29)) == 0
    assert DigestRun.select().count() == 0
    assert queue_due_mail(settings, links_for(settings), datetime(2030, 1, 15, 6, 30)) == 1
    assert queue_due_mail(settings, links_for(settings), datetime(2030, 1, 15, 6, 31)) == 0
    assert (
        queue_due_mail(settings, links_for(settings), datetime(2030, 1, 15, 22, 59)) == 0
    )  # 23:59 in Berlin
    # Each local day has its own digest (due today, then overdue).
    assert queue_due_mail(settings, links_for(settings), datetime(2030, 1, 16, 6, 30)) == 1
    assert queue_due_mail(settings, links_for(settings), datetime(2030, 1, 17, 6, 30)) == 1
    keys = sorted(row.idempotency_key for row in OutboxMail.select())
    assert keys == [
        f"digest:{DEADLINE_ALERT}:2030-01-{day}:{CUSTOMER}" for day in ("15", "16", "17")
    ]


def test_deadline_alert_switch_and_override(settings, mailserver, due_orders):
    other = make_customer("K3", portal_enabled=True, email="info@k3.example")
    make_order(other, "C-1", due=due_orders)
    with write_transaction():
        save_rule(
            DEADLINE_ALERT,
            other,
            active=False,
            roles=["customer"],
            extra_staff=[],
            extra_addresses="",
            template_name=EVENTS[DEADLINE_ALERT].template_name,
        )
    send_now(settings, links_for(settings))
    assert to(mailserver, "info@k3.example") == []
    assert "C-1" not in text_of(to(mailserver, OWNER)[0])

    with write_transaction():
        save_rule(
            DEADLINE_ALERT,
            None,
            active=False,
            roles=["customer", "owner"],
            extra_staff=[],
            extra_addresses="",
            template_name=EVENTS[DEADLINE_ALERT].template_name,
        )
    tomorrow = utcnow() + timedelta(days=1)
    assert send_now(settings, links_for(settings), tomorrow).digest.queued == []


def test_digest_over_starttls_with_login(settings, due_orders, tmp_path):
    tls = make_tls(tmp_path)
    handler = RecordingHandler()
    with smtp_server(handler, **starttls_options(tls, "shop", "s3cret")) as port:
        secure = replace(
            settings,
            smtp=replace(
                settings.smtp,
                server="localhost",
                port=port,
                security="starttls",
                ca_file=tls.ca_file,
                username="shop",
                password="s3cret",
            ),
        )
        result = send_now(secure, links_for(secure))
    assert result.report.sent == 2
    assert handler.connections == 1


def test_smtp_error_is_reported_and_mails_wait(settings, due_orders):
    from smtp_helpers import free_port

    down = replace(settings, smtp=replace(settings.smtp, port=free_port()))
    result = send_now(down, links_for(down))
    assert result.report.error.startswith("cannot connect to 127.0.0.1:")
    assert result.report.deferred == 2
    assert {row.status for row in result.mails} == {OutboxMail.STATUS_PENDING}


def test_cli_send_now_lists_what_went_out(settings, mailserver, due_orders):
    from click.testing import CliRunner

    from portal.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(settings.source), "mail", "send-now"])
    assert result.exit_code == 0, result.output
    assert f"sent\t{CUSTOMER}\tAufträge warten auf Druckdaten (2)" in result.output
    assert result.output.rstrip().endswith("2 sent, 0 failed, 0 waiting")

    again = runner.invoke(main, ["--config", str(settings.source), "mail", "send-now"])
    assert "2 had today's digest already" in again.output
    assert "nothing was due: no connection to the mail server" in again.output


def test_cli_send_now_shows_the_smtp_error(settings, due_orders, tmp_path):
    from click.testing import CliRunner
    from conftest import base_sections, write_ini
    from smtp_helpers import free_port

    from portal.cli import main

    ini = write_ini(tmp_path, base_sections(free_port()))
    result = CliRunner().invoke(main, ["--config", str(ini), "mail", "send-now"])
    assert result.exit_code == 1
    assert "Error: mail server: cannot connect to 127.0.0.1:" in result.output
