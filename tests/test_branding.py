"""The print shop's name, logo and colour from client.ini; no external assets."""

from __future__ import annotations

import pytest
from conftest import SECRET, write_ini

from shared.config import ConfigError, load_settings

LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    b'<rect width="120" height="40" fill="#c0392b"/></svg>'
)


@pytest.fixture
def ini_overrides(tmp_path):
    (tmp_path / "logo.svg").write_bytes(LOGO)
    return {
        "portal": {
            "shop_name": "Druckhaus Süd",
            "logo_file": "logo.svg",
            "primary_color": "#C0392B",
        }
    }


def test_pages_show_logo_name_and_colour(client):
    page = client.get("/login").text
    assert '<img src="/brand/logo" alt="Druckhaus Süd"' in page
    assert "<title>Sign in · Druckhaus Süd</title>" in page
    css = client.get("/brand.css")
    assert css.mimetype == "text/css"
    assert "--primary: #c0392b;" in css.text and "--primary-dark: #" in css.text
    logo = client.get("/brand/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/svg+xml"
    assert logo.data == LOGO
    assert logo.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_without_logo_the_name_is_the_brand(tmp_path):
    from portal import create_app

    sections = {
        "portal": {"base_url": "http://p.test", "secret_key": SECRET},
        "smtp": {"email": "p@example.com"},
    }
    app = create_app(load_settings(write_ini(tmp_path, sections)))
    assert app.test_client().get("/brand/logo").status_code == 404


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [("primary_color", "blue", "a colour like #1f5f8b"), ("logo_file", "missing.png", "existing")],
)
def test_bad_branding_values_stop_start_up(tmp_path, key, value, allowed):
    sections = {
        "portal": {"base_url": "http://p.test", "secret_key": SECRET, key: value},
        "smtp": {"email": "p@example.com"},
    }
    with pytest.raises(ConfigError, match=allowed):
        load_settings(write_ini(tmp_path, sections))
