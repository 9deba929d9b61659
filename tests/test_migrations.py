"""`ptportal migrate` brings a database of an older release up to the current schema."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import base_sections, write_ini

from shared.migrations import LATEST

OLD_SCHEMAS = Path(__file__).parent / "data"


def columns(db_file: Path) -> dict[str, set[str]]:
    with sqlite3.connect(db_file) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
            for table in tables
        }


def ptportal(ini: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal", "--config", str(ini), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.sqlite_only
def test_release_1_database_is_migrated_to_the_current_schema_keeping_its_data(tmp_path):
    old = tmp_path / "old"
    fresh = tmp_path / "fresh"
    for directory in (old, fresh):
        directory.mkdir()
    old_ini = write_ini(old, base_sections(25))
    fresh_ini = write_ini(fresh, base_sections(25))
    old_db = old / "data" / "ptportal.db"
    old_db.parent.mkdir()
    with sqlite3.connect(old_db) as connection:
        connection.executescript((OLD_SCHEMAS / "schema_v1.sql").read_text())
        connection.execute(
            "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
            " hotfolder_delete_after_days, language, created_at, updated_at)"
            " VALUES ('K1', 'Kunde', 'k@example.com', 1, 1, 30, 'de', '2026-01-01', '2026-01-01')"
        )

    migrated = ptportal(old_ini, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert ptportal(fresh_ini, "init").returncode == 0

    assert columns(old_db) == columns(fresh / "data" / "ptportal.db")
    with sqlite3.connect(old_db) as connection:
        assert connection.execute("SELECT name FROM clients").fetchall() == [("Kunde",)]
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= 1

    again = ptportal(old_ini, "migrate")
    assert again.returncode == 0, again.stderr
    assert "added column" not in again.stdout and "created table" not in again.stdout


@pytest.mark.sqlite_only
def test_missing_columns_tables_and_indexes_are_added(tmp_path):
    ini = write_ini(tmp_path, base_sections(25))
    db_file = tmp_path / "data" / "ptportal.db"
    db_file.parent.mkdir()
    statements = [
        statement
        for statement in (OLD_SCHEMAS / "schema_v1.sql").read_text().split(";\n")
        if "file_event" not in statement
    ]
    script = ";\n".join(statements).replace(
        '"deactivated_at" DATETIME, "language" VARCHAR(255) NOT NULL, ', ""
    )
    with sqlite3.connect(db_file) as connection:
        connection.executescript(script)
        connection.execute(
            "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
            " hotfolder_delete_after_days, language, created_at, updated_at)"
            " VALUES ('K1', 'Kunde', '', 1, 1, 30, 'de', '2026-01-01', '2026-01-01')"
        )
        connection.execute(
            "INSERT INTO uplogin (customer_id, username, state, created_at)"
            " VALUES (1, 'k1', 'active', '2026-01-01')"
        )
    assert "deactivated_at" not in columns(db_file)["uplogin"]

    migrated = ptportal(ini, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert "added column uplogin.deactivated_at" in migrated.stdout
    assert "added column uplogin.language" in migrated.stdout
    assert "created table file_event" in migrated.stdout
    with sqlite3.connect(db_file) as connection:
        assert connection.execute("SELECT username, language FROM uplogin").fetchall() == [
            ("k1", "")
        ]
        indexes = {row[1] for row in connection.execute("PRAGMA index_list('file_event')")}
    assert any("created_at" in name for name in indexes)


def _triggers_and_version_tables(connection) -> tuple[list, list]:
    triggers = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    ).fetchall()
    tables = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%list_versions'"
    ).fetchall()
    return triggers, tables


@pytest.mark.sqlite_only
def test_release_2_list_version_triggers_and_tables_are_dropped(tmp_path):
    old = tmp_path / "old"
    fresh = tmp_path / "fresh"
    for directory in (old, fresh):
        directory.mkdir()
    old_ini = write_ini(old, base_sections(25))
    fresh_ini = write_ini(fresh, base_sections(25))
    old_db = old / "data" / "ptportal.db"
    old_db.parent.mkdir()
    with sqlite3.connect(old_db) as connection:
        connection.executescript((OLD_SCHEMAS / "schema_v2.sql").read_text())
        connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, '2026')")
        connection.execute(
            "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
            " hotfolder_delete_after_days, language, created_at, updated_at)"
            " VALUES ('K1', 'Kunde', 'k@example.com', 1, 1, 30, 'de', '2026-01-01', '2026-01-01')"
        )
        connection.execute(
            "INSERT INTO orders (project_no, customer_id, job_description, folders_created,"
            " created_at) VALUES ('A1', 1, 'Flyer', 1, '2026-01-02')"
        )
        triggers, tables = _triggers_and_version_tables(connection)
        assert len(triggers) == 17 and len(tables) == 3
        assert connection.execute("SELECT version FROM order_list_versions").fetchall()

    migrated = ptportal(old_ini, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "step 2: drop the list-version triggers and tables" in migrated.stderr
    assert ptportal(fresh_ini, "init").returncode == 0

    with sqlite3.connect(old_db) as connection:
        assert _triggers_and_version_tables(connection) == ([], [])
        assert connection.execute("SELECT project_no FROM orders").fetchall() == [("A1",)]
        # Changing what the triggers watched now works without them.
        connection.execute("UPDATE orders SET job_description = 'Plakat'")
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (LATEST,)
    assert columns(old_db) == columns(fresh / "data" / "ptportal.db")


def test_release_2_list_versions_are_dropped_on_postgresql():
    from postgres_helpers import postgres_server

    from shared.db import bind_database, database
    from shared.migrations import SchemaVersion, migrate_database

    with postgres_server() as url:
        bind_database(url)
        database.connect()
        try:
            migrate_database()
            database.execute_sql((OLD_SCHEMAS / "list_versions_v2_postgresql.sql").read_text())
            SchemaVersion.delete().execute()
            SchemaVersion.create(version=1)
            database.execute_sql(
                "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
                " hotfolder_delete_after_days, language, created_at, updated_at)"
                " VALUES ('K1', 'Kunde', '', true, true, 30, 'de', now(), now())"
            )
            count = "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
            assert database.execute_sql(count).fetchone() == (17,)

            done = migrate_database()

            assert "step 2: drop the list-version triggers and tables" in done
            assert database.execute_sql(count).fetchone() == (0,)
            functions = "SELECT count(*) FROM pg_proc WHERE proname LIKE %s"
            assert database.execute_sql(functions, ("%list_on_%",)).fetchone() == (0,)
            assert not [t for t in database.get_tables() if t.endswith("list_versions")]
            database.execute_sql("UPDATE clients SET name = 'Neu'")
        finally:
            database.close()


@pytest.mark.sqlite_only
def test_release_3_database_allows_several_logins_per_customer_after_migrate(tmp_path):
    old = tmp_path / "old"
    fresh = tmp_path / "fresh"
    for directory in (old, fresh):
        directory.mkdir()
    old_ini = write_ini(old, base_sections(25))
    fresh_ini = write_ini(fresh, base_sections(25))
    old_db = old / "data" / "ptportal.db"
    old_db.parent.mkdir()
    with sqlite3.connect(old_db) as connection:
        connection.executescript((OLD_SCHEMAS / "schema_v3.sql").read_text())
        connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, '2026')")
        connection.execute(
            "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
            " hotfolder_delete_after_days, language, created_at, updated_at)"
            " VALUES ('K1', 'Kunde', 'k@example.com', 1, 1, 30, 'de', '2026-01-01', '2026-01-01')"
        )
        connection.execute(
            "INSERT INTO uplogin (customer_id, username, state, language, created_at)"
            " VALUES (1, 'k1', 'active', '', '2026-01-01')"
        )
        connection.execute(
            "INSERT INTO orders (project_no, customer_id, job_description, folders_created,"
            " created_at) VALUES ('A1', 1, 'Flyer', 1, '2026-01-02')"
        )
        unique = "SELECT \"unique\" FROM pragma_index_list('uplogin') WHERE name = ?"
        assert connection.execute(unique, ("uplogin_customer_id",)).fetchone() == (1,)

    migrated = ptportal(old_ini, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert "step 3: allow several portal logins per customer" in migrated.stderr
    assert ptportal(fresh_ini, "init").returncode == 0
    assert columns(old_db) == columns(fresh / "data" / "ptportal.db")
    with sqlite3.connect(old_db) as connection:
        assert connection.execute(unique, ("uplogin_customer_id",)).fetchone() == (0,)
        connection.execute(
            "INSERT INTO uplogin (customer_id, username, email, state, language, created_at)"
            " VALUES (1, 'k1-agentur', 'a@x.example', 'inactive', '', '2026-02-01')"
        )
        # Existing rows got the new columns' defaults.
        assert connection.execute("SELECT state FROM orders").fetchall() == [("open",)]
        assert connection.execute("SELECT email FROM uplogin ORDER BY id").fetchall() == [
            ("",),
            ("a@x.example",),
        ]
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (LATEST,)
        # Usernames stay unique.
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(
                "INSERT INTO uplogin (customer_id, username, email, state, language, created_at)"
                " VALUES (1, 'k1', '', 'inactive', '', '2026-02-01')"
            )
    again = ptportal(old_ini, "migrate")
    assert again.returncode == 0 and "step 3" not in again.stderr


def test_several_logins_step_on_postgresql():
    from postgres_helpers import postgres_server

    from shared.db import bind_database, database
    from shared.migrations import SchemaVersion, migrate_database

    with postgres_server() as url:
        bind_database(url)
        database.connect()
        try:
            migrate_database()
            database.execute_sql('DROP INDEX "uplogin_customer_id"')
            database.execute_sql(
                'CREATE UNIQUE INDEX "uplogin_customer_id" ON "uplogin" ("customer_id")'
            )
            SchemaVersion.delete().execute()
            SchemaVersion.create(version=2)

            done = migrate_database()

            assert "step 3: allow several portal logins per customer" in done
            unique = (
                "SELECT indisunique FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
                " WHERE relname = 'uplogin_customer_id'"
            )
            assert database.execute_sql(unique).fetchone() == (False,)
        finally:
            database.close()


@pytest.mark.sqlite_only
def test_release_2_usernames_are_brought_into_their_canonical_form(tmp_path):
    ini = write_ini(tmp_path, base_sections(25))
    db_file = tmp_path / "data" / "ptportal.db"
    db_file.parent.mkdir()
    with sqlite3.connect(db_file) as connection:
        connection.executescript((OLD_SCHEMAS / "schema_v2.sql").read_text())
        # Release 2 recorded schema version 1 (its triggers are dropped by step 2).
        connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, '2026')")
        for number in (1, 2, 3):
            connection.execute(
                "INSERT INTO clients (customer_no, name, email, portal_enabled, create_hotfolder,"
                " hotfolder_delete_after_days, language, created_at, updated_at)"
                f" VALUES ('K{number}', 'Kunde', '', 1, 1, 30, 'de', '2026-01-01', '2026-01-01')"
            )
        for customer, username in ((1, "K1"), (2, "Anna@Example.com"), (3, "\u212a3")):
            connection.execute(
                "INSERT INTO uplogin (customer_id, username, state, language, created_at)"
                " VALUES (?, ?, 'active', '', '2026-01-01')",
                (customer, username),
            )
        for username in ("Anna", "anna", "Bernd"):
            connection.execute(
                "INSERT INTO staff_user (username, name, email, role, active, created_at)"
                " VALUES (?, 'x', '', 'staff', 1, '2026-01-01')",
                (username,),
            )

    migrated = ptportal(ini, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert "step 4: usernames in their canonical form" in migrated.stderr
    with sqlite3.connect(db_file) as connection:
        logins = connection.execute("SELECT username FROM uplogin ORDER BY id").fetchall()
        staff = connection.execute("SELECT username FROM staff_user ORDER BY id").fetchall()
    assert logins == [("k1",), ("anna@example.com",), ("\u212a3",)]
    assert staff == [("Anna",), ("anna",), ("bernd",)]
    assert "'\u212a3' kept as it is" in migrated.stderr
    assert "'Anna' kept as it is: 'anna' exists already" in migrated.stderr


@pytest.mark.sqlite_only
def test_a_shop_from_before_french_gets_the_french_templates_and_keeps_its_edits(tmp_path):
    ini = write_ini(tmp_path, base_sections(25))
    assert ptportal(ini, "init").returncode == 0
    db_file = tmp_path / "data" / "ptportal.db"
    with sqlite3.connect(db_file) as connection:
        # As a shop looked before French: no French rows, and staff edited a German one.
        connection.execute("DELETE FROM client_email_template WHERE language = 'fr'")
        connection.execute(
            "UPDATE client_email_template SET subject = 'Unser eigener Betreff'"
            " WHERE name = 'Hotfolder Portalzugang' AND language = 'de'"
        )
        names = {row[0] for row in connection.execute("SELECT name FROM client_email_template")}

    migrated = ptportal(ini, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(db_file) as connection:
        french = dict(
            connection.execute(
                "SELECT name, subject FROM client_email_template WHERE language = 'fr'"
            )
        )
        german = connection.execute(
            "SELECT subject FROM client_email_template"
            " WHERE name = 'Hotfolder Portalzugang' AND language = 'de'"
        ).fetchall()
    assert set(french) == names
    assert french["Hotfolder Portalzugang"] == "Votre accès au portail de dépôt de fichiers"
    assert german == [("Unser eigener Betreff",)]
