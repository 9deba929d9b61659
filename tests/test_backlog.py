"""The backlog: a few most urgent files per section with the true counts, and every file paged."""

from __future__ import annotations

import pytest
from file_helpers import files_in

from shared.db import bind_database, database, write_transaction
from shared.files.backlog import (
    OVERVIEW_ROWS,
    SECTION_HELD,
    SECTION_REJECTED,
    SECTION_WAITING,
    backlog_counts,
    backlog_overview,
    backlog_page,
)
from shared.models import Customer, Order, OrderFile
from shared.schema import init_database


@pytest.fixture
def order(database_url):
    bind_database(database_url)
    init_database("Testdruck")
    with write_transaction():
        customer = Customer.create(customer_no="K1", name="Muster & Co")
        created = Order.create(project_no="A1", customer=customer)
    yield created
    database.close()


def ids(files) -> list[int]:
    return [file.id for file in files]


def test_the_overview_shows_the_most_urgent_few_of_each_section_and_counts_all(order):
    scanning = files_in(order, OrderFile.STATE_SCANNING, 4)
    waiting = files_in(order, OrderFile.STATE_WAITING, 4)
    held = files_in(order, OrderFile.STATE_TOO_LARGE, OVERVIEW_ROWS + 2)
    rejected = files_in(order, OrderFile.STATE_REJECTED, 12)
    for state in (OrderFile.STATE_CLEAN, OrderFile.STATE_UPLOADING, OrderFile.STATE_DELETED):
        files_in(order, state, 3)

    overview = backlog_overview()

    assert list(overview) == [SECTION_WAITING, SECTION_HELD, SECTION_REJECTED]
    assert [part.total for part in overview.values()] == [8, OVERVIEW_ROWS + 2, 12]
    # The longest waiting and held first, the latest rejection first.
    assert ids(overview[SECTION_WAITING].files) == (scanning + waiting)[:OVERVIEW_ROWS]
    assert ids(overview[SECTION_HELD].files) == held[:OVERVIEW_ROWS]
    assert ids(overview[SECTION_REJECTED].files) == rejected[::-1][:OVERVIEW_ROWS]
    row = overview[SECTION_REJECTED].files[0]
    assert (row.project_no, row.customer_name) == ("A1", "Muster & Co")
    assert (row.display_name, row.size) == ("rejected 11.pdf", 1011)
    assert (row.state, row.signature) == ("rejected", "Eicar-Signature")


def test_an_empty_backlog_costs_only_the_count(order):
    files_in(order, OrderFile.STATE_CLEAN, 3)

    overview = backlog_overview()

    assert backlog_counts() == {SECTION_WAITING: 0, SECTION_HELD: 0, SECTION_REJECTED: 0}
    assert all(part.files == [] and part.total == 0 for part in overview.values())
    assert backlog_page(SECTION_HELD).items == []
    assert backlog_page(SECTION_HELD).pages == 1


def test_a_section_pages_through_all_its_files(order):
    rejected = files_in(order, OrderFile.STATE_REJECTED, 12)
    held = files_in(order, OrderFile.STATE_TOO_LARGE, 2)

    pages = [backlog_page(SECTION_REJECTED, number, per_page=5) for number in (1, 2, 3)]

    assert [page.total for page in pages] == [12, 12, 12]
    assert [page.pages for page in pages] == [3, 3, 3]
    assert [len(page.items) for page in pages] == [5, 5, 2]
    assert [file_id for page in pages for file_id in ids(page.items)] == rejected[::-1]
    assert backlog_page(SECTION_REJECTED, 99, per_page=5).number == 3
    assert backlog_page(SECTION_REJECTED, -1, per_page=5).number == 1
    assert ids(backlog_page(SECTION_HELD).items) == held
