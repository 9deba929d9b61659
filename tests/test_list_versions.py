"""The list versions the database keeps (shared/list_versions.py), on SQLite and PostgreSQL.

The portal keeps a customer's rendered order list and an order's folder view under these
versions: a change a list shows that did not raise its version would leave it stale. So
each kind of change is made here the way the portal, the agent or a person at the SQL
prompt would, and the version must move for that customer or order and no other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import psycopg2
import pytest
from postgres_helpers import empty_schema, postgres_server

from shared.db import bind_database, database, write_transaction
from shared.hotfolder_status import upload_list_version
from shared.models import (
    Customer,
    Delivery,
    FileListVersion,
    Order,
    OrderFile,
    OrderListVersion,
    PortalLogin,
    UploadListVersion,
)
from shared.schema import init_database
from shared.sessions import find_session, start_session
from shared.storage import FOLDER_FINAL, FOLDER_INCOMING


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ptportal.db"
    else:
        url = request.getfixturevalue("postgres_url")
        empty_schema(url)
    bound = bind_database(url)
    init_database("Testdruck")
    yield url
    bound.close()


# What a retired trigger of an older release might have done: raise every order list.
_BUMP = "UPDATE order_list_versions SET version = version + 1;"


def version(owner: Customer | Order) -> int:
    """The order list version of a customer, or the file list version of an order."""
    if isinstance(owner, Customer):
        row = OrderListVersion.get_or_none(OrderListVersion.customer == owner.id)
    else:
        row = FileListVersion.get_or_none(FileListVersion.order == owner.id)
    return row.version if row else 0


def changed(action: Callable[[], object], *owners: Customer | Order) -> list[bool]:
    """Run ``action`` in a write transaction; for each customer or order, whether it rose."""
    before = [version(owner) for owner in owners]
    with write_transaction():
        action()
    return [version(owner) > was for owner, was in zip(owners, before, strict=True)]


@pytest.fixture
def two_customers(database_url) -> tuple[Customer, Customer]:
    with write_transaction():
        return (
            Customer.create(customer_no="K1", name="Kunde 1"),
            Customer.create(customer_no="K2", name="Kunde 2"),
        )


def _file(order: Order, **values) -> OrderFile:
    fields = {"folder": FOLDER_INCOMING, "display_name": "a.pdf", "size": 10, "state": "uploading"}
    return OrderFile.create(order=order, **(fields | values))


def test_each_change_the_order_list_shows_raises_that_customers_version(two_customers):
    mine, other = two_customers
    theirs = Order.create(project_no="B1", customer=other)
    order: Order = Order.create(project_no="A0", customer=mine)
    file = _file(order)
    steps = {
        "order created": lambda: Order.create(project_no="A1", customer=mine),
        "order's text changed": lambda: (
            Order.update(job_description="Flyer").where(Order.id == order.id).execute()
        ),
        "order's due date changed (saved as a whole)": lambda: _saved(order, due_date="2027-01-02"),
        "file announced": lambda: _file(order, display_name="b.pdf"),
        "file scanned clean": lambda: (
            OrderFile.update(state="clean").where(OrderFile.id == file.id).execute()
        ),
        "file moved to Final": lambda: (
            OrderFile.update(folder=FOLDER_FINAL).where(OrderFile.id == file.id).execute()
        ),
        "file deleted": lambda: OrderFile.delete().where(OrderFile.id == file.id).execute(),
        "order deleted with its files": lambda: Order.delete_by_id(order.id),
    }
    for name, step in steps.items():
        assert changed(step, mine, other) == [True, False], name
    assert changed(lambda: _file(theirs), mine, other) == [False, True]


def _saved(order: Order, **values) -> None:
    for name, value in values.items():
        setattr(order, name, value)
    order.save()


def test_progress_names_and_customer_saves_raise_nothing(two_customers):
    mine, _ = two_customers
    order = Order.create(project_no="A1", customer=mine)
    file = _file(order, size=1000)
    stale = Customer.get_by_id(mine.id)
    with write_transaction():
        Order.create(project_no="A2", customer=mine)
    assert version(mine) > 0

    quiet = {
        "upload progress": lambda: (
            OrderFile.update(received_bytes=500).where(OrderFile.id == file.id).execute()
        ),
        "file saved as a whole, state unchanged": lambda: _saved(file, sha256="0" * 64),
        "stored name": lambda: (
            OrderFile.update(stored_name="a.pdf").where(OrderFile.id == file.id).execute()
        ),
        "customer saved from an object read before": lambda: _saved(stale, name="Umbenannt"),
    }
    for name, step in quiet.items():
        assert changed(step, mine) == [False], name


def test_a_file_moved_to_another_customers_order_raises_both(two_customers):
    mine, other = two_customers
    file = _file(Order.create(project_no="A1", customer=mine))
    theirs = Order.create(project_no="B1", customer=other)
    move = OrderFile.update(order=theirs).where(OrderFile.id == file.id)
    assert changed(move.execute, mine, other) == [True, True]


def test_an_order_given_to_another_customer_raises_both(two_customers):
    mine, other = two_customers
    order = Order.create(project_no="A1", customer=mine)
    move = Order.update(customer=other).where(Order.id == order.id)
    assert changed(move.execute, mine, other) == [True, True]


def test_installing_again_keeps_one_trigger_each_and_drops_retired_ones(
    database_url, two_customers
):
    mine, _ = two_customers
    with write_transaction():
        Order.create(project_no="A0", customer=mine)  # the version row exists from here
    retired = "order_list_on_something_retired"
    if database_url.startswith("sqlite:///"):
        database.execute_sql(f"CREATE TRIGGER {retired} AFTER INSERT ON orders BEGIN {_BUMP} END")
    else:
        database.execute_sql(
            f"CREATE FUNCTION {retired}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {_BUMP} RETURN NULL; END $$"
        )
        database.execute_sql(
            f"CREATE TRIGGER {retired} AFTER INSERT ON orders "
            f"FOR EACH ROW EXECUTE FUNCTION {retired}()"
        )
    init_database("Testdruck")
    init_database("Testdruck")
    before = version(mine)
    with write_transaction():
        Order.create(project_no="A1", customer=mine)
    assert version(mine) == before + 1


def test_writes_from_another_connection_raise_it_too(database_url, two_customers):
    # The hotfolder agent and the worker are other processes with their own connections.
    mine, _ = two_customers
    file = _file(Order.create(project_no="A1", customer=mine))
    before = version(mine)
    statement = f"UPDATE order_file SET state = 'clean' WHERE id = {file.id:d}"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute(statement)
    else:
        with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(statement)
        connection.close()
    assert version(mine) > before


def test_the_session_lookup_brings_the_version(two_customers):
    mine, _ = two_customers
    with write_transaction():
        login = PortalLogin.create(customer=mine, username="k1", state=PortalLogin.STATE_ACTIVE)
    key = start_session(1, login=login)
    assert find_session(key).login.customer.order_list is None  # nothing changed yet
    with write_transaction():
        Order.create(project_no="A1", customer=mine)
    assert find_session(key).login.customer.order_list.version == version(mine) > 0


def test_every_change_to_a_file_raises_its_orders_file_list_version(two_customers):
    mine, _ = two_customers
    order, neighbour = (Order.create(project_no=f"A{n}", customer=mine) for n in (1, 2))
    file = _file(order, size=1000)
    steps = {
        "file announced": lambda: _file(order, display_name="b.pdf"),
        "upload progress": lambda: (
            OrderFile.update(received_bytes=500).where(OrderFile.id == file.id).execute()
        ),
        "file saved as a whole": lambda: _saved(file, sha256="0" * 64),
        "scanned clean": lambda: (
            OrderFile.update(state="clean").where(OrderFile.id == file.id).execute()
        ),
        "file deleted": lambda: OrderFile.delete().where(OrderFile.id == file.id).execute(),
    }
    for name, step in steps.items():
        assert changed(step, order, neighbour) == [True, False], name

    moved = _file(order)
    move = OrderFile.update(order=neighbour).where(OrderFile.id == moved.id)
    assert changed(move.execute, order, neighbour) == [True, True]
    quiet = Order.update(job_description="Flyer").where(Order.id == order.id)
    assert changed(quiet.execute, order) == [False]
    with write_transaction():
        Order.delete_by_id(neighbour.id)  # its files and its version go with it
    assert FileListVersion.get_or_none(FileListVersion.order == neighbour.id) is None


def test_every_change_the_hotfolder_view_shows_raises_the_upload_list_version(two_customers):
    mine, _ = two_customers
    order = Order.create(project_no="A1", customer=mine)
    file = _file(order, size=1000)

    def upload_list_changed(step) -> bool:
        before = upload_list_version()
        with write_transaction():
            step()
        return upload_list_version() > before

    shown = {
        "file announced": lambda: _file(order, display_name="b.pdf"),
        "scanned clean": lambda: (
            OrderFile.update(state="clean").where(OrderFile.id == file.id).execute()
        ),
        "delivered": lambda: Delivery.create(file=file, claimed_by="agent"),
        "delivery done": lambda: Delivery.update(state="done").execute(),
        "order renumbered": lambda: Order.update(project_no="A1-neu").execute(),
        "customer renamed": lambda: (
            Customer.update(name="Neu GmbH").where(Customer.id == mine.id).execute()
        ),
        "file deleted": lambda: OrderFile.delete().where(OrderFile.id == file.id).execute(),
    }
    for name, step in shown.items():
        assert upload_list_changed(step), name
    progress = OrderFile.update(received_bytes=10).where(OrderFile.order == order.id)
    assert not upload_list_changed(progress.execute)
    assert not upload_list_changed(lambda: Order.update(job_description="Flyer").execute())
    assert UploadListVersion.select().count() == 1
