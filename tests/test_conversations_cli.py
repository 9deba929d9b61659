"""`ptportal mailbox test|read|append` and the mailbox lines of `ptportal check`."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from click.testing import CliRunner
from conftest import links_for
from conversation_helpers import MAILBOX_ADDRESS, mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import CUSTOMER, mail

from portal.cli import main
from shared.checks import run_checks
from shared.conversations.messages import post_staff_message
from shared.mail.delivery import build_message
from shared.models import OrderMessage, ReceivedMail


def _run(mailroom, *args: str):
    return CliRunner().invoke(main, ["--config", str(mailroom.ini), *args])


def test_mailbox_test_says_what_the_worker_will_find(mailroom) -> None:
    mailroom.append(mail(subject="wartet"))
    result = _run(mailroom, "mailbox", "test", "orders")
    assert result.exit_code == 0, result.output
    assert "certificate verified" in result.output and "1 mails waiting" in result.output
    unknown = _run(mailroom, "mailbox", "test", "nope")
    assert unknown.exit_code == 1 and "no [mailbox:nope]" in unknown.output


def test_mailbox_read_imports_once(mailroom) -> None:
    mailroom.append(mail(subject="[Auftrag A1] per Kommando"))
    result = _run(mailroom, "mailbox", "read", "orders")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 imported (1 to_order), 0 skipped"
    assert _run(mailroom, "mailbox", "read", "orders").output.strip() == (
        "0 imported (nothing new), 0 skipped"
    )


def test_mailbox_append_a_reply_to_a_portal_mail_finds_the_order(mailroom, tmp_path) -> None:
    settings = mailroom.settings
    message = post_staff_message(settings, links_for(settings), mailroom.order, mailroom.owner, "?")
    sent = tmp_path / "sent.eml"
    sent.write_bytes(build_message(message.outbox_mail).as_bytes())

    result = _run(mailroom, "mailbox", "append", "orders", "--reply-to", str(sent))
    assert result.exit_code == 0, result.output
    (entry,) = mailroom.folder("INBOX")
    assert entry.subject.startswith("Re: [Auftrag A1]")

    mailroom.read()
    reply = OrderMessage.get(OrderMessage.source == OrderMessage.SOURCE_MAIL)
    assert reply.body == "Vielen Dank, so passt es."
    assert ReceivedMail.get().sender == CUSTOMER
    raw = mailroom.dovecot.list_folder(mailroom.user, "Processed")
    assert len(raw) == 1


def test_check_tests_every_active_mailbox(mailroom) -> None:
    results = {result.name: result for result in run_checks(mailroom.settings)}
    assert results["mailbox orders"].ok, results["mailbox orders"].detail
    broken = mailroom.settings.__class__(
        **{
            **mailroom.settings.__dict__,
            "mailboxes": (mailroom.mailbox(password="falsch"),),
        }
    )
    failed = {result.name: result for result in run_checks(broken)}["mailbox orders"]
    assert not failed.ok and "refused" in failed.detail


def test_a_reply_is_addressed_like_the_original_asks(mailroom, tmp_path) -> None:
    settings = mailroom.settings
    message = post_staff_message(settings, links_for(settings), mailroom.order, mailroom.owner, "!")
    sent = tmp_path / "sent.eml"
    sent.write_bytes(build_message(message.outbox_mail).as_bytes())
    _run(mailroom, "mailbox", "append", "orders", "--reply-to", str(sent), "--text", "Ja")
    from shared.mail_intake.imap import open_mailbox

    with open_mailbox(mailroom.mailbox()) as connection:
        (ref,) = connection.unprocessed()
        path = connection.fetch_to_file(ref, tmp_path / "reply.eml").path
    reply = message_from_bytes(path.read_bytes(), policy=default)
    assert reply["To"] == MAILBOX_ADDRESS
    assert reply["In-Reply-To"].strip() == message.outbox_mail.message_id
