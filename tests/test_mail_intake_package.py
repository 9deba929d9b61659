"""The mail intake package works on plain data: no Flask, no watchdog, no database models."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here


def test_importing_mail_intake_pulls_in_no_web_watcher_or_database_code() -> None:
    probe = (
        "import sys\n"
        "import shared.mail_intake.imap, shared.mail_intake.matching\n"
        "import shared.mail_intake.parsing\n"
        "print(sorted(m for m in ('flask', 'watchdog', 'peewee', 'shared.models', 'shared.db')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
