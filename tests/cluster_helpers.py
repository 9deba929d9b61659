"""Two (or more) portal nodes behind Debian's nginx, as a shop runs them when one is not enough.

Every node is its own ``ptportal serve`` (gunicorn) process on its own port with the same
client.ini: one database, one storage directory, one worker. nginx balances over them
with the README's proxy settings. ``Visitor`` is a browser without a browser: cookies,
the CSRF token and the Origin header a browser sends, so requests can go to one node
directly while they count as coming from the portal's own pages. Hotfolder agents get a
directory of their own (``[agent]`` only) and talk to nginx or to one node over HTTP.
"""

from __future__ import annotations

import base64
import http.cookiejar
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent_helpers import FAST_AGENT
from conftest import write_ini
from nginx_helpers import FAIL_TIMEOUT_SECONDS, running_nginx
from smtp_helpers import RecordingHandler, free_port, smtp_server
from system_helpers import seeded_system

from shared.accounts.api_tokens import SCOPE_AGENT, create_token
from shared.config import AgentSettings, Settings, load_agent_settings
from shared.db import bind_database, database

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINK = re.compile(r"https?://\S+/activate/[\w-]+")
_ADDRESSES = itertools.count(1)
_AGENTS = itertools.count(1)


@dataclass
class Cluster:
    settings: Settings
    base_url: str  # nginx, what browsers use
    node_urls: list[str]
    api_token: str
    mail: RecordingHandler
    directory: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)
    others: list[subprocess.Popen] = field(default_factory=list)
    node_commands: list[list[str]] = field(default_factory=list)

    def node_log(self, index: int, since: int = 0) -> str:
        """The node's output (gunicorn's access log among it) from character ``since`` on."""
        return (self.directory / f"node{index}.log").read_text(errors="replace")[since:]

    def node_log_sizes(self) -> list[int]:
        """Where each node's log ends now: ``node_log(index, since)`` reads what follows."""
        return [len(self.node_log(index)) for index in range(len(self.nodes))]

    def kill_node(self, index: int) -> None:
        """SIGKILL to the node's gunicorn master and its workers at once, as a crashed host
        or the OOM killer would: nothing is finished. (A master killed alone leaves its
        workers serving the requests they have in hand until they notice.)"""
        os.killpg(self.nodes[index].pid, signal.SIGKILL)
        self.nodes[index].wait(timeout=10)

    def start_node(self, index: int) -> None:
        """Start node ``index`` (its own process group, so that ``kill_node`` takes all)."""
        with (self.directory / f"node{index}.log").open("ab") as output:
            process = subprocess.Popen(
                self.node_commands[index],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if index < len(self.nodes):
            self.nodes[index] = process
        else:
            self.nodes.append(process)

    def revive(self) -> None:
        """Start every killed node again; returns once nginx sends requests to it again
        (it leaves a node it saw fail alone for ``fail_timeout``)."""
        dead = [index for index, node in enumerate(self.nodes) if node.poll() is not None]
        for index in dead:
            self.start_node(index)
        for index in dead:
            _wait_for(
                f"{self.node_urls[index]}/healthz",
                self.nodes[index],
                self.directory / f"node{index}.log",
            )
        if dead:
            time.sleep(FAIL_TIMEOUT_SECONDS + 0.5)

    def agent_token(self, name: str) -> str:
        """A new token of kind "Hotfolder agent" (as staff make on the tokens page)."""
        bind_database(self.settings.database.url)
        try:
            return create_token(name, SCOPE_AGENT)
        finally:
            database.close()

    def agent_settings(self, directory: Path, portal_url: str, **agent) -> AgentSettings:
        """An agent's own directory: client.ini with ``[agent]`` alone, its own token, fast
        timings, talking to ``portal_url`` (nginx or one node; plain HTTP on loopback)."""
        directory.mkdir(parents=True, exist_ok=True)
        values = {
            "portal_url": portal_url,
            "token": self.agent_token(f"agent-{next(_AGENTS)}"),
            **FAST_AGENT,
            **agent,
        }
        return load_agent_settings(write_ini(directory, {"agent": values}))

    def api(
        self, method: str, path: str, body: dict | None = None, node: str | None = None
    ) -> dict:
        """The workflow API through nginx, or through ``node`` (one node's URL)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{node or self.base_url}/api/v1{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def activation_link(self, address: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for received in reversed(self.mail.received):
                if address in received.rcpt_tos:
                    text = received.message.get_body(preferencelist=("plain",)).get_content()
                    found = _LINK.search(text)
                    if found:
                        return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no activation mail to {address}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Visitor:
    """One browser's cookies, sent to whichever node a request names; redirects not followed."""

    def __init__(self, origin: str, address: str = "") -> None:
        self.origin = origin  # the portal's base URL: what a browser's Origin header says
        # The client address the load balancer reports (X-Forwarded-For): rate limits count
        # per address, and every visitor of a test is somebody else.
        number = next(_ADDRESSES)
        self.address = address or f"10.{number // 250}.{number % 250 + 1}.7"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )
        self.csrf_token = ""

    def request(
        self, method: str, url: str, data: bytes | dict | None = None, headers: dict | None = None
    ) -> Answer:
        headers = {
            "Origin": self.origin,
            "Accept-Language": "en",
            "X-Forwarded-For": self.address,
            **(headers or {}),
        }
        if self.csrf_token:
            headers.setdefault("X-CSRFToken", self.csrf_token)
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def form_token(self, url: str) -> str:
        page = self.request("GET", url)
        found = _CSRF.search(page.text)
        assert found, f"{url} answered {page.status} without a form"
        self.csrf_token = found.group(1)
        return self.csrf_token

    def sign_in(self, node: str, username: str, password: str, path: str = "/login") -> Answer:
        token = self.form_token(node + path)
        form = {"csrf_token": token, "username": username, "password": password}
        return self.request("POST", node + path, form)

    def choose_password(self, link: str, password: str) -> Answer:
        token = self.form_token(link)
        form = {"csrf_token": token, "password": password, "password_confirm": password}
        return self.request("POST", link, form)


