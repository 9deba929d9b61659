"""Staff edit templates and signatures: checked before saving, previewed against a real order.

A template is refused (and the problem named next to its field) when it does not
parse, uses a placeholder that does not exist, reaches for attributes, calls
anything or loads other files; only then is it rendered in the sandbox as a
last check. Signature HTML is sanitised on save.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, meta, nodes
from peewee import fn

from shared import audit
from shared.config import Settings
from shared.errors import NotFound
from shared.links import PortalLinks
from shared.mail.html import clean_html
from shared.mail.templates import (
    DATA_PROJECT_KEYS,
    TICKETDATA_PROJECT_KEYS,
    RenderedMail,
    TemplateProblem,
    parse_template,
    render_mail,
    render_part,
    template_context,
)
from shared.models import LANGUAGES, EmailSignature, EmailTemplate, Order, StaffUser
from shared.notify.compose import customer_language, order_values, with_reference

_KEYS = {"data_project": DATA_PROJECT_KEYS, "ticketdata_project": TICKETDATA_PROJECT_KEYS}
_LOADING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
SAMPLE_EVENTS = {
    "de": "- Beispiel.pdf (1,2 MB)",
    "en": "- Example.pdf (1.2 MB)",
    "fr": "- Exemple.pdf (1,2 MB)",
}
SAMPLE_LINK = "(link created when the mail is sent)"
SAMPLE_MESSAGE = {
    "de": "Guten Tag, der Proof ist fertig. Bitte prüfen Sie die Farben.",
    "en": "Hello, the proof is ready. Please check the colours.",
    "fr": "Bonjour, l'épreuve est prête. Veuillez vérifier les couleurs.",
}


@dataclass(frozen=True)
class TemplateDraft:
    """What the template form holds."""

    name: str
    subject: str
    content: str
    language: str
    owner_id: int | None = None


def problem_in(source: str, part: str) -> str:
    """Why ``source`` cannot be a template part, or "" when it is fine."""
    try:
        tree = parse_template(source)
    except TemplateSyntaxError as exc:
        return f"syntax error in line {exc.lineno}: {exc.message}"
    if any(True for _ in tree.find_all(_LOADING)):
        return "a template cannot load other templates or files"
    if any(True for _ in tree.find_all(nodes.Call)):
        return "calling functions or methods is not allowed"
    unknown = sorted(meta.find_undeclared_variables(tree) - set(_KEYS))
    if unknown:
        return f"unknown placeholder: {unknown[0]}"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(key, str) and key.startswith("_"):
            return f"access to {key!r} is not allowed"
        base = node.node.name if isinstance(node.node, nodes.Name) else ""
        if base in _KEYS and key not in _KEYS[base]:
            return f'unknown placeholder: {base}["{key}"]'
    sample = template_context(**{key: "x" for keys in _KEYS.values() for key in keys})
    try:
        render_part(source, sample, "draft", part)
    except TemplateProblem as exc:
        return str(exc).partition("cannot be rendered: ")[2] or str(exc)
    return ""


def check_template(draft: TemplateDraft) -> dict[str, str]:
    """Problems per form field; empty when the draft may be saved."""
    problems = {}
    if not draft.name.strip():
        problems["name"] = "a name is required"
    if draft.language not in LANGUAGES:
        problems["language"] = "one of " + ", ".join(LANGUAGES)
    for part in ("subject", "content"):
        problem = problem_in(getattr(draft, part), part)
        if problem:
            problems[part] = problem
    if draft.owner_id is not None and StaffUser.get_or_none(StaffUser.id == draft.owner_id) is None:
        problems["owner"] = "no such staff user"
    return problems


def save_template(template_id: int | None, draft: TemplateDraft) -> tuple[EmailTemplate, dict]:
    """Store a checked draft; returns the template and the problems (nothing stored if any)."""
    template = EmailTemplate() if template_id is None else _template(template_id)
    problems = check_template(draft)
    clash = EmailTemplate.get_or_none(
        (fn.LOWER(EmailTemplate.name) == draft.name.strip().lower())
        & (EmailTemplate.language == draft.language)
    )
    if clash is not None and clash.id != template.id:
        problems.setdefault("name", "a template with this name and language exists already")
    if problems:
        return template, problems
    template.name = draft.name.strip()
    template.subject = draft.subject
    template.content = draft.content
    template.language = draft.language
    template.owner = draft.owner_id
    created = template.id is None
    template.save()
    audit.record(
        audit.TEMPLATE_SAVE,
        f"template {template.name} ({template.language})",
        "created" if created else "changed",
    )
    return template, {}


def _template(template_id: int) -> EmailTemplate:
    template = EmailTemplate.get_or_none(EmailTemplate.id == template_id)
    if template is None:
        raise NotFound("this template does not exist")
    return template


def preview_context(
    settings: Settings, links: PortalLinks, order: Order | None, language: str
) -> dict:
    """Placeholders as a mail about ``order`` would fill them (links to be made: a note)."""
    customer = order.customer if order else None
    values = order_values(links, order, customer, language)
    values.update(
        portal_first_activation_link=SAMPLE_LINK,
        link_valid_minutes=str(settings.portal.activation_link_minutes),
        event_list=SAMPLE_EVENTS.get(language, SAMPLE_EVENTS["de"]),
        event_count="1",
        message_text=SAMPLE_MESSAGE.get(language, SAMPLE_MESSAGE["de"]),
        message_author="Anna Muster",
    )
    return template_context(**values)


def preview(
    settings: Settings,
    links: PortalLinks,
    draft: TemplateDraft,
    order: Order | None,
    signature: EmailSignature | None,
) -> tuple[RenderedMail | None, dict[str, str]]:
    """The mail ``draft`` would make for ``order`` (as its customer gets it), or the problems."""
    problems = check_template(draft)
    if problems:
        return None, problems
    template = EmailTemplate(name=draft.name, subject=draft.subject, content=draft.content)
    language = draft.language or (customer_language(order.customer) if order else "de")
    try:
        context = preview_context(settings, links, order, language)
        mail = render_mail(template, signature, context)
    except TemplateProblem as exc:
        return None, {"content": str(exc)}
    if order is not None:
        mail = with_reference(mail, order.project_no, language)
    return mail, {}


@dataclass(frozen=True)
class SignatureDraft:
    """What the signature form holds; HTML parts are sanitised when stored."""

    name: str
    head_html: str
    foot_html: str
    head_text: str
    foot_text: str
    status: bool

    def cleaned(self) -> SignatureDraft:
        return SignatureDraft(
            self.name.strip(),
            clean_html(self.head_html),
            clean_html(self.foot_html),
            self.head_text,
            self.foot_text,
            self.status,
        )


def save_signature(signature_id: int | None, draft: SignatureDraft) -> tuple[EmailSignature, dict]:
    """Store a sanitised signature; switching one on switches the others off."""
    signature = EmailSignature() if signature_id is None else _signature(signature_id)
    draft = draft.cleaned()
    if not draft.name:
        return signature, {"name": "a name is required"}
    clash = EmailSignature.get_or_none(EmailSignature.name == draft.name)
    if clash is not None and clash.id != signature.id:
        return signature, {"name": "a signature with this name exists already"}
    for field in ("name", "head_html", "foot_html", "head_text", "foot_text", "status"):
        setattr(signature, field, getattr(draft, field))
    created = signature.id is None
    signature.save()
    audit.record(
        audit.SIGNATURE_SAVE,
        f"signature {signature.name}",
        ("created" if created else "changed") + (", switched on" if draft.status else ""),
    )
    if draft.status:
        # One signature frames every mail: the others step back.
        EmailSignature.update(status=False).where(EmailSignature.id != signature.id).execute()
    return signature, {}


def _signature(signature_id: int) -> EmailSignature:
    signature = EmailSignature.get_or_none(EmailSignature.id == signature_id)
    if signature is None:
        raise NotFound("this signature does not exist")
    return signature
