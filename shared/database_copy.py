"""Move a shop from one database to another (``ptportal db copy --to postgresql://…``).

1. The target must be empty: a table of ours with a row in it stops the copy before
   anything is written (so a second run cannot mix two shops).
2. The target gets the current schema (tables, columns, indexes), as ``ptportal init``
   would make it but without the default rows.
3. Every table is copied in the order its foreign keys need, in batches by primary key,
   each batch one transaction on the target; ids stay what they were, and PostgreSQL's
   sequences continue after the highest id.
4. Checked: every table has as many rows in the target as in the source, and a sample of
   rows per table (the first, the last and some in between) is equal field by field.

Stop the portal, the worker and the agent first: rows written during the copy may be
missed (the counts then differ and the copy says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from peewee import Database, Model, PostgresqlDatabase, sort_models

from shared.db import database, make_database
from shared.errors import Conflict
from shared.migrations import SchemaVersion, sync_schema
from shared.models import ALL_MODELS

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
SAMPLE_ROWS = 20

# (table name, rows copied so far, rows in the table)
Progress = Callable[[str, int, int], None]


@dataclass
class CopyReport:
    """What was copied: rows per table, and what the check found (empty when all is well)."""

    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def models_in_copy_order() -> list[type[Model]]:
    """Every table, each after the tables its foreign keys point to."""
    return sort_models([*ALL_MODELS, SchemaVersion])


def copy_database(target_url: str, progress: Progress | None = None) -> CopyReport:
    """Copy the bound database (the source) into the empty database at ``target_url``."""
    source = database.obj
    target = make_database(target_url)
    target.connect()
    try:
        _require_empty(target)
        _create_schema(source, target)
        report = CopyReport()
        for model in models_in_copy_order():
            report.rows[model._meta.table_name] = _copy_table(model, source, target, progress)
        if isinstance(target, PostgresqlDatabase):
            _continue_sequences(target)
        report.problems = _check(source, target)
    finally:
        target.close()
    return report


def _require_empty(target: Database) -> None:
    for model in models_in_copy_order():
        table = model._meta.table_name
        if target.table_exists(table) and model.select().limit(1).exists(target):
            raise Conflict(f"the target database is not empty: table {table} has rows")


def _create_schema(source: Database, target: Database) -> None:
    database.initialize(target)
    try:
        sync_schema()
    finally:
        database.initialize(source)


def _copy_table(
    model: type[Model], source: Database, target: Database, progress: Progress | None
) -> int:
    key = model._meta.primary_key
    total = model.select().count(source)
    copied, last = 0, None
    while True:
        batch = model.select().order_by(key).limit(BATCH_ROWS)
        if last is not None:
            batch = batch.where(key > last)
        rows = list(batch.dicts().execute(source))
        if not rows:
            break
        with target.atomic():
            model.insert_many(rows).execute(target)
        copied += len(rows)
        last = rows[-1][key.name]
        if progress is not None:
            progress(model._meta.table_name, copied, total)
    if progress is not None and copied == 0:
        progress(model._meta.table_name, 0, total)
    log.info("copied %s: %d rows", model._meta.table_name, copied)
    return copied


def _continue_sequences(target: Database) -> None:
    """PostgreSQL hands out ids from sequences, which the copied rows did not advance."""
    for model in models_in_copy_order():
        table, key = model._meta.table_name, model._meta.primary_key.column_name
        target.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{key}'), "
            f'COALESCE((SELECT MAX("{key}") FROM "{table}"), 0) + 1, false)'
        )


def _check(source: Database, target: Database) -> list[str]:
    problems = []
    for model in models_in_copy_order():
        table = model._meta.table_name
        counts = (model.select().count(source), model.select().count(target))
        if counts[0] != counts[1]:
            problems.append(f"{table}: {counts[0]} rows in the source, {counts[1]} copied")
            continue
        for key in _sample_keys(model, source, counts[0]):
            key_field = model._meta.primary_key
            row = model.select().where(key_field == key).dicts().execute(source)
            copy = model.select().where(key_field == key).dicts().execute(target)
            if list(row) != list(copy):
                problems.append(f"{table}: row {key} differs in the copy")
    return problems


def _sample_keys(model: type[Model], source: Database, count: int) -> list:
    """About SAMPLE_ROWS keys spread over the table, the first and the last among them."""
    if count == 0:
        return []
    key = model._meta.primary_key
    step = max(1, count // SAMPLE_ROWS)
    ordered = model.select(key).order_by(key)
    keys = [ordered.limit(1).offset(offset).scalar(source) for offset in range(0, count, step)]
    last = model.select(key).order_by(key.desc()).limit(1).scalar(source)
    return [*keys, last] if keys[-1] != last else keys