def tus_create(visitor: Visitor, node: str, project_no: str, name: str, size: int) -> str:
    """Announce an upload; its URL (on any node)."""
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    answer = visitor.request(
        "POST",
        f"{node}/orders/{project_no}/uploads",
        b"",
        {"Tus-Resumable": "1.0.0", "Upload-Length": str(size), "Upload-Metadata": metadata},
    )
    assert answer.status == 201, answer.text
    return answer.headers["Location"]


def tus_offset(visitor: Visitor, node: str, location: str) -> int:
    answer = visitor.request("HEAD", node + location, None, {"Tus-Resumable": "1.0.0"})
    assert answer.status == 200, answer.status
    return int(answer.headers["Upload-Offset"])


def tus_send(visitor: Visitor, node: str, location: str, offset: int, data: bytes) -> int:
    answer = visitor.request(
        "PATCH",
        node + location,
        data,
        {
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert answer.status == 204, answer.text
    return int(answer.headers["Upload-Offset"])


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} stopped during start-up:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer")


@contextmanager
def running_cluster(
    directory: Path, clamd, nodes: int = 2, sticky: bool = False, **ini_overrides
) -> Iterator[Cluster]:
    """``nodes`` portal nodes, the worker and nginx in front; one client.ini, one database."""
    handler = RecordingHandler()
    nginx_port = free_port()
    node_ports = [free_port() for _ in range(nodes)]
    with smtp_server(handler) as smtp_port:
        behind_nginx = {"base_url": f"http://127.0.0.1:{nginx_port}", "proxy_count": 1}
        settings = seeded_system(directory, clamd, smtp_port, behind_nginx, ini_overrides)
        ini = settings.source
        token = create_token("cluster-tests")
        database.close()
        cluster = Cluster(
            settings,
            settings.portal.base_url,
            [f"http://127.0.0.1:{port}" for port in node_ports],
            token,
            handler,
            directory,
        )
        command = [sys.executable, "-m", "portal", "--config", str(ini)]
        cluster.node_commands = [
            [*command, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
            for port in node_ports
        ]
        try:
            for index in range(nodes):
                cluster.start_node(index)
            with (directory / "worker.log").open("ab") as output:
                cluster.others.append(
                    subprocess.Popen(
                        [*command, "worker", "--workers", "2"],
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
            for index, url in enumerate(cluster.node_urls):
                _wait_for(f"{url}/healthz", cluster.nodes[index], directory / f"node{index}.log")
            with running_nginx(node_ports, port=nginx_port, sticky=sticky):
                yield cluster
        finally:
            for process in cluster.nodes + cluster.others:
                if process.poll() is None:
                    process.terminate()
            for process in cluster.nodes + cluster.others:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
