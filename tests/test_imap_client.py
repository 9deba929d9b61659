"""The IMAP client against a real dovecot: verified TLS, listing, fetching, moving, IDLE."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot_helpers import (  # noqa: F401  (fixtures "dovecot" and "imap_user")
    HOST,
    Dovecot,
    dovecot_fixture,
    imap_user_fixture,
    running_dovecot,
)
from mail_intake_helpers import mail, write_big_mail

from shared.mail_intake import imap
from shared.mail_intake.imap import (
    FLAGGED,
    IDLE_MAX_SECONDS,
    KEYWORD_PROCESSED,
    MOVED,
    MailboxError,
    connection_test,
    open_mailbox,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here


def test_dovecot_starts_within_two_seconds() -> None:
    server = Dovecot()
    try:
        assert server.start() < 2, server.log
        ok, message = connection_test(server.settings("alice", processed_folder=""))
        assert ok, message
    finally:
        server.close()
    assert not server.directory.exists()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_connection_test_reports_a_working_mailbox(
    dovecot: Dovecot, imap_user: str, security: str
) -> None:
    dovecot.create_folder(imap_user, "Processed")
    dovecot.append(imap_user, "INBOX", mail())
    settings = dovecot.settings(imap_user, security=security)

    ok, message = connection_test(settings)

    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    assert ok, message
    assert message == (
        f"Logged in to localhost:{port} as {imap_user} ({security}, certificate verified). "
        "Folder 'INBOX': 1 mails waiting. Processed mail is moved to 'Processed'. "
        "The server offers IDLE: new mail is read as soon as it arrives."
    )


UNTRUSTED = "cannot connect: the server's certificate is not trusted"
WRONG_PASSWORD = "login as {user} refused: [AUTHENTICATIONFAILED] Authentication failed."
MISMATCH = "(IP address mismatch, certificate is not valid for '127.0.0.1'.)"
REFUSED = "cannot connect: connection refused (wrong host or port, or the server is down)"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"password": "wrong"}, WRONG_PASSWORD),
        ({"ca_file": None}, f"{UNTRUSTED} (unable to get local issuer certificate)"),
        ({"host": "127.0.0.1"}, f"{UNTRUSTED} {MISMATCH}"),
        ({"port": 1}, REFUSED),
        ({"folder": "Auftraege"}, "folder 'Auftraege' does not exist"),
    ],
    ids=["wrong-password", "untrusted-ca", "host-name-mismatch", "refused", "folder-missing"],
)
def test_failures_are_one_readable_line(
    dovecot: Dovecot, imap_user: str, overrides: dict, expected: str
) -> None:
    settings = dovecot.settings(imap_user, **overrides)

    with pytest.raises(MailboxError) as caught:
        open_mailbox(settings)

    assert str(caught.value).endswith(expected.format(user=imap_user))
    assert "\n" not in str(caught.value)
    assert settings.password not in str(caught.value)
    assert connection_test(settings) == (False, str(caught.value))


def test_a_wrong_ca_file_is_refused(dovecot: Dovecot, imap_user: str, tmp_path: Path) -> None:
    with running_dovecot() as other:  # a second server: its CA did not sign our certificate
        settings = dovecot.settings(imap_user, ca_file=other.ca_file)
        ok, message = connection_test(settings)
    assert not ok
    assert message.endswith("certificate is not trusted (unable to get local issuer certificate)")


def test_ssl_security_on_the_starttls_port_fails_quickly(
    dovecot: Dovecot, imap_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dovecot.settings(imap_user, security="ssl", port=dovecot.imap_port)
    ok, message = connection_test(settings)
    assert not ok
    assert "TLS failed" in message


def test_starttls_on_the_implicit_tls_port_times_out_with_a_hint(
    dovecot: Dovecot, imap_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap, "CONNECT_TIMEOUT_SECONDS", 0.5)
    settings = dovecot.settings(imap_user, security="starttls", port=dovecot.imaps_port)
    ok, message = connection_test(settings)
    assert not ok
    assert message.endswith(
        "cannot connect: no answer in time (does security = ssl or starttls match this port?)"
    )


def test_connection_test_names_a_missing_processed_folder(dovecot: Dovecot, imap_user: str) -> None:
    ok, message = connection_test(dovecot.settings(imap_user))
    assert not ok
    assert (
        "Folder 'Processed' for processed mail does not exist: create it, or set "
        "processed_folder = - to flag mail instead of moving it." in message
    )


def test_unprocessed_lists_uidvalidity_uid_size_and_message_id(
    dovecot: Dovecot, imap_user: str
) -> None:
    first = dovecot.append(imap_user, "INBOX", mail(message_id="<one@kunde.example>"))
    second = dovecot.append(imap_user, "INBOX", mail(message_id=None))

    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        refs = mailbox.unprocessed()
        uidvalidity = mailbox.uidvalidity

    sizes = {entry.uid: entry.size for entry in dovecot.list_folder(imap_user, "INBOX")}
    assert uidvalidity > 0
    assert [(ref.uidvalidity, ref.uid, ref.size, ref.message_id) for ref in refs] == [
        (uidvalidity, first, sizes[first], "<one@kunde.example>"),
        (uidvalidity, second, sizes[second], ""),
    ]


def test_fetch_writes_the_exact_bytes_without_marking_seen(
    dovecot: Dovecot, imap_user: str, tmp_path: Path
) -> None:
    message = mail().as_bytes().replace(b"\n", b"\r\n")
    uid = dovecot.append(imap_user, "INBOX", message)

    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        (ref,) = mailbox.unprocessed()
        fetched = mailbox.fetch_to_file(ref, tmp_path / "mail.eml")

    assert fetched.path == tmp_path / "mail.eml"
    assert fetched.path.read_bytes() == message
    assert fetched.size == len(message)
    assert list(tmp_path.iterdir()) == [tmp_path / "mail.eml"]  # no .part left behind
    (entry,) = dovecot.list_folder(imap_user, "INBOX")
    assert (entry.uid, "\\Seen" in entry.flags) == (uid, False)


def test_a_mail_over_the_size_limit_is_not_fetched(
    dovecot: Dovecot, imap_user: str, tmp_path: Path
) -> None:
    dovecot.append(imap_user, "INBOX", mail())

    with open_mailbox(dovecot.settings(imap_user, max_mail_bytes=100)) as mailbox:
        (ref,) = mailbox.unprocessed()
        fetched = mailbox.fetch_to_file(ref, tmp_path / "mail.eml")

    assert fetched.path is None
    assert fetched.skipped == f"the mail is {ref.size} bytes, over the limit of 100"
    assert list(tmp_path.iterdir()) == []


def test_a_100_mb_mail_is_streamed_to_disk_or_skipped(
    dovecot: Dovecot, imap_user: str, tmp_path: Path
) -> None:
    source = write_big_mail(tmp_path / "big.eml", 100 * 1024 * 1024)
    uid = dovecot.append_file(imap_user, "INBOX", source)
    size = source.stat().st_size

    with open_mailbox(dovecot.settings(imap_user, max_mail_bytes=50 * 1024 * 1024)) as mailbox:
        (ref,) = mailbox.unprocessed()
        skipped = mailbox.fetch_to_file(ref, tmp_path / "skipped.eml")
    with open_mailbox(dovecot.settings(imap_user, max_mail_bytes=size)) as mailbox:
        (ref,) = mailbox.unprocessed()
        fetched = mailbox.fetch_to_file(ref, tmp_path / "fetched.eml")

    assert (ref.uid, ref.size) == (uid, size)
    assert skipped.path is None
    assert skipped.skipped == f"the mail is {size} bytes, over the limit of {50 * 1024 * 1024}"
    assert not (tmp_path / "skipped.eml").exists()
    assert fetched.path is not None
    assert fetched.path.stat().st_size == size
    with source.open("rb") as expected, fetched.path.open("rb") as actual:
        while True:
            want, got = expected.read(1 << 20), actual.read(1 << 20)
            assert want == got
            if not want:
                break


def test_mark_processed_moves_the_mail(dovecot: Dovecot, imap_user: str) -> None:
    dovecot.create_folder(imap_user, "Processed")
    assert sorted(dovecot.folders(imap_user)) == ["INBOX", "Processed"]
    dovecot.append(imap_user, "INBOX", mail(message_id="<move@kunde.example>"))

    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        (ref,) = mailbox.unprocessed()
        marked = mailbox.mark_processed(ref)
        assert mailbox.unprocessed() == []

    assert marked == imap.Marked(MOVED)
    assert dovecot.list_folder(imap_user, "INBOX") == []
    assert [e.message_id for e in dovecot.list_folder(imap_user, "Processed")] == [
        "<move@kunde.example>"
    ]


def test_a_refused_move_flags_the_mail_instead(dovecot: Dovecot, imap_user: str) -> None:
    uid = dovecot.append(imap_user, "INBOX", mail())  # no folder "Processed" exists

    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        (ref,) = mailbox.unprocessed()
        marked = mailbox.mark_processed(ref)
        assert mailbox.unprocessed() == []

    assert marked.how == FLAGGED
    assert (
        marked.reason == "cannot move to 'Processed': [TRYCREATE] Mailbox doesn't exist: Processed"
    )
    (entry,) = dovecot.list_folder(imap_user, "INBOX")
    assert entry.uid == uid
    assert {"\\Seen", KEYWORD_PROCESSED} <= set(entry.flags)


def test_without_a_processed_folder_mail_is_flagged(dovecot: Dovecot, imap_user: str) -> None:
    dovecot.append(imap_user, "INBOX", mail())

    with open_mailbox(dovecot.settings(imap_user, processed_folder="")) as mailbox:
        (ref,) = mailbox.unprocessed()
        assert mailbox.mark_processed(ref) == imap.Marked(FLAGGED, "no processed folder configured")

    (entry,) = dovecot.list_folder(imap_user, "INBOX")
    assert KEYWORD_PROCESSED in entry.flags


def test_a_changed_uidvalidity_refuses_fetch_and_move(
    dovecot: Dovecot, imap_user: str, tmp_path: Path
) -> None:
    dovecot.append(imap_user, "INBOX", mail())
    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        (ref,) = mailbox.unprocessed()
        stale = imap.MessageRef(ref.uidvalidity + 1, ref.uid, ref.size, ref.message_id)
        with pytest.raises(MailboxError, match="list the folder again"):
            mailbox.fetch_to_file(stale, tmp_path / "x.eml")
        with pytest.raises(MailboxError, match="list the folder again"):
            mailbox.mark_processed(stale)
    assert len(dovecot.list_folder(imap_user, "INBOX")) == 1


@pytest.fixture(scope="module")
def plain_dovecot() -> Iterator[Dovecot]:
    """A server that offers neither MOVE nor IDLE (but UIDPLUS)."""
    with running_dovecot(capabilities="IMAP4rev1 LITERAL+ UIDPLUS") as server:
        yield server


def test_without_move_mail_is_copied_and_expunged(plain_dovecot: Dovecot) -> None:
    user = plain_dovecot.next_user()
    plain_dovecot.create_folder(user, "Processed")
    plain_dovecot.append(user, "INBOX", mail(message_id="<keep@kunde.example>"))
    plain_dovecot.append(user, "INBOX", mail(message_id="<copy@kunde.example>"))

    with open_mailbox(plain_dovecot.settings(user)) as mailbox:
        assert not mailbox.move_supported
        _keep, copy = mailbox.unprocessed()
        assert mailbox.mark_processed(copy) == imap.Marked(MOVED)

    inbox = plain_dovecot.list_folder(user, "INBOX")
    assert [e.message_id for e in inbox] == ["<keep@kunde.example>"]
    assert "\\Deleted" not in inbox[0].flags
    processed = plain_dovecot.list_folder(user, "Processed")
    assert [e.message_id for e in processed] == ["<copy@kunde.example>"]


def test_without_idle_the_wait_is_the_poll_interval(plain_dovecot: Dovecot) -> None:
    user = plain_dovecot.next_user()
    with open_mailbox(plain_dovecot.settings(user, poll_interval_seconds=1)) as mailbox:
        assert not mailbox.idle_supported
        started = time.monotonic()
        assert mailbox.wait_for_mail(threading.Event()) is False
        waited = time.monotonic() - started
    ok, message = connection_test(plain_dovecot.settings(user, processed_folder=""))
    assert 0.9 < waited < 2
    assert ok, message
    assert message.endswith("The server offers no IDLE: the folder is read every 60 s.")


def test_idle_wakes_within_a_second_of_new_mail(dovecot: Dovecot, imap_user: str) -> None:
    appended_at: list[float] = []

    def deliver() -> None:
        dovecot.append(imap_user, "INBOX", mail())
        appended_at.append(time.monotonic())

    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        assert mailbox.idle_supported
        assert mailbox.unprocessed() == []
        delivery = threading.Timer(0.3, deliver)
        delivery.start()
        news = mailbox.wait_for_mail(threading.Event(), timeout_seconds=10)
        woke = time.monotonic()
        delivery.join()
        assert news is True
        assert woke - appended_at[0] < 1, f"woke {woke - appended_at[0]:.2f} s after the APPEND"
        assert len(mailbox.unprocessed()) == 1


def test_idle_stops_when_another_thread_asks(dovecot: Dovecot, imap_user: str) -> None:
    stop = threading.Event()
    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert mailbox.wait_for_mail(stop, timeout_seconds=30) is False
        stopped_after = time.monotonic() - started
        # The connection is usable afterwards: IDLE was ended properly.
        assert mailbox.unprocessed() == []
    assert 0.3 <= stopped_after < 0.3 + imap.STOP_CHECK_SECONDS + 0.5


def test_idle_ends_at_its_timeout_and_never_waits_past_29_minutes(
    dovecot: Dovecot, imap_user: str
) -> None:
    with open_mailbox(dovecot.settings(imap_user)) as mailbox:
        started = time.monotonic()
        assert mailbox.wait_for_mail(threading.Event(), timeout_seconds=0.6) is False
        assert 0.6 <= time.monotonic() - started < 1.5
    assert IDLE_MAX_SECONDS == 29 * 60


def test_the_password_never_appears_in_repr(dovecot: Dovecot, imap_user: str) -> None:
    settings = dovecot.settings(imap_user)
    assert settings.password not in repr(settings)
    assert HOST in repr(settings)
