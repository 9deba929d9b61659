"""Which language a page is shown in (``?lang=``, the saved choice, the browser) and its texts."""

from collections.abc import Callable

from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, request, session
from flask_babel import get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup

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


def page_translations() -> Translations | NullTranslations:
    """The current language's catalog, looked up once per request and language.

    Flask-Babel looks the catalog up anew for each string (context, locale, cache key);
    a page has dozens. ``force_locale`` (mails in the customer's language) sets another
    locale object, which this notices.
    """
    if not g:  # outside an application context: Flask-Babel's untranslated fallback
        return get_translations()
    locale = get_locale()
    cached = g.get("_page_translations")
    if cached is not None and cached[0] is locale:
        return cached[1]
    translations = get_translations()
    g._page_translations = (locale, translations)
    return translations


def install_page_gettext(app: Flask) -> None:
    """Templates translate through the page's catalog, looked up once per page.

    Each rendered template gets ``gettext``/``ngettext`` bound to the catalog of the
    moment (a ``force_locale`` block renders with its own). Imported macros see only the
    environment's globals; those go through ``page_translations``.
    """
    app.jinja_env.install_gettext_callables(
        gettext=lambda text: page_translations().ugettext(text),
        ngettext=lambda singular, plural, n: page_translations().ungettext(singular, plural, n),
        newstyle=True,
        pgettext=lambda context, text: page_translations().upgettext(context, text),
        npgettext=lambda context, singular, plural, n: page_translations().unpgettext(
            context, singular, plural, n
        ),
    )
    app.context_processor(_bound_gettext)


def _bound_gettext() -> dict[str, Callable]:
    translations = get_translations()
    singular, plural = translations.ugettext, translations.ungettext

    # Jinja's "newstyle" gettext: escaped under autoescape, always %-formatted.
    @pass_context
    def gettext(context, text: str, /, **variables: object) -> str:
        return _formatted(context, singular(text), variables)

    @pass_context
    def ngettext(context, one: str, many: str, number: int, /, **variables: object) -> str:
        variables.setdefault("num", number)
        return _formatted(context, plural(one, many, number), variables)

    return {"gettext": gettext, "ngettext": ngettext}


def _formatted(context, text: str, variables: dict[str, object]) -> str:
    if not variables:
        # Nothing to escape: plain str formatting, then mark safe (Markup's % escapes each
        # argument and costs several times more, for every text of a page).
        text = text % {}
        return Markup(text) if context.eval_ctx.autoescape else text
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables
