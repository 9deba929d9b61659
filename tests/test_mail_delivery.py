"""Outbox delivery and the mail catcher against real aiosmtpd servers on localhost."""

from __future__ import annotations

import smtplib
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from smtp_helpers import (
    HOST,
    RecordingHandler,
    free_port,
    make_tls,
    smtp_server,
    starttls_options,
)

from portal.mailcatcher import serve
from shared.clock import utcnow
from shared.config import SmtpSettings
from shared.db import bind_database, database
from shared.mail.delivery import DeliveryReport, deliver_due
from shared.models import ALL_MODELS, OutboxMail


@pytest.fixture
def db(database_url):
    bind_database(database_url)
    database.create_tables(ALL_MODELS)
    yield database
    database.close()


def settings(port: int, **changes) -> SmtpSettings:
    base = SmtpSettings(
        server=HOST,
        port=port,
        email="portal@example.com",
        username="",
        password="",
        security="none",
        ca_file=None,
        timeout_seconds=5,
        retry_first_seconds=1,
        retry_max_seconds=60,
        max_attempts=5,
    )
    return replace(base, **changes)


def add_mail(number: int = 1, **fields) -> OutboxMail:
    values = {
        "message_id": f"<mail-{number}@test>",
        "kind": "test",
        "sender": "Druckerei Müller <portal@example.com>",
        "recipients": "a@example.com",
        "subject": f"Auftrag {number}: Größe prüfen",
        "text_body": "Grüße aus der Druckerei – bitte prüfen.",
        "html_body": "<p>Grüße aus der <b>Druckerei</b> – bitte prüfen.</p>",
    }
    values.update(fields)
    return OutboxMail.create(**values)


def reload(mail: OutboxMail) -> OutboxMail:
    return OutboxMail.get_by_id(mail.id)


def test_plain_delivery_sends_complete_message(db):
    mail = add_mail(reply_to="office@example.com")
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        report = deliver_due(settings(port))

    assert report == DeliveryReport(sent=1)
    [received] = handler.received
    assert received.mail_from == "portal@example.com"
    assert received.rcpt_tos == ["a@example.com"]
    message = received.message
    assert message["Message-ID"] == mail.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] == "office@example.com"
    assert message["To"] == "a@example.com"
    assert message["From"] == "Druckerei Müller <portal@example.com>"
    assert message["Subject"] == "Auftrag 1: Größe prüfen"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text.get_content_charset() == "utf-8"
    assert text.get_content().strip() == "Grüße aus der Druckerei – bitte prüfen."
    assert "<b>Druckerei</b> – bitte prüfen" in html.get_content()

    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_SENT
    assert stored.attempts == 1
    assert stored.sent_at is not None
    assert stored.last_error == ""
    assert stored.refused_recipients == ""


def test_starttls_with_login_verifies_certificate_from_ca_file(db, tmp_path):
    tls = make_tls(tmp_path)
    mail = add_mail()
    handler = RecordingHandler()
    options = starttls_options(tls, "shop", "s3cret")
    with smtp_server(handler, **options) as port:
        smtp = settings(
            port,
            server="localhost",
            security="starttls",
            ca_file=tls.ca_file,
            username="shop",
            password="s3cret",
        )
        report = deliver_due(smtp)

    assert report == DeliveryReport(sent=1)
    assert len(handler.received) == 1
    assert reload(mail).status == OutboxMail.STATUS_SENT


def test_implicit_tls_verifies_certificate_from_ca_file(db, tmp_path):
    tls = make_tls(tmp_path)
    add_mail()
    handler = RecordingHandler()
    with smtp_server(handler, ssl_context=tls.server_context) as port:
        smtp = settings(port, server="localhost", security="ssl", ca_file=tls.ca_file)
        report = deliver_due(smtp)

    assert report == DeliveryReport(sent=1)
    assert len(handler.received) == 1


def test_starttls_without_ca_file_rejects_self_signed_certificate(db, tmp_path):
    tls = make_tls(tmp_path)
    mail = add_mail()
    handler = RecordingHandler()
    now = utcnow()
    with smtp_server(handler, **starttls_options(tls, "shop", "s3cret")) as port:
        smtp = settings(
            port, server="localhost", security="starttls", username="shop", password="s3cret"
        )
        report = deliver_due(smtp, now=now)

    assert report.sent == 0
    assert report.deferred == 1
    assert "certificate verify failed" in report.error
    assert handler.received == []
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_PENDING
    assert stored.attempts == 1
    assert stored.next_attempt_at > now
    assert "certificate verify failed" in stored.last_error


