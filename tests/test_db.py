"""The database: late binding, WAL, concurrent writers from several processes, idempotent init."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shared.db import bind_database, database, write_transaction
from shared.mail.defaults import ACTIVATION_TEMPLATE
from shared.models import EmailTemplate, SystemDefault
from shared.schema import init_database

WRITER = textwrap.dedent(
    """
    import sys
    from shared.db import bind_database, write_transaction
    from shared.models import ApiToken
    bind_database(sys.argv[1])
    for n in range(int(sys.argv[3])):
        with write_transaction():
            # read, then write in the same transaction: the pattern that deadlocks
            # deferred SQLite transactions between processes
            count = ApiToken.select().count()
            ApiToken.create(name=f"{sys.argv[2]}-{n}-{count}", token_hash=f"{sys.argv[2]}-{n}")
    """
)


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path):
    db = bind_database(f"sqlite:///{tmp_path / 'sub' / 'p.db'}")
    assert (tmp_path / "sub").is_dir()
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 10000
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    database.close()


def test_init_twice_is_safe_and_creates_defaults(database_url):
    bind_database(database_url)
    init_database("Testdruck")
    init_database("Testdruck")
    assert SystemDefault.select().count() == 1
    assert SystemDefault.get().name == "ptportal"
    languages = sorted(
        t.language for t in EmailTemplate.select().where(EmailTemplate.name == ACTIVATION_TEMPLATE)
    )
    assert languages == ["de", "en", "fr"]
    database.close()


def test_concurrent_writers_in_separate_processes_never_see_locked(database_url):
    url = database_url
    bind_database(url)
    init_database("Testdruck")
    database.close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"w{i}", "150"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0], errors
    from shared.models import ApiToken

    assert ApiToken.select().count() == 600


def test_nested_write_transactions_roll_back_together(database_url):
    bind_database(database_url)
    init_database("Testdruck")
    from shared.models import ApiToken

    try:
        with write_transaction():
            ApiToken.create(name="outer", token_hash="1")
            with write_transaction():
                ApiToken.create(name="inner", token_hash="2")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert ApiToken.select().count() == 0
    database.close()


def test_shared_imports_neither_flask_nor_watchdog():
    code = (
        "import sys, shared.models, shared.config, shared.accounts.logins, shared.orders.orders, "
        "shared.worker, shared.mail.delivery\n"
        "banned = ('flask', 'watchdog', 'portal', 'hotfolder_agent')\n"
        "bad = [m for m in banned if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
