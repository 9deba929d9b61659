"""Findings in plain words for customers and staff: German first, English, French.

``describe(finding, language)`` picks the sentence for the finding's code (or, where the
params carry a ``kind`` or ``type`` the catalogue has a sentence for, ``code.kind``) and
fills in its params with Python format fields. Numbers follow the language's conventions
through Babel: sizes in mm with one decimal ("3,0 mm" in German and French, "3.0 mm" in
English). An unknown language gets German; an unknown code or missing param gets a
neutral sentence naming the code, never an exception.
"""

from __future__ import annotations

import logging
from typing import Any

from babel.numbers import format_decimal

from shared.files.findings import Finding

logger = logging.getLogger(__name__)

LANGUAGES = ("de", "en", "fr")
PRIMARY_LANGUAGE = "de"

_TYPE_LABELS = {
    "pdf": "PDF",
    "tiff": "TIFF",
    "jpeg": "JPEG",
    "png": "PNG",
    "eps": "EPS",
    "ai": "Illustrator (AI)",
    "zip": "ZIP",
    "ps": "PostScript",
    "psd": "Photoshop (PSD)",
    "gif": "GIF",
    "bmp": "BMP",
    "webp": "WebP",
    "indd": "InDesign (INDD)",
    "office": {"de": "Office-Dokument", "en": "Office document", "fr": "document Office"},
    "program": {"de": "Programm", "en": "program", "fr": "programme"},
    "archive": {"de": "Archiv", "en": "archive", "fr": "archive"},
}

_PAGES = {
    "de": ("Seite {}", "Seiten {}"),
    "en": ("page {}", "pages {}"),
    "fr": ("page {}", "pages {}"),
}

_FALLBACK = {
    "de": "Prüfhinweis: {code}",
    "en": "Check result: {code}",
    "fr": "Résultat du contrôle : {code}",
}

