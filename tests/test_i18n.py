"""German by default, English on request, and every text of the UI translated."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "portal" / "translations" / "de" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
METHODS = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
# As portal/babel.cfg: a template the extractor cannot parse must fail, not count as empty.
OPTIONS = {"templates/**.html": {"silent": "false"}}


def source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_ui_text_has_a_german_translation_with_the_same_placeholders():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    translated = {message.id: message.string for message in catalog if message.id}
    missing = sorted(source_messages() - {key for key, value in translated.items() if value})
    assert not missing, f"untranslated (run the extraction and translate): {missing}"
    for source, german in translated.items():
        placeholders = sorted(re.findall(r"%\(\w+\)[sd]", source))
        assert sorted(re.findall(r"%\(\w+\)[sd]", german)) == placeholders, source


def test_german_is_the_default(app):
    page = app.test_client().get("/login", headers={"Accept-Language": ""}).get_data(as_text=True)
    assert '<html lang="de">' in page
    assert "Anmelden" in page and "Benutzername" in page


def test_browser_language_is_respected(app):
    page = (
        app.test_client()
        .get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
        .get_data(as_text=True)
    )
    assert '<html lang="en">' in page
    assert "Sign in" in page and "Username" in page


def test_language_switch_is_remembered(app):
    client = app.test_client()
    german_browser = {"Accept-Language": "de"}
    english_browser = {"Accept-Language": "en"}
    assert "Sign in" in client.get("/login?lang=en", headers=german_browser).text
    assert "Request a new link" in client.get("/activate", headers=german_browser).text
    assert "Anmelden" in client.get("/login?lang=de", headers=english_browser).text
    assert "Neuen Link anfordern" in client.get("/activate", headers=english_browser).text


def test_unsupported_language_falls_back_to_default(app):
    response = app.test_client().get("/login?lang=xx", headers={"Accept-Language": "ja"})
    page = response.get_data(as_text=True)
    assert '<html lang="de">' in page
