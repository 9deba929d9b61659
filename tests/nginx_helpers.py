"""Debian's nginx in front of portal nodes, as in the README's production config.

Started unprivileged for a test: the config, pid file, logs and every temp path live in
a temp directory (otherwise nginx reaches for /var/lib/nginx), on a free high port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NGINX = "/usr/sbin/nginx"

# The proxy settings the README recommends, kept in one place for the tests. Host is
# $http_host here (the README's $host drops the port, and the tests' nginx listens on a
# high one).
# "Scaling out": for every location. A node that cannot be reached gets no request: the
# next one gets it. A request a node has begun and then broken off is passed on only if
# it is idempotent (GET, HEAD); a POST or PATCH is answered 502 and its client asks again.
UPSTREAM_SETTINGS = """
        proxy_next_upstream error timeout http_502 http_503;
        proxy_connect_timeout 2s;
"""
# "Running it in production": the portal's pages and the browsers' uploads.
PORTAL_LOCATION = """
        proxy_pass http://portal;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 600s;
        proxy_send_timeout 600s;
"""
# "Portal in the DMZ, agent inside": the hotfolder agents' long polls and downloads.
AGENT_LOCATION = """
        proxy_pass http://portal;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_read_timeout 90s;
        proxy_send_timeout 600s;
        proxy_buffering on;
        proxy_buffers 64 64k;
        proxy_max_temp_file_size 0;
        proxy_request_buffering off;
        client_max_body_size 80m;
"""
# How long nginx leaves a node alone after it failed once (max_fails=1).
FAIL_TIMEOUT_SECONDS = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nginx_conf(directory: Path, port: int, upstream_ports: list[int], sticky: bool = False) -> str:
    """``sticky``: each client address stays on one node while it answers (ip_hash)."""
    servers = "\n".join(
        f"        server 127.0.0.1:{upstream} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;"
        for upstream in upstream_ports
    )
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return f"""
daemon off;
worker_processes 2;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    client_max_body_size 0;
    upstream portal {{
{"        ip_hash;" if sticky else ""}
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};{UPSTREAM_SETTINGS}
        location / {{{PORTAL_LOCATION}        }}
        location /api/v1/agent/ {{{AGENT_LOCATION}        }}
    }}
}}
"""


@contextmanager
def running_nginx(
    upstream_ports: list[int], port: int | None = None, sticky: bool = False
) -> Iterator[str]:
    """nginx balancing over ``upstream_ports``; yields its ``http://127.0.0.1:PORT``."""
    if not os.path.exists(NGINX):
        raise RuntimeError("nginx is not installed: run .ci/install --test")
    directory = Path(tempfile.mkdtemp(prefix="ptportal-nginx-"))
    port = port or _free_port()
    conf = directory / "nginx.conf"
    conf.write_text(nginx_conf(directory, port, upstream_ports, sticky))
    with (directory / "stderr.log").open("wb") as log:
        server = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(directory)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(port, server, directory)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGQUIT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_until_up(port: int, server: subprocess.Popen, directory: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    logs = "".join(
        path.read_text(errors="replace")
        for path in (directory / "stderr.log", directory / "error.log")
        if path.exists()
    )
    raise RuntimeError(f"nginx did not start:\n{logs}")
