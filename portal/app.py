"""Build the Flask application: configuration, extensions, blueprints, error pages."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, g
from flask_babel import get_locale
from peewee import DatabaseError, InterfaceError
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import errors, formatting
from portal.audit_log import register_actor
from portal.extensions import babel, csrf, htmx, limiter, login_manager
from portal.i18n import register_language_memory, select_locale
from portal.links import PortalLinks
from portal.security import add_security_headers, refuse_foreign_origin, refuse_nul_characters
from portal.users import load_user
from shared.accounts.passwords import MAX_LENGTH, MIN_LENGTH, PasswordVault
from shared.config import Settings, config_path, load_settings
from shared.db import bind_database, database
from shared.files.access import may_download, may_preview
from shared.files.preflighting import stored_preflight
from shared.orders.proofs import proof_state
from shared.worker import BackgroundTasks

ROOT = Path(__file__).resolve().parent.parent
FORM_BODY_LIMIT = 1024 * 1024

log = logging.getLogger(__name__)


def build_app(settings: Settings | None = None, *, tasks: BackgroundTasks | None = None) -> Flask:
    """The portal for ``settings`` (default: the client.ini that ``config_path`` names)."""
    settings = settings or load_settings(config_path())
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.portal.secret_key,
        PTPORTAL_SETTINGS=settings,
        MAX_CONTENT_LENGTH=FORM_BODY_LIMIT,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.portal.secure_cookies,
        SESSION_COOKIE_NAME="ptportal_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.portal.session_hours),
        # Only a changed session sends a cookie: otherwise a poll still running in another
        # tab would answer with the old cookie and undo a sign-in made meanwhile. The
        # server-side session has a fixed end anyway.
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=settings.portal.session_hours * 3600,
        # Flask-WTF's strict HTTPS check demands a Referer, which tools and privacy settings
        # leave out; the token, SameSite=Lax cookies and the origin check suffice.
        WTF_CSRF_SSL_STRICT=False,
        RATELIMIT_STORAGE_URI=settings.portal.rate_limit_storage_url,
        RATELIMIT_HEADERS_ENABLED=True,
        BABEL_DEFAULT_LOCALE=settings.portal.default_language,
        BABEL_DEFAULT_TIMEZONE=settings.portal.time_zone,
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "portal" / "translations"),
    )
    app.extensions["ptportal.vault"] = PasswordVault(settings.security)

    bind_database(settings.database.url)
    app.before_request(_open_database)
    app.teardown_request(_reset_database)

    babel.init_app(app, locale_selector=select_locale)
    # Before CSRFProtect's own hook: a foreign origin is refused whatever token it carries.
    app.before_request(refuse_foreign_origin)
    app.before_request(refuse_nul_characters)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    register_blueprints(app)
    register_actor(app)
    register_language_memory(app)
    links = PortalLinks(app.url_map, settings.portal.base_url)
    app.extensions["ptportal.links"] = links
    app.extensions["ptportal.tasks"] = tasks or BackgroundTasks(settings, links)
    formatting.register(app)

    if settings.portal.proxy_count:
        # Client address and scheme from the proxies' headers, for rate limits and logs.
        count = settings.portal.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)

    errors.register(app)
    app.after_request(add_security_headers)
    app.jinja_env.globals.update(
        shop_name=settings.portal.shop_name,
        has_logo=settings.portal.logo_file is not None,
        current_language=get_locale,
        password_min_length=MIN_LENGTH,
        password_max_length=MAX_LENGTH,
        may_download=may_download,
        may_preview=may_preview,
        preflight_of=stored_preflight,
        proof_state=proof_state,
    )
    return app


def register_blueprints(app: Flask) -> None:
    """Every page and API route of the portal."""
    from portal import converters

    converters.register(app)
    from portal import (
        agent_api,
        api,
        audit_log,
        auth,
        conversations,
        customers,
        defaults,
        home,
        hotfolder,
        inbox,
        mail_admin,
        orders,
        proofs,
        staff,
        staff_account,
        staff_orders,
        staff_proofs,
        staff_users,
        tokens,
        uploads,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(proofs.bp)
    app.register_blueprint(staff_proofs.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(hotfolder.bp)
    app.register_blueprint(tokens.bp)
    app.register_blueprint(mail_admin.bp)
    app.register_blueprint(customers.bp)
    app.register_blueprint(staff_orders.bp)
    app.register_blueprint(staff_users.bp)
    app.register_blueprint(staff_account.bp)
    app.register_blueprint(defaults.bp)
    app.register_blueprint(audit_log.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(agent_api.bp)
    for bearer_only in (api.bp, agent_api.bp):
        csrf.exempt(bearer_only)
        limiter.exempt(bearer_only)


def _open_database() -> None:
    # Each server thread keeps its connection from one request to the next: a new SQLite
    # connection parses the whole schema before its first query, which costs more than the
    # queries of most pages (bench/README.md, benchmark 5).
    database.connect(reuse_if_open=True)


def _reset_database(exc: BaseException | None) -> None:
    """After an error the thread's connection may be broken: the next request opens a new one."""
    if exc is None and not g.pop("database_failed", False):
        return
    with contextlib.suppress(DatabaseError, InterfaceError):
        database.close()
