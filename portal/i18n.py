"""Which language a page is shown in (``?lang=``, the saved choice, the browser) and its texts."""

from flask import current_app, request, session

LANGUAGES = ("de", "en")


def select_locale() -> str:
    """Flask-Babel's locale selector; a ``?lang=`` choice is remembered in the session."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
        return chosen
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    default = current_app.config["PTPORTAL_SETTINGS"].portal.default_language
    return request.accept_languages.best_match(LANGUAGES, default=default)
