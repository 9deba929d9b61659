"""Prepared queries (SQL built once per database) and the portal's kept connections."""

from __future__ import annotations

import re

import pytest
from flask import render_template_string
from flask_babel import force_locale
from peewee import JOIN, OperationalError

from shared.db import bind_database, database, write_transaction
from shared.listing import PER_PAGE, list_orders, order_states, search_orders
from shared.models import Customer, Order, OrderFile
from shared.prepared import PreparedSelect
from shared.schema import init_database

by_customer_no = PreparedSelect(
    lambda number: Customer.select().where(Customer.customer_no == number), "example-number"
)


def _customers(path, *numbers: str) -> None:
    bind_database(f"sqlite:///{path}")
    init_database("Testdruck")
    with write_transaction():
        for number in numbers:
            Customer.create(customer_no=number, name=f"Kunde {number}")


def test_prepared_select_answers_like_the_query_for_each_argument(tmp_path):
    _customers(tmp_path / "a.db", "K1", "K2")
    assert [c.name for c in by_customer_no.run("K1")] == ["Kunde K1"]
    assert by_customer_no.first("K2").name == "Kunde K2"
    assert by_customer_no.first("K3") is None
    # A value that merely looks like a parameter stays a value, not SQL.
    assert by_customer_no.first("K1' OR '1'='1") is None
    database.close()


def test_joined_rows_are_built_alike_on_every_execution(tmp_path):
    # From the second execution on, how peewee builds rows is kept from the first.
    _customers(tmp_path / "a.db", "K1", "K2")
    with write_transaction():
        Order.create(project_no="A1", customer=Customer.get(Customer.customer_no == "K1"))
    with_orders = PreparedSelect(
        lambda number: (
            Customer.select(Customer, Order)
            .join(Order, JOIN.LEFT_OUTER, attr="an_order")
            .where(Customer.customer_no == number)
        ),
        "example-number",
    )
    for number, project_no in [("K2", None), ("K1", "A1"), ("K2", None), ("K1", "A1")]:
        built = with_orders.first(number)
        expected = with_orders._build(number).get()
        assert (built.customer_no, built.name, built.id) == (
            expected.customer_no,
            expected.name,
            expected.id,
        )
        assert (built.an_order.project_no if built.an_order else None) == project_no
    assert [row.customer_no for row in with_orders.run("K1")] == ["K1"]
    database.close()


def test_prepared_select_follows_the_database_it_is_bound_to(tmp_path):
    _customers(tmp_path / "a.db", "K1")
    assert by_customer_no.first("K1") is not None
    database.close()
    _customers(tmp_path / "b.db", "K9")
    assert by_customer_no.first("K1") is None
    assert by_customer_no.first("K9").name == "Kunde K9"
    database.close()


def test_prepared_select_refuses_examples_it_cannot_place(tmp_path):
    _customers(tmp_path / "a.db")
    hashed = PreparedSelect(
        lambda number: Customer.select().where(Customer.customer_no == number.upper()), "k1"
    )
    with pytest.raises(ValueError, match="not found"):
        hashed.first("k1")
    twice = PreparedSelect(
        lambda a, b: Customer.select().where(Customer.customer_no.in_([a, b])), "same", "same"
    )
    with pytest.raises(ValueError, match="distinct"):
        twice.first("x", "y")
    with pytest.raises(TypeError):
        by_customer_no.first()
    database.close()


