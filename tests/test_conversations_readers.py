"""The worker's mailbox readers: IDLE, polling, the lease, failures, a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace

import pytest
from conversation_helpers import mailroom_fixture, wait_for  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture, running_dovecot  # noqa: F401
from mail_intake_helpers import mail, raw

from shared.conversations.readers import MailboxReader, MailboxReaders, claim, holder, release
from shared.mail_intake.imap import MailboxError
from shared.models import MailboxState, OrderMessage, ReceivedMail


def _state(name: str = "orders") -> MailboxState | None:
    return MailboxState.get_or_none(MailboxState.name == name)


def test_with_idle_a_new_mail_is_imported_at_once_and_the_reader_stops_cleanly(mailroom):
    readers = MailboxReaders(mailroom.settings)
    readers.start()
    try:
        wait_for(lambda: _state() and _state().checked_at)
        assert _state().idle is True
        started = time.monotonic()
        mailroom.append(mail(subject="[Auftrag A1] gleich da"))
        wait_for(lambda: OrderMessage.select().exists(), timeout=5)
        assert time.monotonic() - started < 5
        # A broken mail does not stop the reader.
        mailroom.append(raw("Subject: [Auftrag A1]", "Content-Type: multipart/mixed", "", "x"))
        mailroom.append(mail(subject="[Auftrag A1] danach", message_id="<after@kunde.example>"))
        wait_for(lambda: ReceivedMail.select().count() == 3, timeout=5)
    finally:
        stopping = time.monotonic()
        readers.stop()
    assert time.monotonic() - stopping < 3
    assert not any(thread.is_alive() for thread in readers.threads)
    assert _state().reader == ""  # the lease is given back


def test_without_idle_the_folder_is_polled_every_interval(mailroom, tmp_path):
    with running_dovecot(capabilities="IMAP4rev1 LITERAL+ UIDPLUS") as plain:
        user = plain.next_user()
        plain.create_folder(user, "Processed")
        mailbox = replace(
            mailroom.mailbox(),
            port=plain.imaps_port,
            user=user,
            password=plain.passwords[user],
            ca_file=plain.ca_file,
        )
        stop = threading.Event()
        reader = MailboxReader(mailroom.settings, mailbox, stop=stop)
        thread = threading.Thread(target=reader.run)
        thread.start()
        try:
            wait_for(lambda: _state() and _state().checked_at)
            assert _state().idle is False
            started = time.monotonic()
            plain.append(user, "INBOX", mail(subject="[Auftrag A1] gepollt"))
            wait_for(
                lambda: OrderMessage.select().exists(), timeout=mailbox.poll_interval_seconds + 2
            )
            assert time.monotonic() - started <= mailbox.poll_interval_seconds + 2
        finally:
            stop.set()
            thread.join(5)
        assert not thread.is_alive()


def test_a_failing_mailbox_is_recorded_and_retried_without_ending_the_thread(mailroom):
    wrong = mailroom.mailbox(password="falsch")
    stop = threading.Event()
    thread = threading.Thread(target=MailboxReader(mailroom.settings, wrong, stop=stop).run)
    thread.start()
    try:
        wait_for(lambda: _state() and _state().error)
        assert "login as" in _state().error and "refused" in _state().error
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_one_reader_per_mailbox(mailroom):
    assert claim("orders", "other-host:1")
    assert holder("orders") == "other-host:1"
    assert not claim("orders", "third-host:2")
    with pytest.raises(MailboxError, match="is being read by other-host:1"):
        MailboxReader(mailroom.settings, mailroom.mailbox(), reader="mine:3").read_once()
    release("orders", "other-host:1")
    assert holder("orders") == ""
    assert MailboxReader(mailroom.settings, mailroom.mailbox(), reader="mine:3").read_once()


def test_the_lease_of_a_process_that_is_gone_is_taken_over_at_once(mailroom):
    import socket

    dead = f"{socket.gethostname()}:999999"
    assert claim("orders", dead)
    assert claim("orders", "me:1")


def test_ptportal_worker_reads_mail_and_stops_on_sigterm(mailroom):
    worker = mailroom.ptportal("worker", "--workers", "1")
    try:
        wait_for(lambda: _state() and _state().checked_at, timeout=30)
        mailroom.append(mail(subject="[Auftrag A1] vom Worker"))
        wait_for(lambda: OrderMessage.select().exists(), timeout=10)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert worker.returncode == 0, output
    assert "mailbox orders: reader stopped" in output
