"""German by default, English and French on request, every text of the UI translated, and
mails in the language the customer reads."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from conftest import activation_link_in, csrf_from
from portal_helpers import BASE_URL, signed_in_customer
from route_helpers import route_path
from staff_helpers import admin_fixture  # noqa: F401  (fixture "admin")

from shared.models import PortalLogin
from shared.notify.activation import request_new_link

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
METHODS = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
# As portal/babel.cfg: a template the extractor cannot parse must fail, not count as empty.
OPTIONS = {"templates/**.html": {"silent": "false"}}
# Python's %(name)s for the pages, {name} for the upload widget's texts (static/js/upload.js).
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
# Pages that show stored data in every language by design: the template list names each
# template's subject, English ones included.
SHOWS_EVERY_LANGUAGE = {"/staff/mail/templates"}


def source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(language: str) -> dict[str, str]:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {message.id: message.string for message in read_po(handle) if message.id}


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_ui_text_is_translated_with_the_same_placeholders(language):
    translated = catalog(language)
    missing = sorted(source_messages() - {key for key, value in translated.items() if value})
    assert not missing, f"untranslated (run the extraction and translate): {missing}"
    for source, translation in translated.items():
        expected = sorted(PLACEHOLDER.findall(source))
        assert sorted(PLACEHOLDER.findall(translation)) == expected, source


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


def test_a_french_browser_gets_french(app):
    page = app.test_client().get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert '<html lang="fr">' in page
    assert "Se connecter" in page and "Nom d'utilisateur" in html.unescape(page)


def test_language_switch_is_remembered(app):
    client = app.test_client()
    german_browser = {"Accept-Language": "de"}
    english_browser = {"Accept-Language": "en"}
    assert "Sign in" in client.get("/login?lang=en", headers=german_browser).text
    assert "Request a new link" in client.get("/activate", headers=german_browser).text
    assert "Anmelden" in client.get("/login?lang=de", headers=english_browser).text
    assert "Neuen Link anfordern" in client.get("/activate", headers=english_browser).text
    assert "Se connecter" in client.get("/login?lang=fr", headers=german_browser).text
    assert "Demander un nouveau lien" in client.get("/activate", headers=german_browser).text


def test_the_switch_offers_french(app):
    page = app.test_client().get("/login").text
    assert '<a href="?lang=fr" lang="fr" hreflang="fr"' in page
    assert ">Français</a>" in page


def test_unsupported_language_falls_back_to_default(app):
    response = app.test_client().get("/login?lang=xx", headers={"Accept-Language": "ja"})
    page = response.get_data(as_text=True)
    assert '<html lang="de">' in page


# --- every page in French --------------------------------------------------------------------


def english_only_texts() -> set[str]:
    """Source texts whose French differs, long enough not to be a word French shares."""
    return {
        source
        for source, french in catalog("fr").items()
        if french != source and len(source) > 10 and not PLACEHOLDER.search(source)
    }


def get_routes(app) -> list[str]:
    """The path of every GET route of the pages (not the API, not static files)."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or "/api/" in rule.rule:
            continue
        paths.append(route_path(rule))
    return paths


def assert_french(client, path: str, english: set[str]) -> str:
    """The page at ``path`` asked for in French: no error, French throughout."""
    response = client.get(path, query_string={"lang": "fr"})
    assert response.status_code < 500, (path, response.status_code)
    if response.mimetype != "text/html" or response.status_code in (301, 302, 303):
        return ""  # a file, or Werkzeug's redirect stub (the target is walked on its own)
    page = response.get_data(as_text=True)
    if "<html" in page:
        assert '<html lang="fr">' in page, path
    if path not in SHOWS_EVERY_LANGUAGE:
        text = html.unescape(page)
        left = sorted(source for source in english if source in text)
        assert not left, (path, left)
    return html.unescape(page)


CUSTOMER_PAGES = {
    "/orders": "Vos commandes",
    "/orders/A1": "Glissez vos fichiers ici, ou",
    "/activate": "Demander un nouveau lien",
}
STAFF_PAGES = {
    "/staff/": "Fichiers qui demandent votre attention",
    "/staff/customers/": "Rechercher par numéro, nom ou e-mail",
    "/staff/customers/K1": "Accès au portail",
    "/staff/orders/": "Nouvelle commande",
    "/staff/orders/A1": "Envoyer un e-mail au client",
    "/staff/new-order": "Créer la commande",
    "/staff/inbox": "Boîte de réception",
    "/staff/hotfolder/": "Dépôts",
    "/staff/mail/": "Événements de notification",
    "/staff/mail/outbox": "Boîte d'envoi",
    "/staff/users/": "Nouveau collaborateur",
    "/staff/defaults/": "Paramètres système par défaut",
    "/staff/tokens/": "Créer le jeton",
    "/staff/audit/": "Journal d'audit",
    "/staff/account/": "Connexion à deux facteurs",
}


def test_every_page_renders_in_french(app, client, api, mailserver, admin):
    signed_in_customer(client, api, mailserver, "K1", "A1")
    english = english_only_texts()
    paths = get_routes(app)
    assert len(paths) >= 50, paths
    for browser in (client, admin.client):
        for path in paths:
            assert_french(browser, path, english)
    for path, french in CUSTOMER_PAGES.items():
        assert french in assert_french(client, path, english), path
    for path, french in STAFF_PAGES.items():
        assert french in assert_french(admin.client, path, english), path


# --- mails in the language the customer reads ------------------------------------------------


def test_a_customer_who_chose_french_gets_french_mails(app, client, api, mailserver, admin):
    settings = app.config["PTPORTAL_SETTINGS"]
    signed_in_customer(client, api, mailserver, "K1", "A1")  # an English browser
    first = mailserver.received[-1].message["Subject"]
    assert first == "[Auftrag A1] Ihr Zugang zum Upload-Portal"  # the customer's language

    assert "Vos commandes" in client.get("/orders?lang=fr").text
    assert PortalLogin.get().language == "fr"

    # The activation mail (a new link, as "forgot password" sends it) …
    request_new_link(settings, app.extensions["ptportal.links"], "k1")
    app.extensions["ptportal.tasks"].deliver_soon()
    activation = mailserver.received[-1]
    assert activation.message["Subject"] == "Votre accès au portail de dépôt de fichiers"
    text = activation.message.get_body(preferencelist=("plain",)).get_content()
    assert "Votre nom d'utilisateur : k1" in text
    link = activation_link_in(mailserver)
    assert f"{link}?lang=fr" in text  # the password page opens in French too
    page = app.test_client().get(f"{link.removeprefix(BASE_URL)}?lang=fr").text
    assert '<html lang="fr">' in page and "Choisissez votre mot de passe" in page

    # … and a notification: staff (reading German) write to the customer on the order page.
    page = admin.client.get("/staff/orders/A1?lang=de").text
    form = {"body": "Die Druckdaten sind da.", "csrf_token": csrf_from(page)}
    assert admin.client.post("/staff/orders/A1/messages", data=form).status_code < 400
    message = mailserver.received[-1]
    subject = "[Commande A1] Message concernant votre commande A1"
    assert message.message["Subject"] == subject
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    assert "Vous pouvez répondre directement à cet e-mail" in text


@pytest.mark.parametrize("ini_overrides", [{"portal": {"default_language": "fr"}}], indirect=True)
def test_a_french_shop_shows_french_to_browsers_asking_for_nothing_we_have(app):
    page = app.test_client().get("/login", headers={"Accept-Language": "ja"}).text
    assert '<html lang="fr">' in page and "Se connecter" in page