# code (or code.kind / code.type) → language → sentence
CATALOGUE: dict[str, dict[str, str]] = {
    # --- file types and ZIP ------------------------------------------------------------
    "file_type_unknown": {
        "de": "Dieser Dateityp wird nicht erkannt. Erlaubt sind: {allowed}.",
        "en": "This file type is not recognised. Accepted are: {allowed}.",
        "fr": "Ce type de fichier n'est pas reconnu. Types acceptés : {allowed}.",
    },
    "file_type_not_accepted": {
        "de": "Dateien vom Typ {type} werden nicht angenommen. Erlaubt sind: {allowed}.",
        "en": "{type} files are not accepted. Accepted are: {allowed}.",
        "fr": "Les fichiers de type {type} ne sont pas acceptés. Types acceptés : {allowed}.",
    },
    "file_type_not_accepted.indd": {
        "de": "InDesign-Dokumente bitte verpackt als ZIP senden (InDesign: Datei > Verpacken, "
        "dann den Ordner als ZIP). Erlaubt sind: {allowed}.",
        "en": "Please send InDesign documents packaged as a ZIP (InDesign: File > Package, "
        "then zip the folder). Accepted are: {allowed}.",
        "fr": "Veuillez envoyer les documents InDesign assemblés dans un ZIP (InDesign : "
        "Fichier > Assembler, puis compresser le dossier). Types acceptés : {allowed}.",
    },
    "zip_damaged": {
        "de": "Das ZIP-Archiv ist beschädigt und kann nicht gelesen werden.",
        "en": "The ZIP archive is damaged and cannot be read.",
        "fr": "L'archive ZIP est endommagée et ne peut pas être lue.",
    },
    "zip_inconsistent": {
        "de": "Das ZIP-Archiv ist fehlerhaft aufgebaut (Inhaltsverzeichnis und Inhalt passen "
        "nicht zusammen) und wird abgelehnt.",
        "en": "The ZIP archive is malformed (its directory does not match its contents) and "
        "is refused.",
        "fr": "L'archive ZIP est mal formée (son répertoire ne correspond pas à son contenu) "
        "et elle est refusée.",
    },
    "zip_too_many_entries": {
        "de": "Das ZIP-Archiv enthält {entries} Einträge; erlaubt sind höchstens {max_entries}.",
        "en": "The ZIP archive holds {entries} entries; at most {max_entries} are allowed.",
        "fr": "L'archive ZIP contient {entries} éléments ; {max_entries} au plus sont admis.",
    },
    "zip_too_large": {
        "de": "Das ZIP-Archiv wäre entpackt {size} groß; erlaubt sind höchstens {max_size}.",
        "en": "The ZIP archive would unpack to {size}; at most {max_size} are allowed.",
        "fr": "L'archive ZIP décompressée ferait {size} ; {max_size} au plus sont admis.",
    },
    "zip_ratio": {
        "de": "Das ZIP-Archiv ist ungewöhnlich stark komprimiert (1:{ratio}, erlaubt bis "
        "1:{max_ratio}) und wird als mögliche ZIP-Bombe abgelehnt.",
        "en": "The ZIP archive is compressed unusually far (1:{ratio}, at most 1:{max_ratio}) "
        "and is refused as a possible ZIP bomb.",
        "fr": "L'archive ZIP est compressée de façon inhabituelle (1:{ratio}, au plus "
        "1:{max_ratio}) et elle est refusée comme bombe ZIP possible.",
    },
    "zip_nested": {
        "de": "Das ZIP-Archiv enthält {count} weitere Archive; erlaubt sind höchstens "
        "{max_count}. Bitte die Dateien direkt in ein ZIP packen.",
        "en": "The ZIP archive holds {count} further archives; at most {max_count} are "
        "allowed. Please put the files into one ZIP directly.",
        "fr": "L'archive ZIP contient {count} autres archives ; {max_count} au plus sont "
        "admises. Veuillez mettre les fichiers directement dans un seul ZIP.",
    },
    # --- the preflight itself --------------------------------------------------------------
    "preflight_failed": {
        "de": "Die automatische Prüfung konnte nicht abgeschlossen werden. Die Druckvorstufe "
        "sieht sich die Datei an.",
        "en": "The automatic check could not be completed. Prepress will look at the file.",
        "fr": "Le contrôle automatique n'a pas pu aboutir. Le prépresse examinera le fichier.",
    },
    "preflight_failed.timeout": {
        "de": "Die automatische Prüfung hat zu lange gedauert und wurde abgebrochen. Die "
        "Druckvorstufe sieht sich die Datei an.",
        "en": "The automatic check took too long and was stopped. Prepress will look at the file.",
        "fr": "Le contrôle automatique a duré trop longtemps et a été interrompu. Le prépresse "
        "examinera le fichier.",
    },
    "preflight_failed.cpu_limit": {
        "de": "Die automatische Prüfung hat zu viel Rechenzeit gebraucht und wurde abgebrochen. "
        "Die Druckvorstufe sieht sich die Datei an.",
        "en": "The automatic check needed too much computing time and was stopped. Prepress "
        "will look at the file.",
        "fr": "Le contrôle automatique a demandé trop de temps de calcul et a été interrompu. "
        "Le prépresse examinera le fichier.",
    },
    "preflight_failed.memory_limit": {
        "de": "Die automatische Prüfung hat zu viel Speicher gebraucht und wurde abgebrochen. "
        "Die Druckvorstufe sieht sich die Datei an.",
        "en": "The automatic check needed too much memory and was stopped. Prepress will look "
        "at the file.",
        "fr": "Le contrôle automatique a demandé trop de mémoire et a été interrompu. Le "
        "prépresse examinera le fichier.",
    },
    "preflight_failed.too_many_pages": {
        "de": "Die Datei hat {pages} Seiten, automatisch geprüft werden höchstens {max_pages}. "
        "Die Druckvorstufe sieht sich die Datei an.",
        "en": "The file has {pages} pages; at most {max_pages} are checked automatically. "
        "Prepress will look at the file.",
        "fr": "Le fichier a {pages} pages ; {max_pages} au plus sont contrôlées "
        "automatiquement. Le prépresse examinera le fichier.",
    },
    "not_checked": {
        "de": "Dateien vom Typ {type} werden nicht automatisch geprüft; die Druckvorstufe "
        "prüft sie.",
        "en": "{type} files are not checked automatically; prepress checks them.",
        "fr": "Les fichiers de type {type} ne sont pas contrôlés automatiquement ; le "
        "prépresse les vérifie.",
    },
    "preview_skipped": {
        "de": "Für diese Datei wurde keine Vorschau erstellt.",
        "en": "No preview was made for this file.",
        "fr": "Aucun aperçu n'a été créé pour ce fichier.",
    },
    # --- document ---------------------------------------------------------------------------
    "no_pages": {
        "de": "Die PDF-Datei enthält keine Seiten.",
        "en": "The PDF file has no pages.",
        "fr": "Le fichier PDF ne contient aucune page.",
    },
    "damaged": {
        "de": "Die Datei ist beschädigt.",
        "en": "The file is damaged.",
        "fr": "Le fichier est endommagé.",
    },
    "damaged.repaired": {
        "de": "Die PDF-Datei war beschädigt und wurde beim Lesen repariert. Bitte exportieren "
        "Sie sie neu, damit sicher ist, dass alles so gedruckt wird wie gedacht.",
        "en": "The PDF file was damaged and was repaired when read. Please export it again to "
        "be sure it prints as intended.",
        "fr": "Le fichier PDF était endommagé et a été réparé à la lecture. Veuillez "
        "l'exporter à nouveau pour qu'il s'imprime comme prévu.",
    },
    "damaged.unreadable": {
        "de": "Die Datei ist beschädigt und kann nicht gelesen werden. Bitte exportieren Sie "
        "sie neu.",
        "en": "The file is damaged and cannot be read. Please export it again.",
        "fr": "Le fichier est endommagé et ne peut pas être lu. Veuillez l'exporter à nouveau.",
    },
    "damaged.page_content": {
        "de": "Der Inhalt von {pages_text} kann nicht gelesen werden. Bitte exportieren Sie die "
        "Datei neu.",
        "en": "The content of {pages_text} cannot be read. Please export the file again.",
        "fr": "Le contenu ne peut pas être lu ({pages_text}). Veuillez exporter le fichier "
        "à nouveau.",
    },
    "damaged.stream_data": {
        "de": "Teile der Datei (etwa Schriften oder Farbprofile) sind beschädigt und können "
        "nicht gelesen werden. Bitte exportieren Sie die Datei neu.",
        "en": "Parts of the file (such as fonts or colour profiles) are damaged and cannot be "
        "read. Please export the file again.",
        "fr": "Des parties du fichier (polices ou profils de couleur, par exemple) sont "
        "endommagées et ne peuvent pas être lues. Veuillez exporter le fichier à nouveau.",
    },
    "encrypted.password": {
        "de": "Die PDF-Datei ist mit einem Kennwort geschützt und kann nicht geöffnet werden. "
        "Bitte senden Sie sie ohne Kennwortschutz.",
        "en": "The PDF file is protected by a password and cannot be opened. Please send it "
        "without password protection.",
        "fr": "Le fichier PDF est protégé par un mot de passe et ne peut pas être ouvert. "
        "Veuillez l'envoyer sans protection.",
    },
    "encrypted.no_printing": {
        "de": "Die PDF-Datei ist verschlüsselt und ihre Rechte verbieten den Druck in hoher "
        "Qualität. Bitte senden Sie sie ohne Schutz.",
        "en": "The PDF file is encrypted and its permissions forbid high-quality printing. "
        "Please send it without protection.",
        "fr": "Le fichier PDF est chiffré et ses droits interdisent l'impression en haute "
        "qualité. Veuillez l'envoyer sans protection.",
    },
    "encrypted.restrictions": {
        "de": "Die PDF-Datei ist verschlüsselt und schränkt die Bearbeitung ein. Bitte senden "
        "Sie sie ohne Schutz, damit die Druckvorstufe sie bearbeiten kann.",
        "en": "The PDF file is encrypted and restricts editing. Please send it without "
        "protection so that prepress can work on it.",
        "fr": "Le fichier PDF est chiffré et limite les modifications. Veuillez l'envoyer sans "
        "protection afin que le prépresse puisse le traiter.",
    },
    "javascript": {
        "de": "Die PDF-Datei enthält JavaScript. Es wird beim Druck nicht ausgeführt: was es am "
        "Bildschirm zeigt oder ändert, erscheint nicht im Druck.",
        "en": "The PDF file contains JavaScript. It does not run when printing: whatever it "
        "shows or changes on screen will not be printed.",
        "fr": "Le fichier PDF contient du JavaScript. Il n'est pas exécuté à l'impression : ce "
        "qu'il affiche ou modifie à l'écran ne sera pas imprimé.",
    },
    "pdfx_output_intent": {
        "de": "Die Datei ist als {pdfx} angelegt, Ausgabebedingung: {condition}.",
        "en": "The file is made as {pdfx}, output condition: {condition}.",
        "fr": "Le fichier est conçu en {pdfx}, condition de sortie : {condition}.",
    },
    "no_output_intent": {
        "de": "Die Datei hat keine PDF/X-Ausgabebedingung (Output Intent).",
        "en": "The file has no PDF/X output condition (output intent).",
        "fr": "Le fichier n'a pas de condition de sortie PDF/X (output intent).",
    },
    # --- pages ------------------------------------------------------------------------------
    "page_box_invalid": {
        "de": "Das Seitenformat (MediaBox) von {pages_text} ist ungültig.",
        "en": "The page size (MediaBox) of {pages_text} is invalid.",
        "fr": "Le format de page (MediaBox) n'est pas valide ({pages_text}).",
    },
    "trim_box_missing": {
        "de": "Kein Endformat (TrimBox) angegeben auf {pages_text}; das Seitenformat gilt als "
        "Endformat.",
        "en": "No trim size (TrimBox) set on {pages_text}; the page size counts as the trim size.",
        "fr": "Aucun format fini (TrimBox) n'est indiqué ({pages_text}) ; le format de page "
        "sert de format fini.",
    },
    "bleed_missing": {
        "de": "Kein Beschnitt auf {pages_text}. Bitte legen Sie an jeder Seite mindestens "
        "{min_bleed_mm} mm Beschnitt an.",
        "en": "No bleed on {pages_text}. Please add at least {min_bleed_mm} mm of bleed on "
        "every side.",
        "fr": "Pas de fond perdu ({pages_text}). Veuillez prévoir au moins {min_bleed_mm} mm "
        "de fond perdu de chaque côté.",
    },
    "bleed_too_small": {
        "de": "Zu wenig Beschnitt auf {pages_text}: {bleed_mm} mm, nötig sind an jeder Seite "
        "mindestens {min_bleed_mm} mm.",
        "en": "Too little bleed on {pages_text}: {bleed_mm} mm, at least {min_bleed_mm} mm "
        "are needed on every side.",
        "fr": "Fond perdu insuffisant ({pages_text}) : {bleed_mm} mm, il faut au moins "
        "{min_bleed_mm} mm de chaque côté.",
    },
    "trim_size_mismatch": {
        "de": "Das Endformat {found_mm} mm auf {pages_text} weicht vom bestellten Format "
        "{expected_mm} mm ab.",
        "en": "The trim size {found_mm} mm on {pages_text} differs from the ordered size "
        "{expected_mm} mm.",
        "fr": "Le format fini {found_mm} mm ({pages_text}) diffère du format commandé "
        "{expected_mm} mm.",
    },
    "page_count_mismatch": {
        "de": "Die Datei hat {found} Seiten, bestellt sind {expected}.",
        "en": "The file has {found} pages; {expected} were ordered.",
        "fr": "Le fichier a {found} pages ; {expected} ont été commandées.",
    },
    # --- content ----------------------------------------------------------------------------
    "font_not_embedded": {
        "de": "Nicht eingebettete Schriften auf {pages_text}: {fonts}. Bitte betten Sie beim "
        "PDF-Export alle Schriften ein.",
        "en": "Fonts not embedded on {pages_text}: {fonts}. Please embed all fonts when "
        "exporting the PDF.",
        "fr": "Polices non incorporées ({pages_text}) : {fonts}. Veuillez incorporer toutes "
        "les polices lors de l'export PDF.",
    },
    "image_low_resolution": {
        "de": "Zu geringe Bildauflösung auf {pages_text}: {ppi} ppi in der platzierten Größe, "
        "empfohlen sind mindestens {min_ppi} ppi. Die Bilder können im Druck unscharf wirken.",
        "en": "Image resolution too low on {pages_text}: {ppi} ppi at the placed size, at "
        "least {min_ppi} ppi are recommended. The images may print blurred.",
        "fr": "Résolution d'image insuffisante ({pages_text}) : {ppi} ppp à la taille "
        "placée, au moins {min_ppi} ppp sont recommandés. Les images risquent d'être floues.",
    },
    "image_too_large": {
        "de": "Ein Bild auf {pages_text} ist mit {width} × {height} Pixeln zu groß für die "
        "Verarbeitung.",
        "en": "An image on {pages_text} is too large to process: {width} × {height} pixels.",
        "fr": "Une image est trop grande pour être traitée ({pages_text}) : "
        "{width} × {height} pixels.",
    },
    "image_resolution_unknown": {
        "de": "Das Bild gibt keine Auflösung an; seine Druckgröße ist daher unbekannt.",
        "en": "The image declares no resolution, so its print size is unknown.",
        "fr": "L'image n'indique pas de résolution ; sa taille d'impression est donc inconnue.",
    },
    "rgb_colour": {
        "de": "RGB-Farben auf {pages_text}. Gedruckt wird in CMYK; die Farben werden "
        "umgerechnet und können anders wirken.",
        "en": "RGB colours on {pages_text}. Printing is in CMYK; the colours will be "
        "converted and may look different.",
        "fr": "Couleurs RVB ({pages_text}). L'impression se fait en CMJN ; les couleurs "
        "seront converties et peuvent paraître différentes.",
    },
    "spot_colour": {
        "de": "Sonderfarben: {names}. Bitte prüfen Sie, ob sie als Sonderfarbe gedruckt oder "
        "in CMYK umgerechnet werden sollen.",
        "en": "Spot colours: {names}. Please check whether they are to be printed as spot "
        "colours or converted to CMYK.",
        "fr": "Tons directs : {names}. Veuillez vérifier s'ils doivent être imprimés en ton "
        "direct ou convertis en CMJN.",
    },
}


