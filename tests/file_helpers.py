"""A customer with an order and received files, for tests below the web layer."""

from __future__ import annotations

import io

import pytest
from conftest import base_sections, write_ini

from shared.accounts.customers import upsert_customer
from shared.config import load_settings
from shared.db import bind_database, database, write_transaction
from shared.files.folders import FOLDER_INCOMING, create_order_folders
from shared.files.receiving import append_chunk, start_upload
from shared.models import Order, OrderFile, StaffUser
from shared.schema import init_database


@pytest.fixture(name="world")
def world_fixture(tmp_path, clamd):
    """Settings pointing at the test clamd, a customer with an order and its folders."""
    sections = base_sections(
        2525, clamav={"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}
    )
    settings = load_settings(write_ini(tmp_path, sections))
    bind_database(settings.database.url)
    init_database("Testdruck")
    with write_transaction():
        customer, _ = upsert_customer("K1", name="Kunde", email="k1@example.com")
        order = Order.create(project_no="A1", customer=customer, folders_created=True)
        staff = StaffUser.create(username="anna", name="Anna")
    create_order_folders(settings.storage.order_root, "K1", "A1")
    yield settings, order, staff
    database.close()


def received(settings, order, name: str, data: bytes) -> OrderFile:
    """A file uploaded completely into the staging area, as the tus endpoint leaves it."""
    file = start_upload(settings, order, name, len(data))
    append_chunk(settings, file, 0, io.BytesIO(data), len(data))
    return OrderFile.get_by_id(file.id)


def files_in(order: Order, state: str, count: int, name: str = "") -> list[int]:
    """``count`` files of ``order`` in ``state``, oldest first, written directly (for pages
    that only read them): ``{state} {n}.pdf`` with no stored file, or ``{name} {n}.pdf``
    stored in Eingehend under that name; rejected ones carry a signature."""
    with write_transaction():
        return [
            OrderFile.create(
                order=order,
                folder=FOLDER_INCOMING,
                display_name=f"{name or state} {number}.pdf",
                stored_name=f"{name} {number}.pdf" if name else None,
                size=1000 + number,
                state=state,
                signature="Eicar-Signature" if state == OrderFile.STATE_REJECTED else "",
            ).id
            for number in range(count)
        ]
