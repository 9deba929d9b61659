"""The ``ptportal`` console script, run as a real subprocess against a client.ini in tmp_path.

The CLI only queues mail (its queue is ``memory://`` here, which no worker reads),
so tests deliver the outbox themselves with ``deliver_due`` — as the worker would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import base_sections, write_ini

from shared.accounts.api_tokens import authenticate_token
from shared.accounts.passwords import PasswordVault
from shared.files.folders import ORDER_FOLDERS
from shared.mail.delivery import deliver_due
from shared.models import (
    Activation,
    ApiToken,
    Contact,
    Customer,
    EmailSignature,
    EmailTemplate,
    Order,
    OutboxMail,
    PortalLogin,
    StaffUser,
    SystemDefault,
)

SCRIPT = Path(sys.executable).with_name("ptportal")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "portal"]
PASSWORD = "Blaue Druckplatte 77!"
OFF = {"portal_create_uplogin_automatically": 0, "portal_send_uplogin_email_automatically": 0}


@pytest.fixture
def ini_overrides(request) -> dict:
    """Switches off unless a test asks otherwise: staff do things by hand here."""
    return getattr(request, "param", {"workflow": dict(OFF)})


def ptportal(ini: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the console script with ``--config ini``; PTPORTAL_* from the outside is dropped."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PTPORTAL_")}
    return subprocess.run(
        [*COMMAND, "--config", str(ini), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ini.parent if ini.parent.is_dir() else None,
        timeout=60,
    )


def ok(ini: Path, *args: str, stdin: str | None = None) -> str:
    result = ptportal(ini, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (click prefixes it with "Error: ")."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def ini(app, settings) -> Path:
    """The client.ini of ``app``; its database is initialised and bound in this process too."""
    return settings.source


def folders_exist(settings, customer_no: str, project_no: str) -> bool:
    base = settings.storage.order_root / customer_no / project_no
    return all((base / folder).is_dir() for folder in ORDER_FOLDERS)


# --- set-up and tokens ------------------------------------------------------------------


def test_init_twice_is_safe(settings):
    from shared.db import bind_database, database

    first = ok(settings.source, "init")
    second = ok(settings.source, "init")
    assert first == second
    scheme = settings.database.url.split("://")[0]
    assert first.startswith(f"database ready: {scheme}://")
    assert settings.storage.order_root.is_dir()

    bind_database(settings.database.url)
    try:
        assert SystemDefault.select().count() == 1
        rows = [(t.name, t.language) for t in EmailTemplate.select()]
        assert len(rows) == len(set(rows))  # every default template exactly once
        assert sorted(lang for name, lang in rows if name == "Hotfolder Portalzugang") == [
            "de",
            "en",
            "fr",
        ]
        assert EmailSignature.select().count() == 1
    finally:
        database.close()


def test_token_create_prints_a_token_that_works_against_the_api(ini, client):
    output = ok(ini, "token", "create", "--name", "ptworkflow")
    token = output.strip()
    assert output.count("\n") == 1 and token.startswith("ptp_")
    assert authenticate_token(token).name == "ptworkflow"
    assert ApiToken.get().token_hash != token  # stored hashed, shown once

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/orders/none", headers=headers).status_code == 404
    assert token not in ok(ini, "token", "list")

    ok(ini, "token", "revoke", "--name", "ptworkflow")
    assert client.get("/api/v1/orders/none", headers=headers).status_code == 401

    duplicate = one_line_error(ptportal(ini, "token", "create", "--name", "ptworkflow"))
    assert "ptworkflow" in duplicate and "exists already" in duplicate
    assert "name" in one_line_error(ptportal(ini, "token", "create", "--name", " "))
    assert ApiToken.select().count() == 1


# --- workflow data ----------------------------------------------------------------------------


def test_customer_contact_order_ticket_and_show(ini):
    assert ok(ini, "customer", "set", "K1", "--name", "Nord", "--email", "k@nord.example") == (
        "customer K1 created\n"
    )
    assert ok(ini, "customer", "set", "K1", "--portal", "--language", "en") == (
        "customer K1 updated\n"
    )
    customer = Customer.get(Customer.customer_no == "K1")
    assert (customer.name, customer.portal_enabled, customer.language) == ("Nord", True, "en")

    ok(ini, "customer", "contact", "K1", "fav@nord.example", "--name", "Fay", "--favorite")
    ok(ini, "customer", "contact", "K1", "fav@nord.example", "--name", "Fay B.")
    fav = Contact.get(Contact.email == "fav@nord.example")
    assert (fav.name, fav.favorite) == ("Fay B.", True)  # no --favorite keeps the flag

    created = ok(
        ini,
        "order",
        "create",
        "A-1",
        "--customer",
        "K1",
        "--job",
        "Plakate A1",
        "--due",
        "2026-12-31",
        "--contact",
        "buyer@nord.example",
    )
    assert created == "order A-1 created\n"  # switches off: nothing else happens
    assert ok(ini, "order", "ticket", "A-1", "T1", "--title", "Proof") == "ticket T1 added to A-1\n"

    shown = json.loads(ok(ini, "order", "show", "A-1"))
    assert shown["project_no"] == "A-1"
    assert shown["customer_no"] == "K1"
    assert shown["job_description"] == "Plakate A1"
    assert shown["due_date"] == "2026-12-31"
    assert shown["contact_email"] == "buyer@nord.example"
    assert shown["portal_login"] is None
    assert shown["tickets"] == [{"ticket_no": "T1", "title": "Proof"}]


def test_data_errors_are_one_line(ini):
    unknown = one_line_error(ptportal(ini, "order", "create", "A-1", "--customer", "K404"))
    assert "customer_no" in unknown and "K404" in unknown
    assert Order.select().count() == 0

    ok(ini, "customer", "set", "K1", "--name", "Nord")
    ok(ini, "order", "create", "A-1", "--customer", "K1")
    duplicate = one_line_error(ptportal(ini, "order", "create", "A-1", "--customer", "K1"))
    assert "A-1" in duplicate and "exists already" in duplicate
    unsafe = one_line_error(ptportal(ini, "order", "create", "../x", "--customer", "K1"))
    assert "project_no" in unsafe
    assert "NOPE" in one_line_error(ptportal(ini, "order", "ticket", "NOPE", "T1"))
    assert "NOPE" in one_line_error(ptportal(ini, "order", "show", "NOPE"))
    assert Order.select().count() == 1


def test_database_without_tables_is_a_one_line_error(settings):
    message = one_line_error(ptportal(settings.source, "order", "show", "A-1"))
    assert "ptportal init" in message


# --- portal logins by hand ------------------------------------------------------------------


def test_staff_create_activate_and_mail_a_login_by_hand(ini, settings, mailserver):
    ok(ini, "customer", "set", "K1", "--name", "Nord", "--email", "k@nord.example", "--portal")
    ok(ini, "order", "create", "A-1", "--customer", "K1", "--job", "Flyer")
    assert PortalLogin.select().count() == 0

    assert ok(ini, "login", "create", "K1") == "portal login k1 created (inactive)\n"
    assert Activation.select().count() == 1
    assert not folders_exist(settings, "K1", "A-1")

    inactive = one_line_error(ptportal(ini, "login", "send-activation", "K1"))
    assert "inactive" in inactive and "set-state K1 active" in inactive
    assert OutboxMail.select().count() == 0

    assert ok(ini, "login", "set-state", "K1", "active") == "portal login k1 is active\n"
    assert folders_exist(settings, "K1", "A-1")  # activation creates the missing folders

    sent = ok(ini, "login", "send-activation", "K1", "--order", "A-1")
    assert sent == "activation mail for k1 queued to k@nord.example\n"
    assert OutboxMail.get().status == OutboxMail.STATUS_PENDING
    assert deliver_due(settings.smtp).sent == 1

    (received,) = mailserver.received
    assert received.rcpt_tos == ["k@nord.example"]
    message = received.message
    assert message["Subject"] == "[Auftrag A-1] Ihr Zugang zum Upload-Portal"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "http://portal.test/activate/" in text
    assert "Benutzername: k1" in text and "Auftrag: A-1" in text

    assert ok(ini, "login", "set-state", "K1", "inactive") == "portal login k1 is inactive\n"
    assert PortalLogin.get().state == PortalLogin.STATE_INACTIVE


def test_login_commands_refuse_what_does_not_fit(ini):
    ok(ini, "customer", "set", "K1", "--name", "Nord", "--email", "k@nord.example")
    ok(ini, "customer", "set", "K2", "--name", "Süd", "--email", "k@sued.example")
    ok(ini, "order", "create", "B-1", "--customer", "K2")

    assert "no portal login" in one_line_error(ptportal(ini, "login", "set-state", "K1", "active"))
    ok(ini, "login", "create", "K1", "--username", "nord", "--active")
    taken = one_line_error(ptportal(ini, "login", "create", "K2", "--username", "nord"))
    assert "nord" in taken and "taken" in taken
    again = one_line_error(ptportal(ini, "login", "create", "K1"))
    assert "already has a portal login" in again

    other = one_line_error(ptportal(ini, "login", "send-activation", "K1", "--order", "B-1"))
    assert "B-1" in other and "another customer" in other
    assert OutboxMail.select().count() == 0


@pytest.mark.parametrize(
    "ini_overrides",
    [{"workflow": {"portal_create_uplogin_automatically": 1}}],
    indirect=True,
)
def test_order_create_follows_the_switches(ini, settings, mailserver):
    ok(ini, "customer", "set", "K1", "--name", "Nord", "--email", "k@nord.example", "--portal")
    ok(ini, "customer", "contact", "K1", "fav@nord.example", "--favorite")

    created = ok(ini, "order", "create", "A-1", "--customer", "K1")

    assert created == (
        "order A-1 created: portal login created, activation mail queued, "
        "portal login set active, order folders created\n"
    )
    assert folders_exist(settings, "K1", "A-1")
    assert deliver_due(settings.smtp).sent == 1
    assert mailserver.received[0].rcpt_tos == ["fav@nord.example"]


# --- staff --------------------------------------------------------------------------------------


def test_staff_create_with_password_from_stdin(ini, settings):
    args = ("staff", "create", "anna", "--name", "Anna Berg", "--email", "anna@shop.example")
    assert ok(ini, *args, "--admin", "--password-stdin", stdin=PASSWORD + "\n") == (
        "staff user anna created\n"
    )
    staff = StaffUser.get(StaffUser.username == "anna")
    assert staff.role == StaffUser.ROLE_ADMIN
    assert staff.password_hash.startswith("$argon2id$")
    assert PasswordVault(settings.security).verify(staff.password_hash, PASSWORD)

    args = ("staff", "create", "bob", "--name", "Bob", "--password-stdin")
    weak = one_line_error(ptportal(ini, *args, stdin="123\n"))
    assert "password" in weak
    assert StaffUser.select().count() == 1


# --- bad client.ini ------------------------------------------------------------------------------


def bad_ini(tmp_path: Path, **overrides: dict) -> Path:
    directory = tmp_path / "bad"
    directory.mkdir()
    return write_ini(directory, base_sections(25, **overrides))


@pytest.mark.parametrize(
    ("overrides", "command", "expected"),
    [
        (
            {"workflow": {"portal_reminder_email_automatically": 3}},
            ("init",),
            ["[workflow]", "portal_reminder_email_automatically", "'3'", "one of 0, 1, 2"],
        ),
        (
            {"smtp": {"port": "abc"}},
            ("order", "show", "A-1"),
            ["[smtp]", "port", "'abc'", "whole number from 1 to 65535"],
        ),
        (
            {"smtp": {"security": "tls"}},
            ("login", "set-state", "K1", "active"),
            ["[smtp]", "security", "starttls, ssl, none"],
        ),
        (
            {"smtp": {"prot": 25}},
            ("token", "create", "--name", "x"),
            ["[smtp]", "unknown key 'prot'", "allowed: server, port"],
        ),
        (
            {"colours": {"red": 1}},
            ("check-config",),
            ["unknown section [colours]", "allowed: [portal]"],
        ),
        (
            {"portal": {"secret_key": "short"}},
            ("serve",),
            ["[portal]", "secret_key", "(hidden)", "32"],
        ),
    ],
)
def test_bad_client_ini_is_one_line_naming_file_section_key(tmp_path, overrides, command, expected):
    ini = bad_ini(tmp_path, **overrides)
    message = one_line_error(ptportal(ini, *command))
    assert message.startswith(f"Error: {ini}: ")
    for part in expected:
        assert part in message
    assert not (ini.parent / "data").exists()  # nothing was set up from a bad file


def test_missing_key_names_the_environment_variable(tmp_path):
    ini = bad_ini(tmp_path)
    ini.write_text(ini.read_text().replace("base_url = http://portal.test\n", ""))
    message = one_line_error(ptportal(ini, "check-config"))
    assert "[portal] base_url is missing" in message and "$PTPORTAL_PORTAL_BASE_URL" in message


def test_missing_client_ini_is_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "client.ini"
    message = one_line_error(ptportal(missing, "init"))
    assert message == f"Error: {missing}: file not found (copy client.ini.example)"
    assert not (tmp_path / "nowhere").exists()


def test_help_needs_no_client_ini(tmp_path):
    result = ptportal(tmp_path / "nowhere.ini", "--help")
    assert result.returncode == 0
    assert "order" in result.stdout and "token" in result.stdout
