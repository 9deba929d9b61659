"""client.ini: every key documented, defaults, bad values named in one line."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from conftest import SECRET, write_ini

from shared.config import SCHEMA, ConfigError, config_path, load_settings

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "client.ini.example"

MINIMAL = {
    "portal": {"base_url": "https://upload.example.com", "secret_key": SECRET},
    "smtp": {"email": "portal@example.com"},
}


def load(tmp_path: Path, sections: dict, environ: dict | None = None):
    return load_settings(write_ini(tmp_path, sections), environ=environ or {})


def error_for(tmp_path: Path, sections: dict, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, sections, environ)
    return str(info.value)


def test_minimal_file_gets_documented_defaults(tmp_path):
    settings = load(tmp_path, MINIMAL)
    assert settings.database.url == f"sqlite:///{tmp_path / 'data' / 'ptportal.db'}"
    assert settings.storage.order_root == tmp_path / "data" / "orders"
    assert settings.portal.activation_link_minutes == 30
    assert settings.workflow.portal_create_uplogin_automatically == 1
    assert settings.workflow.portal_send_uplogin_email_automatically == 1
    assert settings.workflow.portal_reminder_email_automatically == 0
    assert settings.smtp.security == "starttls"
    assert settings.smtp.username == ""
    assert settings.security.argon2_memory_kib == 65536
    assert settings.portal.secure_cookies


def test_file_rules_and_preflight_defaults_become_the_engines_settings(tmp_path):
    from shared.files.acceptance import zip_limits
    from shared.files.filetypes import ACCEPTABLE_TYPES
    from shared.files.preflight import PreflightLimits, PreflightSettings
    from shared.files.preflighting import engine_limits, engine_settings
    from shared.files.zips import ZipLimits

    settings = load(tmp_path, MINIMAL)
    assert settings.files.accepted_types == ACCEPTABLE_TYPES
    assert settings.storage.preview_root == tmp_path / "data" / "previews"
    assert zip_limits(settings) == ZipLimits()
    assert engine_settings(settings) == PreflightSettings()
    assert engine_limits(settings) == PreflightLimits()

    sections = {
        **MINIMAL,
        "files": {"accepted_types": "PDF, jpg, tif", "zip_max_ratio": "100"},
        "preflight": {"min_bleed_mm": "2.5", "require_pdfx": "yes"},
    }
    settings = load(tmp_path, sections)
    assert settings.files.accepted_types == ("pdf", "jpeg", "tiff")
    assert zip_limits(settings).max_ratio == 100
    assert engine_settings(settings).min_bleed_mm == 2.5
    assert engine_settings(settings).require_pdfx is True


def test_example_documents_every_key_with_its_default():
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    parser.read(EXAMPLE, encoding="utf-8")
    assert parser.sections() == list(SCHEMA)
    for section, keys in SCHEMA.items():
        assert list(parser[section]) == list(keys), section
        for key, spec in keys.items():
            if spec.default is not None:
                assert parser[section][key] == spec.default, f"[{section}] {key}"
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in (k for keys in SCHEMA.values() for k in keys):
        # each key has a comment above it or shares one with its neighbour
        assert re.search(rf"^{key} =", text, re.M)


def test_example_loads_once_secret_comes_from_environment(tmp_path):
    ini = tmp_path / "client.ini"
    ini.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[portal\] secret_key is missing"):
        load_settings(ini, environ={})
    settings = load_settings(ini, environ={"PTPORTAL_PORTAL_SECRET_KEY": SECRET})
    assert settings.portal.secret_key == SECRET


def test_secret_from_environment_when_value_empty(tmp_path):
    sections = {**MINIMAL, "smtp": {"email": "portal@example.com", "password": ""}}
    settings = load(tmp_path, sections, {"PTPORTAL_SMTP_PASSWORD": "s3cret"})
    assert settings.smtp.password == "s3cret"


def test_postgresql_url_accepted(tmp_path):
    sections = {**MINIMAL, "database": {"url": "postgresql://portal:pw@db.internal/ptportal"}}
    assert load(tmp_path, sections).database.url.startswith("postgresql://")


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed"),
    [
        ("workflow", "portal_reminder_email_automatically", "3", "one of 0, 1, 2"),
        ("workflow", "portal_create_uplogin_automatically", "yes", "one of 0, 1"),
        ("smtp", "port", "abc", "a whole number from 1 to 65535"),
        ("smtp", "port", "70000", "a whole number from 1 to 65535"),
        ("smtp", "security", "tls", "one of starttls, ssl, none"),
        ("smtp", "email", "not-an-address", "an email address"),
        ("portal", "base_url", "upload.example.com", "an absolute http:// or https:// URL"),
        ("portal", "activation_link_minutes", "0", "a whole number from 5"),
        ("portal", "time_zone", "Mars/Olympus", "an IANA time zone"),
        ("database", "url", "mysql://x/y", "sqlite:///PATH or postgresql://"),
        ("clamav", "address", "clamd", "a unix socket path"),
        ("files", "accepted_types", "pdf, docx", "a comma-separated list of pdf, tiff, jpeg"),
        ("files", "accepted_types", ",", "a comma-separated list of pdf, tiff, jpeg"),
        ("files", "zip_max_total_size", "lots", "a size like 500M, 20G"),
        ("files", "zip_max_ratio", "1", "a whole number from 2 to 100000"),
        ("preflight", "min_bleed_mm", "3mm", "a number of millimetres from 0 to 50"),
        ("preflight", "colour_mode", "rgb", "one of cmyk, any"),
        ("preflight", "require_pdfx", "1", "yes or no"),
        ("preflight", "wall_seconds", "0", "a number of seconds from 1 to 7200"),
        ("portal", "default_language", "it", "one of de, en, fr"),
        ("notifications", "staff_language", "es", "one of de, en, fr"),
    ],
)
def test_bad_value_names_file_section_key_value_and_allowed(tmp_path, section, key, value, allowed):
    sections = {name: dict(values) for name, values in MINIMAL.items()}
    sections.setdefault(section, {})[key] = value
    message = error_for(tmp_path, sections)
    assert "\n" not in message
    assert str(tmp_path / "client.ini") in message
    assert f"[{section}] {key} = {value!r}" in message
    assert allowed in message


def test_french_is_a_language_for_the_pages_and_the_staff_mails(tmp_path):
    sections = {
        **MINIMAL,
        "portal": {**MINIMAL["portal"], "default_language": "fr"},
        "notifications": {"staff_language": "fr"},
    }
    settings = load(tmp_path, sections)
    assert (settings.portal.default_language, settings.notifications.staff_language) == (
        "fr",
        "fr",
    )


def test_secret_values_are_not_repeated_in_errors(tmp_path):
    sections = {**MINIMAL, "portal": {**MINIMAL["portal"], "secret_key": "short-but-secret"}}
    message = error_for(tmp_path, sections)
    assert "short-but-secret" not in message
    assert "[portal] secret_key" in message


def test_database_password_is_masked_in_errors(tmp_path):
    sections = {**MINIMAL, "database": {"url": "mysql://portal:topsecret@db/x"}}
    message = error_for(tmp_path, sections)
    assert "topsecret" not in message
    assert "'mysql://portal:***@db/x'" in message


def test_unknown_section_and_key_are_refused(tmp_path):
    assert "unknown section [mail]" in error_for(tmp_path, {**MINIMAL, "mail": {"x": "1"}})
    sections = {**MINIMAL, "smtp": {"email": "portal@example.com", "hostname": "x"}}
    message = error_for(tmp_path, sections)
    assert "[smtp] unknown key 'hostname'" in message
    assert "server" in message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.ini")
    broken = tmp_path / "broken.ini"
    broken.write_text("no section header\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid ini file"):
        load_settings(broken)


def test_config_path_precedence(monkeypatch):
    monkeypatch.setenv("PTPORTAL_CONFIG", "/etc/ptportal/client.ini")
    assert config_path("given.ini") == Path("given.ini")
    assert config_path() == Path("/etc/ptportal/client.ini")
    monkeypatch.delenv("PTPORTAL_CONFIG")
    assert config_path() == Path("client.ini")


def test_settings_are_frozen(tmp_path):
    settings = load(tmp_path, MINIMAL)
    with pytest.raises(AttributeError):
        settings.portal.base_url = "http://elsewhere"


def test_rate_limit_storage_is_database_memory_or_redis(tmp_path):
    from conftest import base_sections, write_ini

    from shared.config import ConfigError, load_settings

    assert load_settings(write_ini(tmp_path, base_sections(25))).portal.rate_limit_storage_url == (
        "database://"
    )
    ini = write_ini(tmp_path, base_sections(25, portal={"rate_limit_storage_url": "mongodb://x"}))
    with pytest.raises(ConfigError, match="rate_limit_storage_url"):
        load_settings(ini)
