"""Default email templates and signature that ``ptportal init`` installs.

Staff change them afterwards; ``install_defaults`` never overwrites an
existing template, so running it twice is harmless.
"""

from __future__ import annotations

from markupsafe import escape

from shared.mail.event_templates import EVENT_TEMPLATES
from shared.models import EmailSignature, EmailTemplate

ACTIVATION_TEMPLATE = "Hotfolder Portalzugang"
PROOF_TEMPLATE = "Druckfreigabe angefordert"

_ACTIVATION = {
    "de": (
        "Ihr Zugang zum Upload-Portal",
        """Guten Tag,

für Ihre Druckdaten steht Ihnen ab sofort unser Upload-Portal zur Verfügung.
{% if data_project["project_no"] %}
Auftrag: {{data_project["project_no"]}}
Auftragstext: {{ticketdata_project["job_description"]}}
Termin: {{ticketdata_project["due_date"]}}
{% endif %}
Ihr Benutzername: {{data_project["portal_client_username"]}}

Bitte legen Sie über diesen Link Ihr persönliches Passwort fest:
{{data_project["portal_first_activation_link"]}}

Der Link ist {{data_project["link_valid_minutes"]}} Minuten gültig und nur einmal verwendbar.
Ist er abgelaufen, fordern Sie hier einen neuen Link an:
{{data_project["portal_activation_link"]}}
""",
    ),
    "en": (
        "Your access to the upload portal",
        """Hello,

our upload portal for your print data is now ready for you.
{% if data_project["project_no"] %}
Order: {{data_project["project_no"]}}
Job description: {{ticketdata_project["job_description"]}}
Due date: {{ticketdata_project["due_date"]}}
{% endif %}
Your username: {{data_project["portal_client_username"]}}

Please choose your personal password with this link:
{{data_project["portal_first_activation_link"]}}

The link is valid for {{data_project["link_valid_minutes"]}} minutes and works once.
If it has expired, request a new link here:
{{data_project["portal_activation_link"]}}
""",
    ),
}


_PROOF = {
    "de": (
        "Bitte geben Sie Ihren Druck frei",
        """Guten Tag,

für Ihren Auftrag liegt ein Korrekturabzug zur Druckfreigabe bereit:

{{data_project["event_list"]}}

Auftrag: {{data_project["project_no"]}}
Auftragstext: {{ticketdata_project["job_description"]}}
Termin: {{ticketdata_project["due_date"]}}

Bitte sehen Sie sich die Seiten an und geben Sie den Druck frei oder lehnen Sie ihn
mit einer Anmerkung ab:
{{data_project["proof_link"]}}

Ihr Benutzername: {{data_project["portal_client_username"]}}
""",
    ),
    "en": (
        "Please approve your print job",
        """Hello,

a proof of your order is ready for your approval:

{{data_project["event_list"]}}

Order: {{data_project["project_no"]}}
Job description: {{ticketdata_project["job_description"]}}
Due date: {{ticketdata_project["due_date"]}}

Please look at the pages and approve the print job, or reject it with a comment:
{{data_project["proof_link"]}}

Your username: {{data_project["portal_client_username"]}}
""",
    ),
}


def install_defaults(shop_name: str) -> None:
    """Create the default templates and signature where none exist yet."""
    defaults = {ACTIVATION_TEMPLATE: _ACTIVATION, PROOF_TEMPLATE: _PROOF, **EVENT_TEMPLATES}
    for name, languages in defaults.items():
        for language, (subject, content) in languages.items():
            EmailTemplate.get_or_create(
                name=name,
                language=language,
                defaults={"subject": subject, "content": content},
            )
    if not EmailSignature.select().exists():
        EmailSignature.create(
            name="Standard",
            head_html="",
            foot_html=f"<p>--<br>{escape(shop_name)}</p>",
            head_text="",
            foot_text=f"-- \n{shop_name}",
            status=True,
        )
