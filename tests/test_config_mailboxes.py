"""The [mailbox:NAME] sections of client.ini, parsed into ``Settings.mailboxes``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import (
    MAILBOX_SCHEMA,
    ConfigError,
    MailboxSettings,
    load_settings,
    parse_mailbox_section,
    password_variable,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

MINIMAL = {"host": "imap.druckerei.example", "user": "auftraege", "password": "geheim"}


def test_defaults(tmp_path: Path) -> None:
    assert parse_mailbox_section("orders", MINIMAL, tmp_path, {}) == MailboxSettings(
        name="orders",
        host="imap.druckerei.example",
        port=993,
        security="ssl",
        user="auftraege",
        password="geheim",
        ca_file=None,
        folder="INBOX",
        processed_folder="Processed",
        active=True,
        poll_interval_seconds=60,
        max_mail_bytes=50 * 1024**2,
        max_attachments=20,
        max_total_attachment_bytes=40 * 1024**2,
    )


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    values = {
        **MINIMAL,
        "security": "STARTTLS",
        "ca_file": "ca.pem",
        "folder": "INBOX.Aufträge",
        "processed_folder": "-",
        "active": "no",
        "poll_interval_seconds": "300",
        "max_mail_bytes": "100M",
        "max_attachments": "5",
        "max_total_attachment_bytes": "80M",
    }
    settings = parse_mailbox_section("shop-2", values, tmp_path, {})
    assert (settings.port, settings.security, settings.ca_file) == (
        143,
        "starttls",
        tmp_path / "ca.pem",
    )
    assert (settings.folder, settings.processed_folder, settings.active) == (
        "INBOX.Aufträge",
        "",
        False,
    )
    assert (
        settings.poll_interval_seconds,
        settings.max_mail_bytes,
        settings.max_attachments,
        settings.max_total_attachment_bytes,
    ) == (300, 100 * 1024**2, 5, 80 * 1024**2)


def test_the_password_may_come_from_the_environment(tmp_path: Path) -> None:
    values = {**MINIMAL, "password": ""}
    environ = {"PTPORTAL_MAILBOX_SHOP_2_PASSWORD": "aus-der-umgebung"}
    assert password_variable("shop-2") == "PTPORTAL_MAILBOX_SHOP_2_PASSWORD"
    assert parse_mailbox_section("shop-2", values, tmp_path, environ).password == (
        "aus-der-umgebung"
    )


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("host", "imap server", "a host name or IP address like imap.example.com"),
        ("address", "auftraege", "an email address like portal@example.com"),
        ("security", "none", "one of ssl, starttls (plain IMAP without TLS is not offered)"),
        ("port", "99999", "a whole number from 1 to 65535"),
        ("ca_file", "no.pem", "the path of a readable PEM file with the CA certificates to trust"),
        ("folder", "INBOX.*", "an IMAP folder name such as INBOX or INBOX.Processed (no % or *)"),
        ("processed_folder", "INBOX", "a folder other than folder (or - to flag, not move)"),
        ("active", "vielleicht", "yes or no"),
        ("poll_interval_seconds", "1", "a whole number from 10 to 86400"),
        ("max_mail_bytes", "viel", "a size like 500M, 20G or a number of bytes"),
        ("max_attachments", "0", "a whole number from 1 to 1000"),
    ],
)  # fmt: skip
def test_errors_name_the_key_and_what_is_allowed(
    tmp_path: Path, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mailbox_section("orders", {**MINIMAL, key: value}, tmp_path, {})
    assert str(caught.value) == (
        f"[mailbox:orders] {key} = {value!r} is not allowed; expected {allowed}"
    )


@pytest.mark.parametrize("key", ["host", "user", "password"])
def test_a_missing_value_names_its_variable(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mailbox_section("orders", {**MINIMAL, key: ""}, tmp_path, {})
    assert str(caught.value) == (
        f"[mailbox:orders] {key} is missing; set it or $PTPORTAL_MAILBOX_ORDERS_{key.upper()}"
    )


def test_an_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mailbox_section("orders", {**MINIMAL, "pasword": "x"}, tmp_path, {})
    assert str(caught.value) == (
        "[mailbox:orders] unknown key 'pasword'; allowed: host, port, security, user, "
        "password, ca_file, address, folder, processed_folder, active, poll_interval_seconds, "
        "max_mail_bytes, max_attachments, max_total_attachment_bytes"
    )


def test_a_bad_password_value_is_never_shown(tmp_path: Path) -> None:
    settings = parse_mailbox_section("orders", MINIMAL, tmp_path, {})
    assert "geheim" not in repr(settings)


def test_mailbox_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"the mailbox name must be 1-40 lower-case letters"):
        parse_mailbox_section("Orders!", MINIMAL, tmp_path, {})


# -- in client.ini ---------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "client.ini.example"


def _ini(tmp_path: Path, mailboxes: str) -> Path:
    path = tmp_path / "client.ini"
    text = EXAMPLE.read_text(encoding="utf-8").split("; -- Mailboxes")[0]
    path.write_text(text + mailboxes, encoding="utf-8")
    return path


SECRET = {"PTPORTAL_PORTAL_SECRET_KEY": "s" * 40}


def test_sections_become_settings_mailboxes_in_file_order(tmp_path: Path) -> None:
    ini = _ini(
        tmp_path,
        "[mailbox:orders]\nhost = imap.example.com\nuser = a\npassword = x\n"
        "address = auftraege@druckerei.example\n\n"
        "[mailbox:proofs]\nhost = imap.example.com\nuser = b\nactive = no\n",
    )
    settings = load_settings(ini, environ=SECRET | {"PTPORTAL_MAILBOX_PROOFS_PASSWORD": "y"})
    assert [box.name for box in settings.mailboxes] == ["orders", "proofs"]
    assert settings.mailbox("orders").address == "auftraege@druckerei.example"
    assert settings.mailbox("proofs").password == "y"
    assert settings.mailbox("proofs").active is False
    assert settings.mailbox("nope") is None


def test_no_section_no_mailbox(tmp_path: Path) -> None:
    assert load_settings(_ini(tmp_path, ""), environ=SECRET).mailboxes == ()


def test_a_bad_mailbox_value_stops_loading_naming_the_file(tmp_path: Path) -> None:
    ini = _ini(tmp_path, "[mailbox:orders]\nhost = imap.example.com\nuser = a\nport = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(ini, environ=SECRET | {"PTPORTAL_MAILBOX_ORDERS_PASSWORD": "y"})
    assert str(caught.value) == (
        f"{ini}: [mailbox:orders] port = '0' is not allowed; expected a whole number from 1 to "
        "65535"
    )


def test_the_example_documents_every_mailbox_key_with_its_default(tmp_path: Path) -> None:
    block = EXAMPLE.read_text(encoding="utf-8").split(";[mailbox:orders]")[1]
    documented = dict(re.findall(r"^;(\w+) = ?(.*)$", block, re.M))
    assert list(documented) == list(MAILBOX_SCHEMA)
    for key, spec in MAILBOX_SCHEMA.items():
        if spec.default is not None:
            assert documented[key] == spec.default, key
    # Uncommented, the example section is a working mailbox.
    section = "[mailbox:orders]\n" + "\n".join(f"{k} = {v}" for k, v in documented.items())
    environ = SECRET | {"PTPORTAL_MAILBOX_ORDERS_PASSWORD": "x"}
    settings = load_settings(_ini(tmp_path, section + "\n"), environ=environ)
    assert settings.mailbox("orders").port == 993
