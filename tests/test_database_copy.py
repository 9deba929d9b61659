"""`ptportal db copy`: a shop's SQLite database moved into an empty PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest
from conftest import base_sections, write_ini
from postgres_helpers import create_database

from shared.clock import utcnow
from shared.db import bind_database, database, make_database, write_transaction
from shared.models import (
    ALL_MODELS,
    Contact,
    Customer,
    MailAttachment,
    Order,
    OrderFile,
    OutboxMail,
    PortalLogin,
)
from shared.schema import init_database

pytestmark = pytest.mark.sqlite_only  # the source is SQLite; the target a PostgreSQL cluster


@pytest.fixture(scope="module")
def cluster():
    from postgres_helpers import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def shop(tmp_path):
    """A SQLite shop with a bit of everything: booleans, dates, times, blobs, foreign keys."""
    ini = write_ini(tmp_path, base_sections(25))
    bind_database(f"sqlite:///{tmp_path / 'data' / 'ptportal.db'}")
    init_database("Testdruck")
    with write_transaction():
        customer = Customer.create(customer_no="K1", name="Müller & Söhne", portal_enabled=True)
        contact = Contact.create(customer=customer, email="anna@example.com", favorite=True)
        PortalLogin.create(customer=customer, username="k1", state="active")
        order = Order.create(
            project_no="A-1", customer=customer, contact=contact, due_date=date(2026, 12, 24)
        )
        for number in range(2500):
            OrderFile.create(
                order=order,
                folder="Eingehend",
                display_name=f"Seite {number}.pdf",
                size=number + 1,
                state="clean",
                received_at=utcnow(),
            )
        mail = OutboxMail.create(
            message_id="<1@x>",
            kind="test",
            sender="a@b.de",
            recipients="c@d.de",
            subject="Ä",
            text_body="t",
            html_body="h",
        )
        MailAttachment.create(mail=mail, file_name="job.xml", content=b"\x00\x01<xml/>\xff")
    yield ini
    database.close()


def counts(db) -> dict[str, int]:
    with db.bind_ctx(ALL_MODELS):
        return {model._meta.table_name: model.select().count() for model in ALL_MODELS}


def test_every_table_is_copied_checked_and_ids_continue(shop, cluster):
    from shared.database_copy import copy_database

    target_url = create_database(cluster, "copy_target")
    seen = []

    report = copy_database(target_url, lambda table, copied, total: seen.append(table))

    assert report.problems == []
    assert report.rows["order_file"] == 2500 and report.rows["clients"] == 1
    assert {"order_file", "mail_attachment", "schema_version"} <= set(seen)
    source_counts = counts(database.obj)
    target = make_database(target_url)
    assert counts(target) == source_counts
    with target.bind_ctx(ALL_MODELS):
        customer = Customer.get(Customer.customer_no == "K1")
        assert customer.name == "Müller & Söhne" and customer.portal_enabled is True
        assert Order.get().due_date == date(2026, 12, 24)
        assert MailAttachment.get().content == b"\x00\x01<xml/>\xff"
        # New rows get ids after the copied ones.
        fresh = Customer.create(customer_no="K2", name="Neu")
        assert fresh.id > customer.id
    target.close()


def test_a_target_with_data_is_refused_and_left_alone(shop, cluster):
    from shared.database_copy import copy_database
    from shared.errors import Conflict

    target_url = create_database(cluster, "copy_twice")
    copy_database(target_url)
    before = counts(make_database(target_url))

    with pytest.raises(Conflict, match="not empty"):
        copy_database(target_url)

    assert counts(make_database(target_url)) == before


def test_the_command_shows_progress_and_a_summary(shop, cluster):
    target_url = create_database(cluster, "copy_command")
    database.close()

    done = subprocess.run(
        [sys.executable, "-m", "portal", "--config", str(shop), "db", "copy", "--to", target_url],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "order_file: 2500 rows" in done.stdout
    assert "copied and checked" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "portal", "--config", str(shop), "db", "copy", "--to", "mysql://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "postgresql://USER@HOST/DB" in refused.stderr
