"""Default email templates and signature that ``ptportal init`` installs.

Staff change them afterwards; ``install_defaults`` never overwrites an
existing template, so running it twice is harmless.
"""

from __future__ import annotations

from markupsafe import escape

from shared.mail.event_templates import EVENT_TEMPLATES
from shared.models import EmailSignature, EmailTemplate

ACTIVATION_TEMPLATE = "Hotfolder Portalzugang"
STAFF_ACTIVATION_TEMPLATE = "Mitarbeiterzugang"
# Sent to the sender of a mail whose attachments the virus scan rejected (once per mail,
# at most once an hour per address: shared.conversations.answers).
ATTACHMENT_REJECTED_TEMPLATE = "Anhang abgewiesen"
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
    "fr": (
        "Votre accès au portail de dépôt de fichiers",
        """Bonjour,

Notre portail de dépôt est désormais à votre disposition pour vos fichiers d'impression.
{% if data_project["project_no"] %}
Commande : {{data_project["project_no"]}}
Intitulé : {{ticketdata_project["job_description"]}}
Échéance : {{ticketdata_project["due_date"]}}
{% endif %}
Votre nom d'utilisateur : {{data_project["portal_client_username"]}}

Veuillez définir votre mot de passe personnel à l'aide de ce lien :
{{data_project["portal_first_activation_link"]}}

Ce lien est valable {{data_project["link_valid_minutes"]}} minutes et ne peut servir qu'une fois.
S'il a expiré, demandez un nouveau lien ici :
{{data_project["portal_activation_link"]}}
""",
    ),
}


_STAFF_ACTIVATION = {
    "de": (
        "Ihr Zugang zum Upload-Portal (Mitarbeiter)",
        """Guten Tag,

für Sie wurde ein Mitarbeiterzugang zum Upload-Portal eingerichtet.
Ihr Benutzername: {{data_project["portal_client_username"]}}

Bitte legen Sie über diesen Link Ihr Passwort fest:
{{data_project["portal_first_activation_link"]}}

Der Link ist {{data_project["link_valid_minutes"]}} Minuten gültig und nur einmal verwendbar.
Ist er abgelaufen, bitten Sie einen Administrator um einen neuen.
""",
    ),
    "en": (
        "Your access to the upload portal (staff)",
        """Hello,

a staff login to the upload portal has been set up for you.
Your username: {{data_project["portal_client_username"]}}

Please choose your password with this link:
{{data_project["portal_first_activation_link"]}}

The link is valid for {{data_project["link_valid_minutes"]}} minutes and works once.
If it has expired, ask an administrator for a new one.
""",
    ),
    "fr": (
        "Votre accès au portail de dépôt de fichiers (collaborateur)",
        """Bonjour,

Un accès collaborateur au portail de dépôt de fichiers a été créé pour vous.
Votre nom d'utilisateur : {{data_project["portal_client_username"]}}

Veuillez définir votre mot de passe à l'aide de ce lien :
{{data_project["portal_first_activation_link"]}}

Ce lien est valable {{data_project["link_valid_minutes"]}} minutes et ne peut servir qu'une fois.
S'il a expiré, demandez-en un nouveau à un administrateur.
""",
    ),
}


_ATTACHMENT_REJECTED = {
    "de": (
        "Anhang nicht angenommen",
        """Guten Tag,

in Ihrer E-Mail hat unsere Virenprüfung Schadsoftware gefunden. Diese Anhänge haben wir
nicht angenommen:

{{data_project["event_list"]}}

Bitte prüfen Sie die Dateien und senden Sie sie erneut, gern auch über das Portal:
{{data_project["upload_link"]}}

Diese Nachricht wurde automatisch erstellt.
""",
    ),
    "en": (
        "Attachment not accepted",
        """Hello,

our virus scan found malware in your mail. We have not accepted these attachments:

{{data_project["event_list"]}}

Please check the files and send them again, or upload them on the portal:
{{data_project["upload_link"]}}

This message was created automatically.
""",
    ),
    "fr": (
        "Pièce jointe refusée",
        """Bonjour,

Notre analyse antivirus a détecté un logiciel malveillant dans votre e-mail. Nous
n'avons pas accepté les pièces jointes suivantes :

{{data_project["event_list"]}}

Veuillez vérifier les fichiers et nous les renvoyer, ou les déposer sur le portail :
{{data_project["upload_link"]}}

Ce message a été généré automatiquement.
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
    "fr": (
        "Votre bon à tirer est attendu",
        """Bonjour,

Une épreuve de votre commande attend votre bon à tirer (BAT) :

{{data_project["event_list"]}}

Commande : {{data_project["project_no"]}}
Intitulé : {{ticketdata_project["job_description"]}}
Échéance : {{ticketdata_project["due_date"]}}

Veuillez examiner les pages, puis donner votre bon à tirer ou refuser l'épreuve en
indiquant ce qui doit être modifié :
{{data_project["proof_link"]}}

Votre nom d'utilisateur : {{data_project["portal_client_username"]}}
""",
    ),
}


def install_defaults(shop_name: str) -> None:
    """Create the default templates and signature where none exist yet."""
    defaults = {
        ACTIVATION_TEMPLATE: _ACTIVATION,
        STAFF_ACTIVATION_TEMPLATE: _STAFF_ACTIVATION,
        ATTACHMENT_REJECTED_TEMPLATE: _ATTACHMENT_REJECTED,
        PROOF_TEMPLATE: _PROOF,
        **EVENT_TEMPLATES,
    }
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