def describe(finding: Finding, language: str) -> str:
    """``finding`` as one sentence in ``language`` (de, en, fr; anything else: German)."""
    language = language.split("-")[0].split("_")[0].lower()
    if language not in LANGUAGES:
        language = PRIMARY_LANGUAGE
    texts = _texts(finding)
    if texts is None:
        return _FALLBACK[language].format(code=finding.code)
    try:
        return texts[language].format_map(_fields(finding.params, language))
    except (KeyError, IndexError, ValueError, TypeError):
        logger.warning("finding %s lacks params for its message: %s", finding.code, finding)
        return _FALLBACK[language].format(code=finding.code)


def _texts(finding: Finding) -> dict[str, str] | None:
    for variant in (finding.params.get("kind"), finding.params.get("type")):
        if isinstance(variant, str) and f"{finding.code}.{variant}" in CATALOGUE:
            return CATALOGUE[f"{finding.code}.{variant}"]
    return CATALOGUE.get(finding.code)


def _fields(params: dict[str, Any], language: str) -> dict[str, str]:
    """Every param as the text that goes into the sentence."""
    fields: dict[str, str] = {}
    for key, value in params.items():
        if key.endswith("_mm"):
            fields[key] = _millimetres(value, language)
        elif key in ("size", "max_size"):
            fields[key] = _bytes(value, language)
        elif key == "type":
            fields[key] = type_label(value, language)
        elif key == "allowed":
            fields[key] = ", ".join(type_label(name, language) for name in value)
        elif isinstance(value, bool):
            fields[key] = str(value)
        elif isinstance(value, int | float):
            fields[key] = format_decimal(value, locale=language)
        elif isinstance(value, list):
            fields[key] = ", ".join(str(item) for item in value)
        else:
            fields[key] = str(value)
    if "pages" in params:
        single, several = _PAGES[language]
        pages = str(params["pages"])
        fields["pages_text"] = (single if pages.isdigit() else several).format(pages)
    if "version" in params:
        fields["pdfx"] = str(params["version"]) or "PDF/X"
    return fields


def type_label(file_type: str, language: str) -> str:
    """``jpeg`` → "JPEG", ``office`` → "Office-Dokument" (de)."""
    label = _TYPE_LABELS.get(file_type, file_type.upper())
    return label if isinstance(label, str) else label.get(language, label[PRIMARY_LANGUAGE])


def _millimetres(value: Any, language: str) -> str:
    """``3.0`` → "3,0" (de); ``[210, 297]`` → "210,0 × 297,0"."""
    if isinstance(value, list | tuple):
        return " × ".join(_millimetres(item, language) for item in value)
    return format_decimal(float(value), format="#,##0.0", locale=language)


def _bytes(value: Any, language: str) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if value >= size:
            return f"{format_decimal(value / size, format='#,##0.0', locale=language)} {unit}"
    return f"{format_decimal(value, locale=language)} B"
