"""Fixtures: a client.ini in tmp_path, a real SMTP server, the real Flask app on real SQLite."""

from __future__ import annotations

import itertools
import os
import pathlib
import re
import sys
from collections.abc import Iterator
from typing import ClassVar

import pytest
from flask.testing import FlaskClient

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from clamd_helpers import clamd_fixture  # noqa: F401  (fixture "clamd" for every module)
from redis_helpers import redis_fixture
from smtp_helpers import RecordingHandler, smtp_server

from shared.config import Settings, load_settings

redis_url = redis_fixture()  # a session's Redis, started when a test first asks for it

SECRET = "test-secret-key-0123456789abcdefghijklmnop"
TEST_DATABASE_ENV = "PTPORTAL_DATABASE_URL"
SHIPPED_CLAMD_CONF = pathlib.Path(__file__).resolve().parent.parent / "shared/clamav/clamd.conf"
CHEAP_ARGON2 = {"argon2_time_cost": "1", "argon2_memory_kib": "64", "argon2_parallelism": "1"}


def write_ini(directory: pathlib.Path, sections: dict[str, dict[str, object]]) -> pathlib.Path:
    """Write a client.ini with ``sections`` into ``directory`` and return its path."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in values.items()]
        lines.append("")
    path = directory / "client.ini"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def base_sections(smtp_port: int, **overrides: dict[str, object]) -> dict[str, dict[str, object]]:
    """A complete test configuration; ``overrides`` replace keys per section."""
    sections: dict[str, dict[str, object]] = {
        "portal": {
            "base_url": "http://portal.test",
            "secret_key": SECRET,
            "shop_name": "Testdruck",
        },
        # The database of the test (``database_url``): SQLite beside the ini, or a fresh
        # PostgreSQL database when the suite runs with --database postgresql.
        "database": {"url": os.environ.get(TEST_DATABASE_ENV, "sqlite:///data/ptportal.db")},
        "storage": {"order_root": "data/orders"},
        "workflow": {},
        "smtp": {
            "server": "127.0.0.1",
            "port": smtp_port,
            "email": "portal@testdruck.example",
            "security": "none",
            "timeout_seconds": 5,
        },
        "worker": {"queue_url": "memory://"},
        "clamav": {"clamd_conf": SHIPPED_CLAMD_CONF},
        "security": dict(CHEAP_ARGON2),
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return sections


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("PTPORTAL_TEST_DATABASE", "sqlite"),
        help="the database every test runs on: SQLite files (default) or a throw-away "
        "PostgreSQL cluster from Debian's postgresql (also $PTPORTAL_TEST_DATABASE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: tests of SQLite itself (its files, pragmas, schema dumps)"
    )
    config.addinivalue_line(
        "markers", "no_database: tests that touch no database (the PostgreSQL pass skips them)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database") != "postgresql":
        return
    skip = pytest.mark.skip(reason="about SQLite itself; the PostgreSQL pass has its own")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """With --database postgresql: one cluster for the session (URL of its admin database)."""
    if request.config.getoption("--database") != "postgresql":
        yield None
        return
    from postgres_helpers import postgres_server

    with postgres_server() as url:
        yield url


_DATABASE_NUMBERS = itertools.count(1)


@pytest.fixture(autouse=True)
def database_url(postgres_cluster, tmp_path, monkeypatch) -> str:
    """The test's own, empty database; ``base_sections`` and child processes use it."""
    if postgres_cluster is None:
        return f"sqlite:///{tmp_path / 'data' / 'ptportal.db'}"
    from postgres_helpers import create_database

    url = create_database(postgres_cluster, f"test_{next(_DATABASE_NUMBERS)}")
    monkeypatch.setenv(TEST_DATABASE_ENV, url)
    return url


@pytest.fixture
def mailserver() -> Iterator[RecordingHandler]:
    """A real SMTP server (aiosmtpd) on localhost; ``.port`` and ``.received``."""
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        handler.port = port
        yield handler


@pytest.fixture
def ini_overrides(request) -> dict[str, dict[str, object]]:
    """client.ini keys to change for a test's app: override, or parametrize indirectly."""
    return getattr(request, "param", {})


@pytest.fixture
def settings(tmp_path, mailserver, ini_overrides) -> Settings:
    return load_settings(write_ini(tmp_path, base_sections(mailserver.port, **ini_overrides)))


def links_for(settings: Settings):
    """The portal's links for mails composed outside a request (worker, command line)."""
    from portal.links import portal_links

    return portal_links(settings.portal.base_url)


def tasks_for(settings: Settings, immediate: bool = True):
    """Background tasks as the portal and worker make them; ``immediate`` runs them at once."""
    from shared.worker import BackgroundTasks

    return BackgroundTasks(settings, links_for(settings), immediate=immediate)


@pytest.fixture
def links(settings):
    return links_for(settings)


@pytest.fixture
def app(settings):
    """The real portal on a fresh SQLite file; mail is delivered at once to ``mailserver``."""
    from portal import create_app
    from shared.db import database
    from shared.schema import init_database

    application = create_app(settings, tasks=tasks_for(settings))
    application.test_client_class = EnglishClient
    init_database(settings.portal.shop_name)
    yield application
    database.close()


class EnglishClient(FlaskClient):
    """A browser asking for English, so assertions read the English source texts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_token(app) -> str:
    from shared.accounts.api_tokens import create_token

    return create_token("tests")


@pytest.fixture
def api(client, api_token):
    """Call the workflow API with a valid token: ``api.post(path, json)``, ``api.get(path)``."""

    class Api:
        headers: ClassVar[dict[str, str]] = {"Authorization": f"Bearer {api_token}"}

        def post(self, path: str, body: object):
            return client.post(f"/api/v1{path}", json=body, headers=self.headers)

        def get(self, path: str):
            return client.get(f"/api/v1{path}", headers=self.headers)

        def patch(self, path: str, body: object):
            return client.patch(f"/api/v1{path}", json=body, headers=self.headers)

    return Api()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


_LINK = re.compile(r"https?://\S+/activate/[\w-]+")


def activation_link_in(handler: RecordingHandler, index: int = -1) -> str:
    """The activation link in the ``index``-th mail the SMTP server received."""
    message = handler.received[index].message
    text = message.get_body(preferencelist=("plain",)).get_content()
    match = _LINK.search(text)
    assert match, f"no activation link in mail:\n{text}"
    return match.group(0)
