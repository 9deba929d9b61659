"""The agent's ``[agent]`` section: all it needs is the portal's URL, a token and a CA."""

from __future__ import annotations

import pytest
from conftest import base_sections, write_ini

from shared.config import ConfigError, load_agent_settings, load_settings

MINIMAL = {"portal_url": "https://upload.example.com", "token": "pta_secret"}


def load(tmp_path, agent: dict, environ: dict | None = None, **sections):
    ini = write_ini(tmp_path, {"agent": agent, **sections})
    return load_agent_settings(ini, environ=environ or {})


def test_an_agent_section_alone_is_a_whole_configuration(tmp_path):
    settings = load(tmp_path, MINIMAL)
    assert settings.portal_url == "https://upload.example.com"
    assert settings.token == "pta_secret"
    assert settings.ca_file is None
    assert settings.state_dir == tmp_path / "agent-state"
    assert settings.hotfolder_root == tmp_path / "data" / "hotfolders"
    assert settings.downloads == 4 and settings.batch_window_seconds == 10


def test_the_token_may_come_from_the_environment(tmp_path):
    settings = load(
        tmp_path, {"portal_url": MINIMAL["portal_url"]}, {"PTPORTAL_AGENT_TOKEN": "pta_env"}
    )
    assert settings.token == "pta_env"
    with pytest.raises(
        ConfigError, match=r"\[agent\] token is missing; set it or \$PTPORTAL_AGENT_TOKEN"
    ):
        load(tmp_path, {"portal_url": MINIMAL["portal_url"]})


@pytest.mark.parametrize(
    "url",
    ["http://upload.example.com", "ftp://upload.example.com", "upload.example.com", "https://"],
)
def test_plain_http_is_refused_except_on_this_machine(tmp_path, url):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, MINIMAL | {"portal_url": url})
    assert "[agent] portal_url" in str(error.value)
    assert "http:// only for 127.0.0.1 or localhost" in str(error.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:5000", "http://localhost:5000/", "http://[::1]:8000", "https://10.0.0.5"],
)
def test_loopback_may_use_plain_http(tmp_path, url):
    assert load(tmp_path, MINIMAL | {"portal_url": url}).portal_url == url.rstrip("/")


def test_a_ca_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"\[agent\] ca_file = 'missing.pem' is not allowed"):
        load(tmp_path, MINIMAL | {"ca_file": "missing.pem"})
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert load(tmp_path, MINIMAL | {"ca_file": "ca.pem"}).ca_file == tmp_path / "ca.pem"


def test_the_token_is_never_shown_in_an_error(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, MINIMAL | {"downloads": "99"})
    assert "pta_secret" not in str(error.value)
    assert "[agent] downloads = '99' is not allowed; expected a whole number from 1 to 16" in str(
        error.value
    )


def test_the_old_notify_email_key_says_where_it_went(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, MINIMAL | {"notify_email": "avor@example.com"})
    assert "[notifications] job_notification_email" in str(error.value)


def test_the_agent_ignores_the_portals_sections_and_the_portal_the_agents(tmp_path):
    sections = base_sections(2525, agent=dict(MINIMAL))
    ini = write_ini(tmp_path, sections)
    assert load_agent_settings(ini, environ={}).portal_url == MINIMAL["portal_url"]
    portal = load_settings(ini, environ={})
    assert not hasattr(portal, "agent")
    del sections["agent"]
    load_settings(write_ini(tmp_path, sections), environ={})  # no [agent]: fine for the portal
    with pytest.raises(ConfigError, match=r"\[agent\] portal_url is missing"):
        load_agent_settings(write_ini(tmp_path, sections), environ={})