def test_wrong_password_keeps_mail_and_records_error(db, tmp_path):
    tls = make_tls(tmp_path)
    mail = add_mail()
    handler = RecordingHandler()
    with smtp_server(handler, **starttls_options(tls, "shop", "s3cret")) as port:
        smtp = settings(
            port,
            server="localhost",
            security="starttls",
            ca_file=tls.ca_file,
            username="shop",
            password="wrong-password",
        )
        report = deliver_due(smtp)

    assert report.deferred == 1
    assert report.error.startswith("login as shop failed: 535")
    assert "wrong-password" not in report.error
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_PENDING
    assert stored.last_error == report.error


def test_no_due_mail_opens_no_connection(db):
    later = add_mail(next_attempt_at=utcnow() + timedelta(hours=1))
    sent = add_mail(2, status=OutboxMail.STATUS_SENT)
    # Nothing listens on this port: any connection attempt would show up as an error.
    report = deliver_due(settings(free_port()))

    assert report == DeliveryReport()
    assert reload(later).status == OutboxMail.STATUS_PENDING
    assert reload(later).attempts == 0
    assert reload(sent).status == OutboxMail.STATUS_SENT


def test_server_down_defers_then_delivers_after_backoff(db):
    mail = add_mail()
    port = free_port()
    now = utcnow()

    report = deliver_due(settings(port), now=now)
    assert report.deferred == 1
    assert report.error.startswith(f"cannot connect to {HOST}:{port}")
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_PENDING
    assert stored.attempts == 1
    assert stored.next_attempt_at == now + timedelta(seconds=1)

    handler = RecordingHandler()
    with smtp_server(handler, port=port):
        assert deliver_due(settings(port), now=now) == DeliveryReport()
        assert handler.received == []
        report = deliver_due(settings(port), now=now + timedelta(seconds=2))

    assert report == DeliveryReport(sent=1)
    assert len(handler.received) == 1
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_SENT
    assert stored.attempts == 2


def test_server_down_never_fails_mail(db):
    mail = add_mail(attempts=10)
    now = utcnow()
    report = deliver_due(settings(free_port(), max_attempts=3), now=now)

    assert report.deferred == 1
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_PENDING
    assert stored.attempts == 11
    assert stored.next_attempt_at == now + timedelta(seconds=60)


def test_temporary_rcpt_refusal_is_retried(db):
    mail = add_mail()
    handler = RecordingHandler(rcpt_answers={"a@example.com": "451 4.7.1 greylisted"})
    now = utcnow()
    with smtp_server(handler) as port:
        report = deliver_due(settings(port), now=now)
        assert report.deferred == 1
        stored = reload(mail)
        assert stored.status == OutboxMail.STATUS_PENDING
        assert stored.attempts == 1
        assert "451 4.7.1 greylisted" in stored.last_error
        assert stored.next_attempt_at == now + timedelta(seconds=1)

        handler.rcpt_answers.clear()
        report = deliver_due(settings(port), now=now + timedelta(seconds=1))

    assert report == DeliveryReport(sent=1)
    assert reload(mail).status == OutboxMail.STATUS_SENT


def test_temporary_data_refusal_backs_off_exponentially(db):
    mail = add_mail()
    handler = RecordingHandler(data_answer="452 4.3.1 mailbox full")
    now = utcnow()
    with smtp_server(handler) as port:
        deliver_due(settings(port), now=now)
        assert reload(mail).next_attempt_at == now + timedelta(seconds=1)
        later = now + timedelta(seconds=1)
        deliver_due(settings(port), now=later)

    stored = reload(mail)
    assert stored.attempts == 2
    assert stored.next_attempt_at == later + timedelta(seconds=2)
    assert stored.last_error == "452 4.3.1 mailbox full"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (
            RecordingHandler(data_answer="554 5.7.1 message rejected as spam"),
            "554 5.7.1 message rejected as spam",
        ),
        (
            RecordingHandler(rcpt_answers={"a@example.com": "550 5.1.1 no such user"}),
            "a@example.com: 550 5.1.1 no such user",
        ),
    ],
    ids=["data", "rcpt"],
)
def test_permanent_refusal_fails_without_retry(db, handler, expected):
    mail = add_mail()
    now = utcnow()
    with smtp_server(handler) as port:
        report = deliver_due(settings(port), now=now)
        assert report == DeliveryReport(failed=1)
        again = deliver_due(settings(port), now=now + timedelta(days=1))

    assert again == DeliveryReport()
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_FAILED
    assert stored.attempts == 1
    assert expected in stored.last_error


