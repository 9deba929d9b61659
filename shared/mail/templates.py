"""Render customer email templates (seed ``client_email_template``) in a Jinja sandbox.

Templates are written by staff with the seed's placeholder syntax, e.g.
``{{data_project["portal_first_activation_link"]}}``. Typographic quotes, as the
seed manual prints them, are accepted inside placeholders. A template that does
not render (syntax error, unknown placeholder, forbidden attribute) raises
``TemplateProblem`` and no mail is produced at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from shared.errors import ServiceError
from shared.mail.html import clean_html
from shared.models import EmailSignature, EmailTemplate


class _StrictSandbox(SandboxedEnvironment):
    """Jinja's sandbox, tightened: no calls and no methods at all, only values and filters."""

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        # A template only reads placeholders; dict.items or str.format are no business of it.
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def is_safe_callable(self, obj) -> bool:
        return False


_sandbox = _StrictSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# No range(), lipsum(), namespace() …: a template sees only the placeholder dictionaries.
_sandbox.globals.clear()
_TAG = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‚": "'", "‘": "'", "’": "'"})
# A sentence's closing punctuation is not part of the link.
_URL = re.compile(r"https?://[^\s<>\"']*[^\s<>\"'.,;:!?)]")

# The placeholders every template may use; a mail fills those it knows, the rest are empty.
DATA_PROJECT_KEYS = (
    "project_no",
    "portal_client_username",
    "portal_first_activation_link",
    "portal_activation_link",
    "link_valid_minutes",
    "customer_name",
    "upload_link",
    "event_list",
    "event_count",
    "message_text",
    "message_author",
    "proof_link",
)
TICKETDATA_PROJECT_KEYS = ("job_description", "due_date", "ticket_no", "ticket_title")


class TemplateProblem(ServiceError):
    """A template that cannot be rendered; the message is meant for staff."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def template_context(**values: str) -> dict[str, dict[str, str]]:
    """The two placeholder dictionaries, with every known key present (empty if not given)."""
    data_project = {key: values.pop(key, "") for key in DATA_PROJECT_KEYS}
    ticketdata_project = {key: values.pop(key, "") for key in TICKETDATA_PROJECT_KEYS}
    if values:
        raise TypeError(f"unknown placeholders: {sorted(values)}")
    return {"data_project": data_project, "ticketdata_project": ticketdata_project}


def _normalise_quotes(source: str) -> str:
    return _TAG.sub(lambda match: match.group(0).translate(_QUOTES), source)


def _render(source: str, context: dict, template_name: str, part: str) -> str:
    try:
        return _sandbox.from_string(_normalise_quotes(source)).render(context)
    except TemplateError as exc:
        raise TemplateProblem(
            f"email template {template_name!r} ({part}) cannot be rendered: {exc}"
        ) from None


def parse_template(source: str):
    """The Jinja syntax tree of ``source`` as the sandbox reads it; raises TemplateSyntaxError."""
    return _sandbox.parse(_normalise_quotes(source))


def render_part(source: str, context: dict, template_name: str, part: str) -> str:
    """One part (subject, content) rendered in the sandbox; raises TemplateProblem."""
    return _render(source, context, template_name, part)


def text_to_html(text: str) -> Markup:
    """Plain text as HTML: escaped, links clickable, line breaks kept."""
    parts = []
    position = 0
    for match in _URL.finditer(text):
        parts.append(escape(text[position : match.start()]))
        url = match.group(0)
        parts.append(Markup('<a href="{0}">{0}</a>').format(url))
        position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts).replace("\n", Markup("<br>\n"))


def render_mail(
    template: EmailTemplate, signature: EmailSignature | None, context: dict
) -> RenderedMail:
    """Subject, plain text and HTML of ``template`` framed by ``signature``."""
    subject = " ".join(_render(template.subject, context, template.name, "subject").split())
    body = _render(template.content, context, template.name, "content").strip("\n")
    head_text = signature.head_text if signature else ""
    foot_text = signature.foot_text if signature else ""
    # Sanitised again here, so a signature stored before sanitising existed is safe too.
    head_html = clean_html(signature.head_html) if signature else ""
    foot_html = clean_html(signature.foot_html) if signature else ""
    text = "\n\n".join(part for part in (head_text.strip(), body, foot_text.strip()) if part)
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f"{head_html}<p>{text_to_html(body)}</p>{foot_html}</body></html>"
    )
    return RenderedMail(subject=subject, text=text + "\n", html=html)


def find_template(name: str, language: str) -> EmailTemplate:
    """The template ``name`` in ``language``, else German, else any language."""
    candidates = {t.language: t for t in EmailTemplate.select().where(EmailTemplate.name == name)}
    for choice in (language, "de", "en"):
        if choice in candidates:
            return candidates[choice]
    if candidates:
        return next(iter(candidates.values()))
    raise TemplateProblem(f"email template {name!r} is missing; run `ptportal init`")


def active_signature() -> EmailSignature | None:
    """The signature whose status is on (the first by id if several are)."""
    return (
        EmailSignature.select()
        .where(EmailSignature.status == True)  # noqa: E712 (peewee expression)
        .order_by(EmailSignature.id)
        .first()
    )


def all_templates() -> list[EmailTemplate]:
    """Every template row (one per name and language), by name."""
    return list(EmailTemplate.select().order_by(EmailTemplate.name, EmailTemplate.language))


def template_names() -> list[str]:
    """The names of the templates, each once."""
    query = EmailTemplate.select(EmailTemplate.name).distinct().order_by(EmailTemplate.name)
    return [row.name for row in query]


def template_ids_by_name() -> dict[str, int]:
    """For each template name, the id of one of its rows (to link the editor)."""
    ids: dict[str, int] = {}
    for row in EmailTemplate.select().order_by(EmailTemplate.language):
        ids.setdefault(row.name, row.id)
    return ids


def template_by_id(template_id: int) -> EmailTemplate | None:
    return EmailTemplate.get_or_none(EmailTemplate.id == template_id)


def sample_template(name: str) -> EmailTemplate | None:
    """The template ``name`` (any language), else any template: to preview a signature."""
    return EmailTemplate.get_or_none(EmailTemplate.name == name) or EmailTemplate.select().first()


def all_signatures() -> list[EmailSignature]:
    return list(EmailSignature.select().order_by(EmailSignature.name))


def signature_by_id(signature_id: int) -> EmailSignature | None:
    return EmailSignature.get_or_none(EmailSignature.id == signature_id)