def test_order_list_and_states_over_more_than_one_page(tmp_path):
    _customers(tmp_path / "a.db", "K1", "K2")
    customer = Customer.get(Customer.customer_no == "K1")
    other = Customer.get(Customer.customer_no == "K2")
    with write_transaction():
        orders = [Order.create(project_no=f"A{n:03d}", customer=customer) for n in range(30)]
        Order.create(project_no="B001", customer=other)
        for order in orders[::3]:
            OrderFile.create(
                order=order, folder="Eingehend", display_name="a.pdf", size=1, state="clean"
            )
    first, second = search_orders(customer, page=1), search_orders(customer, page=2)
    assert first.total == second.total == 30
    assert len(first.items) == PER_PAGE and len(second.items) == 30 - PER_PAGE
    # The last page is read from the oldest end of the index, and comes out newest first.
    newest_first = [order.project_no for order in orders[::-1]]
    assert [order.project_no for order in first.items + second.items] == newest_first
    assert search_orders(customer, page=99).number == 2
    everybody = [search_orders(None, page=number) for number in (1, 2)]
    assert everybody[0].total == 31
    assert [order.project_no for page in everybody for order in page.items] == [
        "B001",
        *newest_first,
    ]
    assert everybody[1].items[0].customer.name == "Kunde K1"
    states = order_states(orders)  # 30 orders: more than one prepared batch
    assert [states[order.id] for order in orders[:4]] == [
        "data_received",
        "waiting_for_data",
        "waiting_for_data",
        "data_received",
    ]
    database.close()


def test_listing_as_fetched_equals_itself_only_while_nothing_shown_changes(tmp_path):
    _customers(tmp_path / "a.db", "K1")
    customer = Customer.get(Customer.customer_no == "K1")
    with write_transaction():
        orders = [Order.create(project_no=f"A{n:03d}", customer=customer) for n in range(3)]
    listing = list_orders(customer)
    assert list_orders(customer) == listing and hash(list_orders(customer)) == hash(listing)
    assert [order.project_no for order in listing.page().items] == ["A002", "A001", "A000"]
    assert listing.states() == {order.id: "waiting_for_data" for order in orders}
    with write_transaction():
        OrderFile.create(
            order=orders[0], folder="Eingehend", display_name="a.pdf", size=1, state="clean"
        )
    changed = list_orders(customer)
    assert changed != listing and changed.states()[orders[0].id] == "data_received"
    database.close()


def test_fetched_rows_are_built_like_the_query_builds_them(tmp_path):
    _customers(tmp_path / "a.db", "K1")
    with write_transaction():
        order = Order.create(project_no="A1", customer=Customer.get(Customer.customer_no == "K1"))
    joined = PreparedSelect(
        lambda number: (
            Order.select(Order, Customer).join(Customer).where(Order.project_no == number)
        ),
        "example-project",
    )
    fetched = joined.fetch("A1")
    assert fetched == joined.fetch("A1") and fetched != joined.fetch("nothing")
    (row,) = fetched.rows()
    assert (row.id, row.created_at, row.customer.name) == (order.id, order.created_at, "Kunde K1")
    database.close()


def test_a_request_keeps_the_connection_and_a_database_error_drops_it(app, client, monkeypatch):
    assert client.get("/healthz").status_code == 200
    assert not database.is_closed()  # kept for the thread's next request

    def broken(*_args) -> None:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(database.obj, "execute_sql", broken)
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert database.is_closed()
    monkeypatch.undo()
    assert client.get("/healthz").status_code == 200


def test_templates_translate_with_the_locale_of_the_moment(app):
    """Page texts, macros and the imported state labels follow ``force_locale`` (mails)."""
    page = (
        '{% from "_macros.html" import file_state %}'
        '{% from "_order_states.html" import order_state_badges with context %}'
        '{{ _("Sign out") }}|{{ file_state({"state": "scanning"}) }}|'
        "{{ order_state_badges.checking[1] }}"
    )
    german = 'Abmelden|<span class="badge badge-busy">Virenprüfung läuft</span>|Upload wird geprüft'
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert _rendered(page) == german
        with force_locale("en"):
            assert _rendered(page) == (
                'Sign out|<span class="badge badge-busy">virus scan running</span>|Checking upload'
            )
        assert _rendered(page) == german


def _rendered(source: str) -> str:
    return re.sub(r"\s*\|\s*", "|", render_template_string(source).strip())
