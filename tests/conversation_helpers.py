"""An order, its customer, a staff owner and a mailbox on the real dovecot, for conversations.

Test modules get the fixture ``mailroom`` with
``from conversation_helpers import mailroom_fixture  # noqa: F401`` (plus the dovecot
fixtures). It binds a fresh SQLite database, points [clamav] at the test clamd and
[mailbox:orders] at a fresh dovecot user, and creates:

- customer K1 (k1@kunde.example) with the contact ``CUSTOMER`` (Anna Muster) and the open
  order A1 owned by staff user "olga" (olga@druckerei.example);
- customer K2 (k2@andere.example) with the open order B1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import base_sections, write_ini
from dovecot_helpers import Dovecot
from mail_intake_helpers import CUSTOMER

from shared.accounts.customers import add_contact, upsert_customer
from shared.config import MailboxSettings, Settings, load_settings
from shared.conversations.importing import MailImporter, PassReport
from shared.db import bind_database, database, write_transaction
from shared.files.folders import create_order_folders
from shared.files.intake import make_scanner, scan_received
from shared.mail_intake.imap import open_mailbox
from shared.models import Order, OrderFile, StaffUser
from shared.schema import init_database

ROOT = Path(__file__).resolve().parent.parent
MAILBOX_ADDRESS = "auftraege@druckerei.example"
OWNER_EMAIL = "olga@druckerei.example"


@dataclass
class Mailroom:
    """Everything a conversation test needs; ``read()`` imports the mailbox once."""

    settings: Settings
    dovecot: Dovecot
    user: str
    order: Order
    other_order: Order
    owner: StaffUser
    ini: Path

    def append(self, message: bytes | EmailMessage, folder: str = "INBOX") -> int:
        return self.dovecot.append(self.user, folder, message)

    def mailbox(self, **changes: object) -> MailboxSettings:
        """The mailbox "orders", with ``changes`` (e.g. smaller limits)."""
        return replace(self.settings.mailbox("orders"), **changes)

    def read(self, mailbox: MailboxSettings | None = None) -> PassReport:
        """One import pass, scanning every file it brings at once (as the worker would)."""
        received: list[int] = []
        mailbox = mailbox or self.mailbox()
        importer = MailImporter(self.settings, mailbox, received.append)
        importer.clean_work()
        with open_mailbox(mailbox) as connection:
            report = importer.import_pending(connection)
        scanner = make_scanner(self.settings)
        for file_id in received:
            scan_received(self.settings, scanner, file_id)
        return report

    def folder(self, folder: str = "INBOX"):
        return self.dovecot.list_folder(self.user, folder)

    def files(self) -> list[OrderFile]:
        return list(OrderFile.select().order_by(OrderFile.id))

    def ptportal(self, *args: str, env: dict[str, str] | None = None, **options):
        """Run the ``ptportal`` command with this client.ini (a separate process)."""
        command = [sys.executable, "-m", "portal", "--config", str(self.ini), *args]
        return subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **options,
        )


def mailroom_sections(
    tmp_path: Path, dovecot: Dovecot, user: str, clamd, **overrides: dict[str, object]
) -> dict[str, dict[str, object]]:
    """client.ini sections with [mailbox:orders] on ``user``'s dovecot mailbox."""
    sections = base_sections(
        2525,
        clamav={"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        **{
            "mailbox:orders": {
                "host": "localhost",
                "port": dovecot.imaps_port,
                "security": "ssl",
                "user": user,
                "password": dovecot.passwords[user],
                "ca_file": dovecot.ca_file,
                "address": MAILBOX_ADDRESS,
                "poll_interval_seconds": 10,
            }
        },
    )
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return sections


def seed_orders(settings: Settings) -> tuple[Order, Order, StaffUser]:
    """The customers, contacts, orders and owner described in the module docstring."""
    with write_transaction():
        owner = StaffUser.create(username="olga", name="Olga Owner", email=OWNER_EMAIL)
        k1, _ = upsert_customer("K1", name="Kunde Eins", email="k1@kunde.example")
        add_contact(k1, CUSTOMER, "Anna Muster", favorite=True)
        k2, _ = upsert_customer("K2", name="Kunde Zwei", email="k2@andere.example")
        due = date.today() + timedelta(days=7)
        order = Order.create(
            project_no="A1", customer=k1, owner=owner, due_date=due, folders_created=True
        )
        other = Order.create(project_no="B1", customer=k2, due_date=due, folders_created=True)
    create_order_folders(settings.storage.order_root, "K1", "A1")
    create_order_folders(settings.storage.order_root, "K2", "B1")
    return order, other, owner


@pytest.fixture(name="mailroom")
def mailroom_fixture(tmp_path, dovecot, imap_user, clamd) -> Iterator[Mailroom]:
    """See the module docstring."""
    dovecot.create_folder(imap_user, "Processed")
    ini = write_ini(tmp_path, mailroom_sections(tmp_path, dovecot, imap_user, clamd))
    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database("Testdruck")
    order, other, owner = seed_orders(settings)
    yield Mailroom(settings, dovecot, imap_user, order, other, owner, ini)
    database.close()


def wait_for(condition, timeout: float = 10, interval: float = 0.05):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {condition}")
