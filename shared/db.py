"""The one database handle, bound late so each process and each test picks its own.

SQLite runs in WAL mode with a busy timeout, and every write goes through
``write_transaction()`` which takes the write lock up front (BEGIN IMMEDIATE):
a deferred transaction that upgrades to a write fails with "database is locked"
no matter the timeout when the portal, the agent and the worker share the file.
"""

from __future__ import annotations

from pathlib import Path

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import connect as connect_url

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def make_database(url: str) -> Database:
    """A peewee database for ``url`` (sqlite:///PATH or postgresql://…), not yet connected."""
    if url.startswith("sqlite:///"):
        file = Path(url.removeprefix("sqlite:///"))
        file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(str(file), pragmas=SQLITE_PRAGMAS, timeout=10)
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    # psycopg 3: the maintained driver (psycopg2 only gets fixes); peewee speaks both.
    return connect_url(url, prefer_psycopg3=True)


def url_without_credentials(url: str) -> str:
    """``url`` as it may be shown or logged: ``postgresql://HOST/DB``, never user or password."""
    scheme, separator, rest = url.partition("://")
    return f"{scheme}{separator}{rest.rsplit('@', 1)[-1]}"


def bind_database(url: str) -> Database:
    """Point the shared proxy at the database named by ``url`` and return it."""
    db = make_database(url)
    database.initialize(db)
    return db


def write_transaction():
    """A transaction that holds the write lock from its first statement."""
    if isinstance(database.obj, SqliteDatabase):
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()
