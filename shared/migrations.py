"""Bring an existing database up to the current models: ``ptportal migrate``.

Additive changes (new tables, new columns, new indexes) are derived from the
models, so a release that only adds needs no hand-written step. Anything else
(renames, data moves) is an explicit step in ``STEPS`` with the version it
introduces; ``schema_version`` remembers how far a database has come.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from peewee import Database, DateTimeField, IntegerField, Model, SqliteDatabase
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator, migrate

from shared.accounts.usernames import username_key
from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.models import ALL_MODELS, BaseModel, Customer, PortalLogin, StaffUser

log = logging.getLogger(__name__)


def _drop_list_versions(migrator: SchemaMigrator) -> None:
    """Release 2 kept rendered lists under versions raised by triggers; nothing reads them now.

    Its triggers (and, on PostgreSQL, their functions) and the three version tables go.
    """
    db = migrator.database
    sqlite = isinstance(db, SqliteDatabase)
    if sqlite:
        triggers = db.execute_sql(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
    else:
        triggers = db.execute_sql(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
        ).fetchall()
    for name, table in triggers:
        if not name.startswith(_LIST_VERSION_TRIGGERS):
            continue
        if sqlite:
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{name}"')
        else:
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{name}" ON {table}')
            db.execute_sql(f'DROP FUNCTION IF EXISTS "{name}"()')
    for table in _LIST_VERSION_TABLES:
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')


_LIST_VERSION_TRIGGERS = ("order_list_", "file_list_", "upload_list_")
_LIST_VERSION_TABLES = ("order_list_versions", "file_list_versions", "upload_list_versions")


def _canonical_usernames(_migrator: SchemaMigrator) -> None:
    """Usernames compare in their canonical form now (``shared.accounts.usernames``); bring
    stored ones into it, so everybody signs in as before (names were compared by SQL
    ``LOWER``). A name with no canonical form, or whose form another row holds already,
    keeps its spelling and is logged: staff must rename it."""
    for model in (PortalLogin, StaffUser):
        taken = {row.username for row in model.select(model.username)}
        for row in model.select(model.id, model.username).order_by(model.id):
            key = username_key(row.username)
            if key == row.username:
                continue
            if key is None or key in taken:
                log.warning(
                    "migration: %s username %r kept as it is: %s",
                    model._meta.table_name,
                    row.username,
                    "it has no canonical form" if key is None else f"{key!r} exists already",
                )
                continue
            model.update(username=key).where(model.id == row.id).execute()
            taken.discard(row.username)
            taken.add(key)


def _several_logins_per_customer(migrator: SchemaMigrator) -> None:
    """Up to release 3 a customer had one portal login: ``uplogin.customer_id`` was unique.

    The unique index goes (the same SQL on SQLite and PostgreSQL); the sync that follows
    creates the model's ordinary index of the same name.
    """
    migrator.database.execute_sql('DROP INDEX IF EXISTS "uplogin_customer_id"')


BEFORE_SYNC = True
AFTER_SYNC = False

# (version, what it does, function(migrator), when); additive changes need no step.
# Steps that only take something away run before the additive sync: adding a NOT NULL
# column makes peewee copy the table on SQLite, which fails while an old trigger still
# names it.
STEPS: list[tuple[int, str, Callable[[SchemaMigrator], None], bool]] = [
    (2, "drop the list-version triggers and tables", _drop_list_versions, BEFORE_SYNC),
    (3, "allow several portal logins per customer", _several_logins_per_customer, BEFORE_SYNC),
    (4, "usernames in their canonical form", _canonical_usernames, AFTER_SYNC),
]
LATEST = max([1, *(step[0] for step in STEPS)])


class SchemaVersion(BaseModel):
    """How far this database has been migrated."""

    version = IntegerField()
    applied_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "schema_version"


def _migrator(db: Database) -> SchemaMigrator:
    if isinstance(db, SqliteDatabase):
        return SqliteMigrator(db)
    return PostgresqlMigrator(db)


def current_version() -> int | None:
    """The recorded schema version, or None for a database that predates the table."""
    if not database.table_exists(SchemaVersion._meta.table_name):
        return None
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else None


def _missing_columns(model: type[Model]) -> list:
    existing = {column.name for column in database.get_columns(model._meta.table_name)}
    return [field for field in model._meta.sorted_fields if field.column_name not in existing]


def sync_schema() -> list[str]:
    """Create missing tables, columns and indexes; returns what was done."""
    done = []
    db = database.obj
    migrator = _migrator(db)
    for model in [*ALL_MODELS, SchemaVersion]:
        table = model._meta.table_name
        if not database.table_exists(table):
            database.create_tables([model])
            done.append(f"created table {table}")
            continue
        for field in _missing_columns(model):
            migrate(migrator.add_column(table, field.column_name, field))
            done.append(f"added column {table}.{field.column_name}")
        model._schema.create_indexes(safe=True)
    return done


def _run_steps(steps: list) -> list[str]:
    done = []
    for version, description, step, _when in steps:
        with write_transaction():
            step(_migrator(database.obj))
        done.append(f"step {version}: {description}")
    return done


def migrate_database() -> list[str]:
    """Apply everything the database lacks and record the version; safe to run again."""
    fresh = not database.table_exists(Customer._meta.table_name)
    start = LATEST if fresh else current_version() or 1
    pending = [step for step in STEPS if step[0] > start]
    done = _run_steps([step for step in pending if step[3] is BEFORE_SYNC])
    done += sync_schema()
    done += _run_steps([step for step in pending if step[3] is AFTER_SYNC])
    if current_version() != LATEST:
        with write_transaction():
            SchemaVersion.create(version=LATEST)
    for line in done:
        log.info("migration: %s", line)
    return done
