"""Versions the database raises whenever a customer's order list or an order's files change.

A customer's order list shows their orders and each order's state, which follows from
the folder and state of its files; an order's folder view shows its files. Triggers on
``orders`` and ``order_file`` raise the customer's row in ``order_list_versions`` and
the order's row in ``file_list_versions`` in the same transaction as any such change,
whoever makes it: the portal, the hotfolder agent, the worker or a hand-written UPDATE.

The portal reads the versions with rows it loads anyway (the session, the order) and
keeps rendered lists under them (``portal/partials.order_list``, ``portal/orders.py``):
a kept list costs no query of its own, and a changed list is a new version, never a
stale entry. Upload progress and file names do not change what the order list shows
and leave its version alone; any change to an order row raises it; any change to a file
raises its order's file list version.
"""

from __future__ import annotations

from peewee import Database, SqliteDatabase

from shared.db import database, write_transaction

_RAISE = (
    "INSERT INTO order_list_versions (customer_id, version) {customers} "
    "ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1;"
)
_OF_ORDER = "SELECT customer_id, 1 FROM orders WHERE id = {row}.order_id"
_SHOWN_IN_ORDER_LIST = (
    "OLD.order_id IS NOT NEW.order_id OR OLD.folder IS NOT NEW.folder OR OLD.state IS NOT NEW.state"
)

_RAISE_FILE_LIST = (
    "INSERT INTO file_list_versions (order_id, version) "
    "SELECT id, 1 FROM orders WHERE id = {row}.order_id "
    "ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1;"
)

_SQLITE = {
    "order_list_on_order_insert": (
        "AFTER INSERT ON orders",
        _RAISE.format(customers="VALUES (NEW.customer_id, 1)"),
    ),
    "order_list_on_order_update": (
        "AFTER UPDATE ON orders",
        _RAISE.format(customers="VALUES (OLD.customer_id, 1)")
        + _RAISE.format(customers="VALUES (NEW.customer_id, 1)"),
    ),
    "order_list_on_order_delete": (
        "AFTER DELETE ON orders",
        _RAISE.format(customers="VALUES (OLD.customer_id, 1)"),
    ),
    "lists_on_file_insert": (
        "AFTER INSERT ON order_file",
        _RAISE.format(customers=_OF_ORDER.format(row="NEW")) + _RAISE_FILE_LIST.format(row="NEW"),
    ),
    "file_list_on_file_update": (
        "AFTER UPDATE ON order_file",
        _RAISE_FILE_LIST.format(row="OLD") + _RAISE_FILE_LIST.format(row="NEW"),
    ),
    "order_list_on_file_update": (
        f"AFTER UPDATE OF order_id, folder, state ON order_file WHEN {_SHOWN_IN_ORDER_LIST}",
        _RAISE.format(customers=_OF_ORDER.format(row="OLD"))
        + _RAISE.format(customers=_OF_ORDER.format(row="NEW")),
    ),
    # Files deleted with their order find no order any more: the order's trigger counts,
    # and the order's file list version goes with it.
    "lists_on_file_delete": (
        "AFTER DELETE ON order_file",
        _RAISE.format(customers=_OF_ORDER.format(row="OLD")) + _RAISE_FILE_LIST.format(row="OLD"),
    ),
}

_POSTGRESQL_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION order_list_changed(customer bigint) RETURNS void
    LANGUAGE sql AS $$
      INSERT INTO order_list_versions (customer_id, version) VALUES (customer, 1)
      ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION order_list_on_order() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM order_list_changed(OLD.customer_id); END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM order_list_changed(NEW.customer_id); END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION file_list_changed(changed_order bigint) RETURNS void
    LANGUAGE sql AS $$
      INSERT INTO file_list_versions (order_id, version)
      SELECT id, 1 FROM orders WHERE id = changed_order
      ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION lists_on_file() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM file_list_changed(OLD.order_id); END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM file_list_changed(NEW.order_id); END IF;
      IF TG_OP = 'UPDATE' AND OLD.order_id IS NOT DISTINCT FROM NEW.order_id
         AND OLD.folder IS NOT DISTINCT FROM NEW.folder
         AND OLD.state IS NOT DISTINCT FROM NEW.state THEN
        RETURN NULL;
      END IF;
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM order_list_changed(customer_id) FROM orders WHERE id = OLD.order_id;
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM order_list_changed(customer_id) FROM orders WHERE id = NEW.order_id;
      END IF;
      RETURN NULL;
    END $$
    """,
)
_POSTGRESQL_TRIGGERS = {
    "order_list_on_order": "AFTER INSERT OR UPDATE OR DELETE ON orders",
    "lists_on_file": "AFTER INSERT OR UPDATE OR DELETE ON order_file",
}


def install_triggers() -> None:
    """Create the triggers, replacing older definitions; safe to run again."""
    db: Database = database.obj
    sqlite = isinstance(db, SqliteDatabase)
    with write_transaction():
        for statement in _sqlite_statements() if sqlite else _postgresql_statements():
            db.execute_sql(statement)


def _sqlite_statements() -> list[str]:
    statements = []
    for name, (event, body) in _SQLITE.items():
        statements.append(f"DROP TRIGGER IF EXISTS {name}")
        statements.append(f"CREATE TRIGGER {name} {event} BEGIN {body} END")
    return statements


def _postgresql_statements() -> list[str]:
    statements = list(_POSTGRESQL_FUNCTIONS)
    for name, event in _POSTGRESQL_TRIGGERS.items():
        table = event.rsplit(" ", 1)[-1]
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        statements.append(f"CREATE TRIGGER {name} {event} FOR EACH ROW EXECUTE FUNCTION {name}()")
    return statements
