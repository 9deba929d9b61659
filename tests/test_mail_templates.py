"""Email templates: the seed's placeholder syntax, sandboxing, signature frame."""

from __future__ import annotations

import pytest

from shared.db import bind_database, database, write_transaction
from shared.mail.defaults import ACTIVATION_TEMPLATE, install_defaults
from shared.mail.templates import (
    TemplateProblem,
    active_signature,
    find_template,
    render_mail,
    template_context,
)
from shared.models import ALL_MODELS, EmailSignature, EmailTemplate

SEED_PLACEHOLDERS = (
    'Auftrag {{data_project["project_no"]}}: {{ticketdata_project["job_description"]}}, '
    'fällig {{ticketdata_project["due_date"]}}, '
    'Benutzer {{data_project["portal_client_username"]}}, '
    'Link {{data_project["portal_first_activation_link"]}}, '
    'neu {{data_project["portal_activation_link"]}}'
)


@pytest.fixture
def db(database_url):
    bind_database(database_url)
    database.create_tables(ALL_MODELS)
    yield
    database.close()


def context(**values):
    defaults = {
        "project_no": "A-17",
        "job_description": "Flyer <A5> & Co",
        "due_date": "01.12.2026",
        "portal_client_username": "k1",
        "portal_first_activation_link": "https://portal.test/activate/abc",
        "portal_activation_link": "https://portal.test/activate",
    }
    return template_context(**(defaults | values))


def template(subject="Betreff {{data_project['project_no']}}", content=SEED_PLACEHOLDERS):
    return EmailTemplate(name="Test", language="de", subject=subject, content=content)


def test_seed_placeholders_render_as_written(db):
    mail = render_mail(template(), None, context())
    assert mail.subject == "Betreff A-17"
    assert mail.text == (
        "Auftrag A-17: Flyer <A5> & Co, fällig 01.12.2026, Benutzer k1, "
        "Link https://portal.test/activate/abc, neu https://portal.test/activate\n"
    )


def test_typographic_quotes_from_the_manual_work(db):
    content = "{{data_project[“project_no“]}} / {{data_project[„portal_client_username“]}}"
    assert render_mail(template(content=content), None, context()).text == "A-17 / k1\n"


def test_html_part_escapes_values_and_links_urls(db):
    mail = render_mail(template(), None, context())
    assert "Flyer &lt;A5&gt; &amp; Co" in mail.html
    assert '<a href="https://portal.test/activate/abc">' in mail.html
    assert "<A5>" not in mail.html


@pytest.mark.parametrize(
    "content",
    [
        "{{data_project['unknown_key']}}",
        "{{ missing_variable }}",
        "{{ data_project.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{% for x in %}",
    ],
)
def test_bad_or_unsafe_template_is_a_clear_error(db, content):
    with pytest.raises(TemplateProblem, match="email template 'Test'"):
        render_mail(template(content=content), None, context())


def test_subject_is_one_line(db):
    mail = render_mail(template(subject="Zeile 1\nZeile 2"), None, context())
    assert mail.subject == "Zeile 1 Zeile 2"


def test_signature_frames_text_and_html(db):
    signature = EmailSignature(
        name="S",
        head_html="<p>KOPF</p>",
        foot_html="<p>FUSS</p>",
        head_text="Kopf",
        foot_text="Fuss",
        status=True,
    )
    mail = render_mail(template(content="Inhalt"), signature, context())
    assert mail.text == "Kopf\n\nInhalt\n\nFuss\n"
    assert mail.html.index("<p>KOPF</p>") < mail.html.index("Inhalt") < mail.html.index("FUSS")


def test_defaults_installed_once_in_german_english_and_french(db):
    with write_transaction():
        install_defaults("Testdruck")
        install_defaults("Testdruck")
    rows = EmailTemplate.select().where(EmailTemplate.name == ACTIVATION_TEMPLATE)
    assert sorted(row.language for row in rows) == ["de", "en", "fr"]
    assert EmailSignature.select().count() == 1
    assert "Testdruck" in active_signature().foot_text
    german = render_mail(find_template(ACTIVATION_TEMPLATE, "de"), None, context())
    english = render_mail(find_template(ACTIVATION_TEMPLATE, "en"), None, context())
    french = render_mail(find_template(ACTIVATION_TEMPLATE, "fr"), None, context())
    assert "Passwort" in german.text and "A-17" in german.text
    assert "password" in english.text and "k1" in english.text
    assert "mot de passe" in french.text and "A-17" in french.text and "k1" in french.text
    # A language without templates of its own gets German.
    assert find_template(ACTIVATION_TEMPLATE, "it").language == "de"


def test_missing_template_is_named(db):
    with pytest.raises(TemplateProblem, match="'Hotfolder Portalzugang' is missing"):
        find_template(ACTIVATION_TEMPLATE, "de")


def test_context_refuses_unknown_placeholders():
    with pytest.raises(TypeError):
        template_context(no_such_key="x")
