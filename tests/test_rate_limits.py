"""Rate limits hold across processes: every gunicorn worker of every portal host counts together.

Two portal servers (gunicorn, two workers each) on one database stand for two hosts, or
for two workers that the requests happen to reach in turn: which worker of one server
accepts a connection is up to the kernel, so alternating between two servers is the way
to be sure the attempts really are spread over several processes.
"""

from __future__ import annotations

import http.cookiejar
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
from conftest import base_sections, write_ini
from smtp_helpers import free_port
from system_helpers import wait_until_serving

from shared.accounts.customers import upsert_customer
from shared.accounts.logins import create_login
from shared.accounts.passwords import PasswordVault
from shared.accounts.rate_limits import add_hits, hits, window_end
from shared.config import load_settings
from shared.db import bind_database, database, write_transaction
from shared.models import PortalLogin
from shared.schema import init_database

LIMIT = 4
ATTEMPTS = 12
PASSWORD = "correct horse battery staple"


@contextmanager
def two_portals(directory, storage: str):
    """Two ``ptportal serve`` processes with two gunicorn workers each, on one database with
    one customer login ``k1``; yields their base URLs."""
    ports = [free_port(), free_port()]
    portal = {
        "base_url": f"http://127.0.0.1:{ports[0]}",
        "login_attempts_per_minute": LIMIT,
        "rate_limit_storage_url": storage,
        "proxy_count": 1,  # each attempt names its own client address in X-Forwarded-For
    }
    ini = write_ini(directory, base_sections(2525, portal=portal))
    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database("Testdruck")
    with write_transaction():
        customer, _ = upsert_customer("K1", name="Kunde", portal_enabled=True)
        login = create_login(customer, state=PortalLogin.STATE_ACTIVE)
        login.password_hash = PasswordVault(settings.security).hash(PASSWORD)
        login.save()
    database.close()
    servers = []
    try:
        for port in ports:
            command = [sys.executable, "-m", "portal", "--config", str(ini), "serve"]
            command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"]
            with (directory / f"portal-{port}.log").open("ab") as log:
                servers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_until_serving(url)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def attempt(base_url: str, username: str, address: str, start: threading.Barrier) -> int:
    """One sign-in with a wrong password from a browser of its own; the HTTP status."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        urllib.request.HTTPRedirectHandler(),
    )
    forwarded = {"X-Forwarded-For": address}
    page = opener.open(urllib.request.Request(f"{base_url}/login", headers=forwarded), timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = {"csrf_token": token, "username": username, "password": "wrong password here"}
    request = urllib.request.Request(
        f"{base_url}/login", data=urllib.parse.urlencode(form).encode(), headers=forwarded
    )
    start.wait(timeout=30)
    try:
        return opener.open(request, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code


def all_at_once(urls: list[str], usernames: list[str], addresses: list[str]) -> list[int]:
    """One attempt per username and address, all at the same moment, alternating servers."""
    start = threading.Barrier(len(usernames))
    results: list[int] = []

    def run(url: str, username: str, address: str) -> None:
        results.append(attempt(url, username, address, start))

    threads = [
        threading.Thread(target=run, args=(urls[number % len(urls)], username, address))
        for number, (username, address) in enumerate(zip(usernames, addresses, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


@pytest.fixture(params=["database", "redis"])
def storage(request) -> str:
    """Where the limits count: the database (default), or Redis when one is configured."""
    if request.param == "database":
        return "database://"
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()  # the session's Redis: no counts of earlier tests
    return url


def test_failed_sign_ins_per_username_are_counted_across_processes(tmp_path, storage):
    with two_portals(tmp_path, storage) as urls:
        addresses = [f"203.0.113.{number}" for number in range(ATTEMPTS)]

        statuses = all_at_once(urls, ["K1"] * ATTEMPTS, addresses)

        assert statuses == [401] * LIMIT + [429] * (ATTEMPTS - LIMIT)


def test_sign_ins_per_address_are_counted_across_processes(tmp_path, storage):
    with two_portals(tmp_path, storage) as urls:
        usernames = [f"nobody-{number}" for number in range(ATTEMPTS)]

        statuses = all_at_once(urls, usernames, ["198.51.100.7"] * ATTEMPTS)

        assert statuses == [401] * LIMIT + [429] * (ATTEMPTS - LIMIT)


def test_a_window_ends_when_it_should_on_every_database(app):
    # The end is stored as seconds since the epoch: it must keep its fractions (a
    # four-byte float would round it to 128 s and end some windows before they began).
    started = time.time()
    assert add_hits("test:window", 60) == 1
    assert add_hits("test:window", 60) == 2
    assert 59 < window_end("test:window") - started < 61
    assert hits("test:window") == 2
