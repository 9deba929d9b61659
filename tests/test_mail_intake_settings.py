"""The [mailbox:NAME] section of client.ini, parsed into MailboxSettings."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.mail_intake.settings import MailboxSettings, parse_mailbox_section, password_variable

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
        ("host", "", "a host name or IP address like imap.example.com"),
        ("user", "", "a non-empty value"),
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


def test_a_missing_password_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mailbox_section("orders", {**MINIMAL, "password": ""}, tmp_path, {})
    assert str(caught.value) == (
        "[mailbox:orders] password is missing; set it or $PTPORTAL_MAILBOX_ORDERS_PASSWORD"
    )


def test_an_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mailbox_section("orders", {**MINIMAL, "pasword": "x"}, tmp_path, {})
    assert str(caught.value) == (
        "[mailbox:orders] unknown key 'pasword'; allowed: host, port, security, user, "
        "password, ca_file, folder, processed_folder, active, poll_interval_seconds, "
        "max_mail_bytes, max_attachments, max_total_attachment_bytes"
    )


def test_a_bad_password_value_is_never_shown(tmp_path: Path) -> None:
    settings = parse_mailbox_section("orders", MINIMAL, tmp_path, {})
    assert "geheim" not in repr(settings)


def test_mailbox_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"the mailbox name must be 1-40 lower-case letters"):
        parse_mailbox_section("Orders!", MINIMAL, tmp_path, {})
