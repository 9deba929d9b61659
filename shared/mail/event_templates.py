"""Default templates of the notification events and the digest, in German, English and French.

Each text uses the seed's placeholders, ``upload_link`` (the order's page),
``event_list`` (one line per batched event) and, for conversation messages,
``message_text`` and ``message_author``. ``install_defaults`` creates a row
only where the name and language are missing, so staff edits survive.
"""

from __future__ import annotations

_ORDER_DE = """{% if data_project["project_no"] %}Auftrag: {{data_project["project_no"]}}
Auftragstext: {{ticketdata_project["job_description"]}}
Termin: {{ticketdata_project["due_date"]}}
{% endif %}"""
_ORDER_EN = """{% if data_project["project_no"] %}Order: {{data_project["project_no"]}}
Job description: {{ticketdata_project["job_description"]}}
Due date: {{ticketdata_project["due_date"]}}
{% endif %}"""
_ORDER_FR = """{% if data_project["project_no"] %}Commande : {{data_project["project_no"]}}
Intitulé : {{ticketdata_project["job_description"]}}
Échéance : {{ticketdata_project["due_date"]}}
{% endif %}"""

# name -> {language: (subject, content)}
EVENT_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "Portalzugang angelegt": {
        "de": (
            'Portalzugang für {{data_project["customer_name"]}} angelegt',
            """Guten Tag,

für {{data_project["customer_name"]}} wurde der Portalzugang angelegt und der
Aktivierungslink verschickt.
Benutzername: {{data_project["portal_client_username"]}}
"""
            + _ORDER_DE
            + """
{{data_project["event_list"]}}
""",
        ),
        "en": (
            'Portal login created for {{data_project["customer_name"]}}',
            """Hello,

the portal login for {{data_project["customer_name"]}} has been created and the
activation link has been sent.
Username: {{data_project["portal_client_username"]}}
"""
            + _ORDER_EN
            + """
{{data_project["event_list"]}}
""",
        ),
        "fr": (
            'Accès au portail créé pour {{data_project["customer_name"]}}',
            """Bonjour,

L'accès au portail de {{data_project["customer_name"]}} a été créé et le lien
d'activation a été envoyé.
Nom d'utilisateur : {{data_project["portal_client_username"]}}
"""
            + _ORDER_FR
            + """
{{data_project["event_list"]}}
""",
        ),
    },
    "Neuer Aktivierungslink angefordert": {
        "de": (
            'Neuer Aktivierungslink für {{data_project["customer_name"]}}',
            """Guten Tag,

{{data_project["customer_name"]}} (Benutzername
{{data_project["portal_client_username"]}}) hat einen neuen Aktivierungslink angefordert.
Er wurde an die hinterlegte Adresse verschickt.

{{data_project["event_list"]}}
""",
        ),
        "en": (
            'New activation link for {{data_project["customer_name"]}}',
            """Hello,

{{data_project["customer_name"]}} (username
{{data_project["portal_client_username"]}}) asked for a new activation link.
It has been sent to the stored address.

{{data_project["event_list"]}}
""",
        ),
        "fr": (
            'Nouveau lien d\'activation pour {{data_project["customer_name"]}}',
            """Bonjour,

{{data_project["customer_name"]}} (nom d'utilisateur
{{data_project["portal_client_username"]}}) a demandé un nouveau lien d'activation.
Il a été envoyé à l'adresse enregistrée.

{{data_project["event_list"]}}
""",
        ),
    },
    "Passwort gesetzt": {
        "de": (
            'Portalzugang von {{data_project["customer_name"]}} aktiviert',
            """Guten Tag,

{{data_project["customer_name"]}} hat ein Passwort für den Portalzugang
{{data_project["portal_client_username"]}} festgelegt und kann jetzt Druckdaten hochladen.

{{data_project["event_list"]}}
""",
        ),
        "en": (
            'Portal login of {{data_project["customer_name"]}} activated',
            """Hello,

{{data_project["customer_name"]}} has chosen a password for the portal login
{{data_project["portal_client_username"]}} and can upload print data now.

{{data_project["event_list"]}}
""",
        ),
        "fr": (
            'Accès au portail de {{data_project["customer_name"]}} activé',
            """Bonjour,

{{data_project["customer_name"]}} a défini un mot de passe pour l'accès au portail
{{data_project["portal_client_username"]}} et peut désormais déposer des fichiers
d'impression.

{{data_project["event_list"]}}
""",
        ),
    },
    "Upload eingegangen": {
        "de": (
            'Druckdaten eingegangen: {{data_project["event_count"]}} Datei(en)',
            """Guten Tag,

für den folgenden Auftrag sind Druckdaten eingegangen und virengeprüft:

"""
            + _ORDER_DE
            + """Kunde: {{data_project["customer_name"]}}

{{data_project["event_list"]}}

Zum Auftrag: {{data_project["upload_link"]}}
""",
        ),
        "en": (
            'Print data received: {{data_project["event_count"]}} file(s)',
            """Hello,

print data has been received and virus-checked for this order:

"""
            + _ORDER_EN
            + """Customer: {{data_project["customer_name"]}}

{{data_project["event_list"]}}

Open the order: {{data_project["upload_link"]}}
""",
        ),
        "fr": (
            'Fichiers d\'impression reçus : {{data_project["event_count"]}} fichier(s)',
            """Bonjour,

Des fichiers d'impression ont été reçus pour la commande suivante et ont passé
l'analyse antivirus :

"""
            + _ORDER_FR
            + """Client : {{data_project["customer_name"]}}

{{data_project["event_list"]}}

Voir la commande : {{data_project["upload_link"]}}
""",
        ),
    },
    "Datei abgelehnt": {
        "de": (
            "Datei bei der Virenprüfung abgelehnt",
            """Guten Tag,

die folgende(n) Datei(en) wurde(n) bei der Virenprüfung abgelehnt und nicht
weitergegeben:

{{data_project["event_list"]}}

"""
            + _ORDER_DE
            + """
Bitte prüfen Sie die Datei und laden Sie sie erneut hoch:
{{data_project["upload_link"]}}
""",
        ),
        "en": (
            "File rejected by the virus scan",
            """Hello,

the following file(s) were rejected by the virus scan and not passed on:

{{data_project["event_list"]}}

"""
            + _ORDER_EN
            + """
Please check the file and upload it again:
{{data_project["upload_link"]}}
""",
        ),
        "fr": (
            "Fichier refusé par l'analyse antivirus",
            """Bonjour,

Le ou les fichiers suivants ont été refusés par l'analyse antivirus et n'ont pas
été transmis :

{{data_project["event_list"]}}

"""
            + _ORDER_FR
            + """
Veuillez vérifier le fichier et le déposer à nouveau :
{{data_project["upload_link"]}}
""",
        ),
    },
    "Dateien an Hotfolder übergeben": {
        "de": (
            'Druckdaten im Hotfolder: {{data_project["event_count"]}} Datei(en)',
            """Guten Tag,

die folgenden Druckdaten wurden in den Hotfolder des Auftrags übergeben:

{{data_project["event_list"]}}

"""
            + _ORDER_DE
            + """Kunde: {{data_project["customer_name"]}}
Zum Auftrag: {{data_project["upload_link"]}}
""",
        ),
        "en": (
            'Print data in the hotfolder: {{data_project["event_count"]}} file(s)',
            """Hello,

the following print data has been delivered to the order's hotfolder:

{{data_project["event_list"]}}

"""
            + _ORDER_EN
            + """Customer: {{data_project["customer_name"]}}
Open the order: {{data_project["upload_link"]}}
""",
        ),
        "fr": (
            'Fichiers d\'impression dans le hotfolder : {{data_project["event_count"]}} fichier(s)',
            """Bonjour,

Les fichiers d'impression suivants ont été transmis au hotfolder de la commande :

{{data_project["event_list"]}}

"""
            + _ORDER_FR
            + """Client : {{data_project["customer_name"]}}
Voir la commande : {{data_project["upload_link"]}}
""",
        ),
    },
    "Datei in Final bereitgestellt": {
        "de": (
            "Ihre Dateien stehen bereit",
            """Guten Tag,

für Ihren Auftrag stehen neue Dateien im Ordner „Final“ zum Herunterladen bereit:

{{data_project["event_list"]}}

"""
            + _ORDER_DE
            + """
Zum Auftrag: {{data_project["upload_link"]}}
""",
        ),
        "en": (
            "Your files are ready",
            """Hello,

new files are ready for download in the "Final" folder of your order:

{{data_project["event_list"]}}

"""
            + _ORDER_EN
            + """
Open the order: {{data_project["upload_link"]}}
""",
        ),
        "fr": (
            "Vos fichiers sont disponibles",
            """Bonjour,

De nouveaux fichiers de votre commande sont disponibles au téléchargement dans le
dossier « Final » :

{{data_project["event_list"]}}

"""
            + _ORDER_FR
            + """
Voir la commande : {{data_project["upload_link"]}}
""",
        ),
    },
    "Upload-Aufforderung": {
        "de": (
            'Bitte Druckdaten hochladen{% if ticketdata_project["job_description"] %}: '
            '{{ticketdata_project["job_description"]}}{% endif %}',
            """Guten Tag,

für den folgenden Auftrag benötigen wir Ihre Druckdaten:

"""
            + _ORDER_DE
            + """{{data_project["event_list"]}}

Bitte laden Sie die Daten hier hoch:
{{data_project["upload_link"]}}

Ihr Benutzername: {{data_project["portal_client_username"]}}
Noch kein Passwort oder vergessen? Einen neuen Link erhalten Sie hier:
{{data_project["portal_activation_link"]}}
""",
        ),
        "en": (
            'Please upload your print data{% if ticketdata_project["job_description"] %}: '
            '{{ticketdata_project["job_description"]}}{% endif %}',
            """Hello,

we need your print data for the following order:

"""
            + _ORDER_EN
            + """{{data_project["event_list"]}}

Please upload it here:
{{data_project["upload_link"]}}

Your username: {{data_project["portal_client_username"]}}
No password yet, or forgotten? Get a new link here:
{{data_project["portal_activation_link"]}}
""",
        ),
        "fr": (
            "Merci de déposer vos fichiers d'impression"
            '{% if ticketdata_project["job_description"] %} : '
            '{{ticketdata_project["job_description"]}}{% endif %}',
            """Bonjour,

Pour la commande suivante, nous avons besoin de vos fichiers d'impression :

"""
            + _ORDER_FR
            + """{{data_project["event_list"]}}

Veuillez les déposer ici :
{{data_project["upload_link"]}}

Votre nom d'utilisateur : {{data_project["portal_client_username"]}}
Pas encore de mot de passe, ou mot de passe oublié ? Demandez un nouveau lien ici :
{{data_project["portal_activation_link"]}}
""",
        ),
    },
    "Terminwarnung": {
        "de": (
            'Aufträge warten auf Druckdaten ({{data_project["event_count"]}})',
            """Guten Tag,

folgende Aufträge warten noch auf Druckdaten oder brauchen Aufmerksamkeit:

{{data_project["event_list"]}}
""",
        ),
        "en": (
            'Orders waiting for print data ({{data_project["event_count"]}})',
            """Hello,

the following orders are still waiting for print data or need attention:

{{data_project["event_list"]}}
""",
        ),
        "fr": (
            'Commandes en attente de fichiers d\'impression ({{data_project["event_count"]}})',
            """Bonjour,

Les commandes suivantes attendent encore des fichiers d'impression ou demandent votre
attention :

{{data_project["event_list"]}}
""",
        ),
    },
    "Aktivierungslink nicht zustellbar": {
        "de": (
            'Aktivierungslink für {{data_project["customer_name"]}} nicht zustellbar',
            """Guten Tag,

{{data_project["customer_name"]}} (Benutzername
{{data_project["portal_client_username"]}}) hat im Portal einen neuen Aktivierungslink
angefordert. Es ist aber keine nutzbare E-Mail-Adresse hinterlegt (keine Adresse, oder
alle stehen auf der Bounce-Liste). Bitte hinterlegen Sie eine Adresse und schicken Sie
den Link aus dem Portal erneut.

{{data_project["event_list"]}}
""",
        ),
        "en": (
            'Activation link for {{data_project["customer_name"]}} cannot be delivered',
            """Hello,

{{data_project["customer_name"]}} (username {{data_project["portal_client_username"]}})
asked for a new activation link on the portal, but no usable email address is stored
(none at all, or all of them on the bounce list). Please add an address and send the
link again from the portal.

{{data_project["event_list"]}}
""",
        ),
        "fr": (
            'Lien d\'activation pour {{data_project["customer_name"]}} impossible à remettre',
            """Bonjour,

{{data_project["customer_name"]}} (nom d'utilisateur {{data_project["portal_client_username"]}})
a demandé un nouveau lien d'activation sur le portail, mais aucune adresse e-mail
utilisable n'est enregistrée (aucune adresse, ou toutes figurent sur la liste des
adresses en échec). Veuillez enregistrer une adresse et renvoyer le lien depuis le
portail.

{{data_project["event_list"]}}
""",
        ),
    },
    "Neue Nachricht vom Kunden": {
        "de": (
            'Neue Nachricht von {{data_project["customer_name"]}}',
            """Guten Tag,

{{data_project["customer_name"]}} hat geschrieben:

{{data_project["event_list"]}}

"""
            + _ORDER_DE
            + """
Zur Unterhaltung im Portal:
{{data_project["upload_link"]}}
""",
        ),
        "en": (
            'New message from {{data_project["customer_name"]}}',
            """Hello,

{{data_project["customer_name"]}} has written:

{{data_project["event_list"]}}

"""
            + _ORDER_EN
            + """
The conversation on the portal:
{{data_project["upload_link"]}}
""",
        ),
        "fr": (
            'Nouveau message de {{data_project["customer_name"]}}',
            """Bonjour,

{{data_project["customer_name"]}} a écrit :

{{data_project["event_list"]}}

"""
            + _ORDER_FR
            + """
L'échange sur le portail :
{{data_project["upload_link"]}}
""",
        ),
    },
    "Nachricht zum Auftrag": {
        "de": (
            'Nachricht zu Ihrem Auftrag {{data_project["project_no"]}}',
            """{{data_project["message_text"]}}

{{data_project["message_author"]}}

Sie können direkt auf diese E-Mail antworten oder im Portal schreiben:
{{data_project["upload_link"]}}
""",
        ),
        "en": (
            'Message about your order {{data_project["project_no"]}}',
            """{{data_project["message_text"]}}

{{data_project["message_author"]}}

Simply reply to this mail, or write to us on the portal:
{{data_project["upload_link"]}}
""",
        ),
        "fr": (
            'Message concernant votre commande {{data_project["project_no"]}}',
            """{{data_project["message_text"]}}

{{data_project["message_author"]}}

Vous pouvez répondre directement à cet e-mail ou nous écrire sur le portail :
{{data_project["upload_link"]}}
""",
        ),
    },
    "Druckfreigabe entschieden": {
        "de": (
            "Druckfreigabe entschieden",
            """Guten Tag,

der Kunde hat über die Druckfreigabe entschieden:

{{data_project["event_list"]}}

"""
            + _ORDER_DE
            + """Kunde: {{data_project["customer_name"]}}
Zum Auftrag: {{data_project["upload_link"]}}
""",
        ),
        "en": (
            "Proof approval decided",
            """Hello,

the customer has decided on the proof:

{{data_project["event_list"]}}

"""
            + _ORDER_EN
            + """Customer: {{data_project["customer_name"]}}
Open the order: {{data_project["upload_link"]}}
""",
        ),
        "fr": (
            "Bon à tirer : décision du client",
            """Bonjour,

Le client a pris sa décision sur l'épreuve :

{{data_project["event_list"]}}

"""
            + _ORDER_FR
            + """Client : {{data_project["customer_name"]}}
Voir la commande : {{data_project["upload_link"]}}
""",
        ),
    },
}