def test_one_refused_recipient_is_recorded_and_others_get_the_mail(db):
    mail = add_mail(recipients="a@example.com,nobody@example.com")
    handler = RecordingHandler(rcpt_answers={"nobody@example.com": "550 5.1.1 no such user"})
    with smtp_server(handler) as port:
        report = deliver_due(settings(port))

    assert report == DeliveryReport(sent=1)
    [received] = handler.received
    assert received.rcpt_tos == ["a@example.com"]
    assert received.message["To"] == "a@example.com, nobody@example.com"
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_SENT
    assert stored.refused_recipients == "nobody@example.com: 550 5.1.1 no such user"


def test_many_mails_share_one_connection(db):
    for number in range(1, 8):
        add_mail(number)
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        report = deliver_due(settings(port))

    assert report == DeliveryReport(sent=7)
    assert len(handler.received) == 7
    assert handler.connections == 1


def test_limit_leaves_the_rest_for_the_next_run(db):
    for number in range(1, 6):
        add_mail(number)
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        assert deliver_due(settings(port), limit=3).sent == 3
        assert deliver_due(settings(port), limit=3).sent == 2
    assert OutboxMail.select().where(OutboxMail.status == OutboxMail.STATUS_SENT).count() == 5


def test_parallel_workers_never_send_a_mail_twice(db):
    for number in range(1, 21):
        add_mail(number)
    handler = RecordingHandler()
    errors: list[BaseException] = []

    def worker(smtp: SmtpSettings) -> None:
        try:
            while deliver_due(smtp, limit=3).sent:
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            database.close()

    with smtp_server(handler) as port:
        threads = [threading.Thread(target=worker, args=(settings(port),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    ids = sorted(item.message["Message-ID"] for item in handler.received)
    assert ids == sorted(f"<mail-{number}@test>" for number in range(1, 21))
    assert OutboxMail.select().where(OutboxMail.status == OutboxMail.STATUS_SENT).count() == 20


def test_connection_closed_by_server_returns_every_claimed_mail(db):
    mails = [add_mail(number) for number in range(1, 4)]
    handler = RecordingHandler(data_answer="421 4.3.2 shutting down")
    with smtp_server(handler) as port:
        report = deliver_due(settings(port))

    assert report == DeliveryReport(
        deferred=3, error=f"connection to {HOST}:{port} lost: 421 4.3.2 shutting down"
    )
    for mail in mails:
        stored = reload(mail)
        assert stored.status == OutboxMail.STATUS_PENDING
        assert stored.attempts == 1


def test_mail_stuck_in_sending_is_marked_unknown_and_never_resent(db):
    # A worker that stopped between the server's "250 OK" and its own commit leaves the
    # row in SENDING: it may have gone out, so it is not resent but shown to staff.
    due = add_mail(3)
    now = utcnow()
    stuck = add_mail(
        1, status=OutboxMail.STATUS_SENDING, next_attempt_at=now - timedelta(minutes=20)
    )
    busy = add_mail(2, status=OutboxMail.STATUS_SENDING, next_attempt_at=now - timedelta(minutes=5))
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        report = deliver_due(settings(port), now=now)
        assert reload(busy).status == OutboxMail.STATUS_SENDING  # its worker may still be on it
        again = deliver_due(settings(port), now=now + timedelta(days=1))

    assert report == DeliveryReport(sent=1, unknown=1)
    assert again == DeliveryReport(unknown=1)  # now the second one counts as stopped too
    assert [item.message["Message-ID"] for item in handler.received] == [due.message_id]
    stored = reload(stuck)
    assert stored.status == OutboxMail.STATUS_UNKNOWN
    assert stored.last_error.startswith("delivery unknown")


def test_crash_between_send_and_commit_sends_nothing_twice(db, monkeypatch):
    from shared.mail import delivery

    first, second = add_mail(1), add_mail(2)
    real_write = delivery.write_transaction
    calls = {"n": 0}

    def crash_after_first_send():
        # claim(1), then the "sent" commit of mail 1 is the second write: the process dies there.
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return real_write()

    handler = RecordingHandler()
    now = utcnow()
    with smtp_server(handler) as port:
        monkeypatch.setattr(delivery, "write_transaction", crash_after_first_send)
        with pytest.raises(SystemExit):
            deliver_due(settings(port), now=now)
        monkeypatch.setattr(delivery, "write_transaction", real_write)
        assert reload(first).status == OutboxMail.STATUS_SENDING
        assert reload(second).status == OutboxMail.STATUS_PENDING

        # The next runs: mail 2 goes out; mail 1 (already received) is never sent again.
        deliver_due(settings(port), now=now + timedelta(minutes=1))
        deliver_due(settings(port), now=now + timedelta(hours=1))
        deliver_due(settings(port), now=now + timedelta(days=1))

    ids = [item.message["Message-ID"] for item in handler.received]
    assert ids == [first.message_id, second.message_id]
    assert reload(first).status == OutboxMail.STATUS_UNKNOWN
    assert reload(second).status == OutboxMail.STATUS_SENT


def test_unknown_user_goes_on_the_bounce_list_and_is_not_mailed_again(db):
    from shared.mail.bounces import is_bounced

    first = add_mail(1, recipients="nobody@example.com")
    policy_refusal = add_mail(2, recipients="relay@example.com")
    handler = RecordingHandler(
        rcpt_answers={
            "nobody@example.com": "550 5.1.1 no such user",
            "relay@example.com": "550 5.7.1 relaying denied",
        }
    )
    with smtp_server(handler) as port:
        assert deliver_due(settings(port)) == DeliveryReport(failed=2)
        assert is_bounced("Nobody@Example.com")
        assert not is_bounced("relay@example.com")
        handler.rcpt_answers.clear()
        later = add_mail(3, recipients="nobody@example.com,a@example.com")
        alone = add_mail(4, recipients="nobody@example.com")
        report = deliver_due(settings(port))

    assert report == DeliveryReport(sent=1, failed=1)
    [received] = handler.received
    assert received.rcpt_tos == ["a@example.com"]
    assert reload(later).refused_recipients == "nobody@example.com: on the bounce list"
    assert reload(alone).status == OutboxMail.STATUS_FAILED
    assert "bounce list" in reload(alone).last_error
    assert reload(first).status == reload(policy_refusal).status == OutboxMail.STATUS_FAILED


def test_only_bounced_recipients_open_no_connection(db):
    from shared.db import write_transaction
    from shared.mail.bounces import record_bounce

    with write_transaction():
        record_bounce("a@example.com", "550 5.1.1 no such user")
    mail = add_mail()
    report = deliver_due(settings(free_port()))

    assert report == DeliveryReport(failed=1)
    assert reload(mail).status == OutboxMail.STATUS_FAILED


def test_repeated_temporary_refusal_fails_after_max_attempts(db):
    mail = add_mail()
    handler = RecordingHandler(rcpt_answers={"a@example.com": "450 4.2.1 try again later"})
    smtp_now = utcnow()
    with smtp_server(handler) as port:
        smtp = settings(port, max_attempts=3)
        reports = []
        for _ in range(3):
            reports.append(deliver_due(smtp, now=smtp_now))
            smtp_now += timedelta(minutes=5)

    assert [r.deferred for r in reports] == [1, 1, 0]
    assert reports[-1].failed == 1
    stored = reload(mail)
    assert stored.status == OutboxMail.STATUS_FAILED
    assert stored.attempts == 3
    assert "450 4.2.1 try again later" in stored.last_error


def test_catcher_stores_received_mail_as_eml(tmp_path: Path):
    directory = tmp_path / "mails"
    port = free_port()
    controller = serve(directory, HOST, port)
    try:
        message = EmailMessage()
        message["From"] = "portal@example.com"
        message["To"] = "kunde@example.com"
        message["Subject"] = "Zugangsdaten für das Portal"
        message.set_content("Hallo Jürgen")
        with smtplib.SMTP(HOST, port, timeout=5) as client:
            client.send_message(message)
            client.send_message(message)
    finally:
        controller.stop()

    files = sorted(directory.glob("*.eml"))
    assert len(files) == 2
    assert [p for p in directory.iterdir() if p.suffix != ".eml"] == []
    caught = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert caught["Subject"] == "Zugangsdaten für das Portal"
    assert caught.get_content().strip() == "Hallo Jürgen"
    stamp, counter = files[0].stem.split("-")
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ") <= utcnow()
    assert counter == "0001"
