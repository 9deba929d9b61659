"""Versions the database raises whenever a list the portal keeps rendered changes.

- A customer's order list shows their orders and each order's state, which follows from
  the folder and state of its files: ``order_list_versions``, one row per customer.
- An order's folder view shows its files: ``file_list_versions``, one row per order.
- Staff's hotfolder view shows every upload with its order, customer and delivery:
  ``upload_list_versions``, one row.

Triggers on ``orders``, ``order_file``, ``delivery`` and ``clients`` raise the row in
the same transaction as the change, whoever makes it: the portal, the hotfolder agent,
the worker or a hand-written UPDATE. The portal reads a version with rows it loads
anyway where it can (the session, the order) and keeps rendered lists under it
(``portal/fragments.py``): a kept list costs no query of its own, and a changed list is
a new version, never a stale entry. A change a list does not show (upload progress in
the order list, say) leaves its version alone.

The triggers are written once and spelled for SQLite and for PostgreSQL below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peewee import Database, SqliteDatabase

from shared.db import database, write_transaction


def _raise(table: str, key: str, rows: str) -> str:
    return (
        f"INSERT INTO {table} ({key}, version) {rows} "
        f"ON CONFLICT ({key}) DO UPDATE SET version = {table}.version + 1;"
    )


def _order_list_of_customer(customer: str) -> str:
    return _raise("order_list_versions", "customer_id", f"SELECT {customer}, 1 WHERE true")


def _order_list_of_file(row: str) -> str:
    orders = f"SELECT customer_id, 1 FROM orders WHERE id = {row}.order_id"
    return _raise("order_list_versions", "customer_id", orders)


def _file_list_of_file(row: str) -> str:
    # Through orders: files deleted with their order find none, and raise nothing.
    orders = f"SELECT id, 1 FROM orders WHERE id = {row}.order_id"
    return _raise("file_list_versions", "order_id", orders)


_UPLOAD_LIST = _raise("upload_list_versions", "id", "SELECT 1, 1 WHERE true")


@dataclass(frozen=True)
class _Trigger:
    name: str
    table: str
    event: str  # INSERT, UPDATE or DELETE
    body: str
    compared: tuple[str, ...] = ()  # UPDATE: only when one of these columns changed


def _on_rows(
    name: str, table: str, raising: Callable[[str], str], compared: tuple[str, ...] = ()
) -> tuple[_Trigger, ...]:
    """Triggers ``name``_insert/_update/_delete on ``table``; ``raising(row)`` is the SQL
    for the new row ("NEW"), the old one ("OLD"), or both after an update."""
    old, new = raising("OLD"), raising("NEW")
    return (
        _Trigger(f"{name}_insert", table, "INSERT", new),
        _Trigger(f"{name}_update", table, "UPDATE", old if old == new else old + new, compared),
        _Trigger(f"{name}_delete", table, "DELETE", old),
    )


def _upload_list(_row: str) -> str:
    return _UPLOAD_LIST


_TRIGGERS = (
    # A customer's order list.
    *_on_rows(
        "order_list_on_order", "orders", lambda row: _order_list_of_customer(f"{row}.customer_id")
    ),
    *_on_rows(
        "order_list_on_file", "order_file", _order_list_of_file, ("order_id", "folder", "state")
    ),
    # An order's folder view.
    *_on_rows("file_list_on_file", "order_file", _file_list_of_file),
    # Staff's hotfolder view.
    *_on_rows(
        "upload_list_on_file",
        "order_file",
        _upload_list,
        (
            "order_id",
            "folder",
            "display_name",
            "size",
            "state",
            "created_at",
            "received_at",
            "scanned_at",
            "released_at",
        ),
    ),
    *_on_rows("upload_list_on_delivery", "delivery", _upload_list),
    _Trigger(
        "upload_list_on_order_update",
        "orders",
        "UPDATE",
        _UPLOAD_LIST,
        compared=("project_no", "customer_id"),
    ),
    _Trigger(
        "upload_list_on_customer_update",
        "clients",
        "UPDATE",
        _UPLOAD_LIST,
        compared=("customer_no", "name"),
    ),
)


# Names of the triggers this module makes: one no longer in _TRIGGERS is dropped.
_OUR_PREFIXES = ("order_list_", "file_list_", "upload_list_")


def install_triggers() -> None:
    """Create the triggers, replacing older definitions and dropping retired ones."""
    db: Database = database.obj
    sqlite = isinstance(db, SqliteDatabase)
    current = {trigger.name for trigger in _TRIGGERS}
    with write_transaction():
        for name, table in _installed(db, sqlite):
            if name.startswith(_OUR_PREFIXES) and name not in current:
                db.execute_sql(f"DROP TRIGGER {name}" + ("" if sqlite else f" ON {table}"))
        for trigger in _TRIGGERS:
            for statement in _sqlite(trigger) if sqlite else _postgresql(trigger):
                db.execute_sql(statement)


def _installed(db: Database, sqlite: bool) -> list[tuple[str, str]]:
    """(name, table) of every trigger in the database."""
    if sqlite:
        query = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
    return list(db.execute_sql(query).fetchall())


def _changed(trigger: _Trigger, differs: str) -> str:
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in trigger.compared)


def _sqlite(trigger: _Trigger) -> list[str]:
    when = f" WHEN {_changed(trigger, 'IS NOT')}" if trigger.compared else ""
    return [
        f"DROP TRIGGER IF EXISTS {trigger.name}",
        f"CREATE TRIGGER {trigger.name} AFTER {trigger.event} ON {trigger.table}{when} "
        f"BEGIN {trigger.body} END",
    ]


def _postgresql(trigger: _Trigger) -> list[str]:
    when = f" WHEN ({_changed(trigger, 'IS DISTINCT FROM')})" if trigger.compared else ""
    return [
        f"CREATE OR REPLACE FUNCTION {trigger.name}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN {trigger.body} RETURN NULL; END $$",
        f"DROP TRIGGER IF EXISTS {trigger.name} ON {trigger.table}",
        f"CREATE TRIGGER {trigger.name} AFTER {trigger.event} ON {trigger.table} "
        f"FOR EACH ROW{when} EXECUTE FUNCTION {trigger.name}()",
    ]
