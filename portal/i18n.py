"""Which language a page is shown in (``?lang=``, the saved choice, the browser) and its texts;
and the language a customer's login reads, kept for the mails they get."""

from flask import Flask, current_app, request, session
from flask_login import current_user, user_logged_in

from shared.accounts.logins import remember_language
from shared.models import LANGUAGES as MAIL_LANGUAGES

LANGUAGES = ("de", "en", "fr")


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


def reader_language() -> str:
    """The language this customer reads: chosen on the portal, else the browser's first
    one that mails come in; "" if none."""
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in MAIL_LANGUAGES:
        return chosen
    return request.accept_languages.best_match(MAIL_LANGUAGES, default="")


def register_language_memory(app: Flask) -> None:
    """Record a login's language when it signs in and when it switches language."""

    @user_logged_in.connect_via(app)
    def _signed_in(_sender, user, **_extra) -> None:
        if not user.is_staff:
            remember_language(user.login, reader_language())

    @app.before_request
    def _switched() -> None:
        chosen = request.args.get("lang")
        if chosen in LANGUAGES and current_user.is_authenticated and not current_user.is_staff:
            remember_language(current_user.login, chosen)
