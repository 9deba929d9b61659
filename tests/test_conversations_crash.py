"""Exactly once across a crash: the importer killed at each step, then run again (issue 17 §6)."""

from __future__ import annotations

import signal
import time

import pytest
from conversation_helpers import mailroom_fixture  # noqa: F401
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import mail_with_attachments
from order_helpers import folder_files

from shared.files.folders import FOLDER_INCOMING
from shared.files.intake import make_scanner, scan_received
from shared.models import MessageFile, OrderFile, OrderMessage, ReceivedMail

MARKER_TIMEOUT = 60


def _mail_with_two_files():
    message = mail_with_attachments("Umschlag.pdf", "Innenteil.pdf")
    del message["Subject"]
    message["Subject"] = "[Auftrag A1] Druckdaten"
    return message


def _read(mailroom, env: dict[str, str] | None = None):
    return mailroom.ptportal("mailbox", "read", "orders", env=env)


@pytest.mark.parametrize("step", ["fetched", "staged", "committed"])
def test_killed_at_any_step_and_run_again_imports_each_mail_and_file_once(
    mailroom, tmp_path, step
) -> None:
    mailroom.append(_mail_with_two_files())
    marker = tmp_path / "paused"
    paused = _read(mailroom, {"PTPORTAL_PAUSE_AT": step, "PTPORTAL_PAUSE_MARKER": str(marker)})
    deadline = time.monotonic() + MARKER_TIMEOUT
    while not marker.exists():
        assert paused.poll() is None, paused.stdout.read()
        assert time.monotonic() < deadline, "the importer never reached the step"
        time.sleep(0.05)
    paused.send_signal(signal.SIGKILL)
    paused.wait(10)

    rows_after_crash = ReceivedMail.select().count()
    assert rows_after_crash == (1 if step == "committed" else 0)
    # The mail is still waiting in the folder: it was never marked processed.
    assert len(mailroom.folder("INBOX")) == 1

    again = _read(mailroom)
    output = again.communicate(timeout=60)[0]
    assert again.returncode == 0, output

    assert ReceivedMail.select().count() == 1
    message = OrderMessage.get()
    assert OrderMessage.select().count() == 1
    files = list(OrderFile.select().order_by(OrderFile.display_name))
    assert [file.display_name for file in files] == ["Innenteil.pdf", "Umschlag.pdf"]
    assert MessageFile.select().where(MessageFile.message == message).count() == 2
    assert mailroom.folder("INBOX") == []
    assert len(mailroom.folder("Processed")) == 1

    # The worker scans what the second run enqueued; then nothing is left in staging.
    scanner = make_scanner(mailroom.settings)
    for file in files:
        scan_received(mailroom.settings, scanner, file.id)
    assert folder_files(mailroom.settings, FOLDER_INCOMING) == ["Innenteil.pdf", "Umschlag.pdf"]
    staging = mailroom.settings.storage.staging_root
    left = sorted(path.name for path in staging.rglob("*") if path.is_file())
    assert left == [], left
