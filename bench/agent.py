"""Hotfolder agent over HTTPS: latency from "clean" to the hotfolder, throughput against
``rsync -a`` and ``sftp get`` over SSH, and the agent's memory.

Two hosts on one machine, as in production: the portal (``ptportal serve`` — gunicorn,
gthread — behind nginx, which ends TLS with a self-signed certificate made here by
``openssl`` and is set up as README "Portal in the DMZ, agent inside" says; ``--tls
gunicorn`` lets gunicorn serve TLS itself) in one directory, the agent (``python -m
hotfolder_agent``) in another with ``[agent]`` alone in its client.ini and that certificate
as its CA. Files land in Eingehend the way the portal places them (``start_upload`` +
``append_chunk`` into staging, then ``scan_received`` links them into Eingehend; only
clamd's verdict is stubbed — the scan is not what is measured). The baselines run in the
same run against Debian's sshd on 127.0.0.1 with a key made here (``common.Sshd``): what a
shop would set up to fetch files from a DMZ today.

1. **latency**: ``--files`` files of ``--size`` land one at a time, ``--interval`` apart,
   while the agent waits (long poll); for each, the time from the commit that makes it
   clean to its copy in the hotfolder and to its XML. Median and p99.
2. **throughput**: ``--bulk`` files of ``--bulk-size`` lie in Eingehend; ``rsync -a`` over
   SSH copies the same tree to the same disk (then ``sync``; and once more with
   ``--fsync``, each file durable as the agent's), then a fresh agent starts
   and delivers them all (download, fsync, SHA-256, link, confirm, one XML each).
3. **one big file** (``--agent-big``): the agent runs and waits, as in production; from
   the moment the file turns clean to its XML. Then ``sftp get`` of the same file (and
   ``get -f``, which fsyncs). The agent's peak RSS (VmHWM) is read for this file and for
   one of ``--agent-small``: flat in file size means the same.

    .venv/bin/python bench/agent.py        # 200 files, 1,000 x 1 MiB, 1 GiB (and 256 MiB)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (
    SHIPPED_CLAMD_CONF,
    MiB,
    Sshd,
    free_port,
    heading,
    median,
    memory_kib,
    percentile,
    quick,
    report,
    size_option,
    size_text,
    stop,
    workdir,
    write_ini,
    write_random_file,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = "agent"
CUSTOMER_NO = "BENCH"
WORKERS = int(os.environ.get("BENCH_AGENT_WORKERS", "2"))


class AlwaysClean:
    """Stands in for clamd: the bench measures the agent, not the virus scan."""

    def scan_file(self, _path: Path):
        from shared.files.scanning import ScanResult, ScanVerdict

        return ScanResult(ScanVerdict.CLEAN)


# --- the portal's host -----------------------------------------------------------------------


# README "Portal in the DMZ, agent inside"; BENCH_NGINX_BUFFERING tries another setting.
NGINX_BUFFERING = "proxy_buffering on; proxy_buffers 64 64k; proxy_max_temp_file_size 0;"
NGINX_CONF = """daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-tmp/body;
    proxy_temp_path {d}/nginx-tmp/proxy;
    fastcgi_temp_path {d}/nginx-tmp/fastcgi;
    uwsgi_temp_path {d}/nginx-tmp/uwsgi;
    scgi_temp_path {d}/nginx-tmp/scgi;
    upstream portal {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {certificate};
        client_max_body_size 80m;
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        location / {{
            proxy_pass http://portal;
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
        # As README "Portal in the DMZ, agent inside": long polls up to 25 s, large
        # downloads streamed.
        location /api/v1/agent/ {{
            proxy_pass http://portal;
            proxy_read_timeout 90s;
            proxy_send_timeout 600s;
            {buffering}
        }}
    }}
}}
"""


class PortalHost:
    """The portal over TLS in ``directory``; the database is bound in this process.

    ``nginx``: TLS ends in nginx in front of gunicorn, as README "Running it in
    production" sets it up; else gunicorn serves TLS itself (``serve --certfile``).
    """

    def __init__(self, directory: Path, nginx: bool = True) -> None:
        self.directory = directory
        directory.mkdir(parents=True)
        self.nginx = nginx
        self.port = free_port()
        self.upstream = free_port()
        self.certificate = directory / "server.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(self.certificate), "-out", str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.ini = write_ini(directory, self.port, clamd_conf=SHIPPED_CLAMD_CONF)
        from shared.accounts.api_tokens import SCOPE_AGENT, create_token
        from shared.accounts.customers import upsert_customer
        from shared.config import load_settings
        from shared.db import bind_database, write_transaction
        from shared.schema import init_database

        self.settings = load_settings(self.ini)
        bind_database(self.settings.database.url)
        init_database("Benchmark")
        with write_transaction():
            self.customer, _ = upsert_customer(CUSTOMER_NO, name="Benchmark", email="b@example.com")
        self.token = create_token("bench-agent", SCOPE_AGENT)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "portal", "--config", str(self.ini), "serve",
            "--bind", f"127.0.0.1:{self.upstream if self.nginx else self.port}",
            "--workers", str(WORKERS), "--threads", "8",
        ]  # fmt: skip
        if not self.nginx:
            command += ["--certfile", str(self.certificate)]
        with (self.directory / "portal.log").open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.proxy: subprocess.Popen | None = None
        if self.nginx:
            (self.directory / "nginx-tmp").mkdir()
            conf = self.directory / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    buffering=os.environ.get("BENCH_NGINX_BUFFERING", NGINX_BUFFERING),
                    d=self.directory,
                    port=self.port,
                    upstream=self.upstream,
                    certificate=self.certificate,
                )
            )
            with (self.directory / "nginx.log").open("wb") as log:
                self.proxy = subprocess.Popen(
                    ["nginx", "-c", str(conf), "-p", str(self.directory)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.certificate))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2, context=context):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the portal did not start; see {self.directory}/portal.log")

    def order(self, project_no: str):
        from shared.db import write_transaction
        from shared.files.folders import create_order_folders
        from shared.models import Order

        with write_transaction():
            order = Order.create(
                project_no=project_no, customer=self.customer, folders_created=True
            )
        create_order_folders(self.settings.storage.order_root, CUSTOMER_NO, project_no)
        return order

    def staged(self, order, name: str, body, size: int):
        """A complete upload in staging (not scanned yet)."""
        from shared.files.receiving import append_chunk, start_upload

        file = start_upload(self.settings, order, name, size)
        append_chunk(self.settings, file, 0, body, size)
        return file

    def clean(self, file_id: int) -> None:
        """The scan's verdict and the preflight, committed as the worker commits them: from
        now on the agent may take the file."""
        from shared.files.intake import scan_received
        from shared.files.preflighting import preflight_file

        scan_received(self.settings, AlwaysClean(), file_id)
        preflight_file(self.settings, file_id)

    def land(self, order, name: str, data: bytes) -> int:
        file = self.staged(order, name, io.BytesIO(data), len(data))
        self.clean(file.id)
        return file.id

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if getattr(self, "proxy", None) is not None:
            stop(self.proxy)


# --- the agent's host ------------------------------------------------------------------------


class AgentHost:
    """An agent directory with [agent] only, and the running agent."""

    def __init__(self, directory: Path, portal: PortalHost, downloads: int = 4) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        # A self-signed certificate is its own CA. (Only the certificate part is needed;
        # the agent ignores the key that shares the file here.)
        shutil.copy(portal.certificate, directory / "portal-ca.pem")
        self.hotfolders = directory / "hotfolders"
        self.notifications = directory / "notifications"
        (directory / "client.ini").write_text(
            f"""[agent]
portal_url = {portal.url}
token = {portal.token}
ca_file = portal-ca.pem
state_dir = state
hotfolder_root = hotfolders
notification_dir = notifications
batch_window_seconds = 0
downloads = {downloads}
heartbeat_seconds = 5
rescan_seconds = 600
""",
            encoding="utf-8",
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with (self.directory / "agent.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hotfolder_agent", "--config", "client.ini"],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

    def xml_count(self) -> int:
        return len(os.listdir(self.notifications)) if self.notifications.is_dir() else 0

    def wait_for_xml(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.xml_count() < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(
                    f"only {self.xml_count()} of {count} XMLs; see {self.directory}/agent.log"
                )
            time.sleep(0.01)

    def peak_rss_mib(self) -> float:
        return memory_kib(self.process.pid) / 1024

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


# --- baselines over SSH ------------------------------------------------------------------------


def ssh_command(sshd: Sshd) -> str:
    return (
        f"ssh -p {sshd.port} -i {sshd.key} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
    )


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def rsync_seconds(sshd: Sshd, source: Path, target: Path, *options: str) -> tuple[float, float]:
    """``rsync -a`` over SSH from 127.0.0.1; (seconds, seconds including ``sync``)."""
    command = [
        "rsync",
        "-a",
        *options,
        "-e",
        ssh_command(sshd),
        f"{sshd.user}@127.0.0.1:{source}/",
        f"{target}/",
    ]
    copied = timed(command)
    synced = copied + timed(["sync"])
    return copied, synced


def sftp_get_seconds(sshd: Sshd, source: Path, target: Path, fsync: bool) -> float:
    batch = sshd.directory / "get-batch"
    batch.write_text(f'get {"-f " if fsync else ""}"{source}" "{target}"\n')
    command = [
        "sftp", "-q", "-b", str(batch), "-i", str(sshd.key), "-P", str(sshd.port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{sshd.user}@127.0.0.1",
    ]  # fmt: skip
    seconds = timed(command)
    if target.stat().st_size != source.stat().st_size:
        raise SystemExit("sftp fetched a file of the wrong size")
    target.unlink()
    subprocess.run(["sync"], check=True)
    return seconds


# --- the three parts ---------------------------------------------------------------------------


def latency(portal: PortalHost, directory: Path, args: argparse.Namespace) -> None:
    order = portal.order("LAT-1")
    agent = AgentHost(directory / "agent-latency", portal)
    agent.start()
    hotfolder = agent.hotfolders / CUSTOMER_NO / "LAT-1"
    to_hotfolder, to_xml = [], []
    try:
        time.sleep(2)  # started, and waiting in its long poll
        for number in range(args.files):
            data = os.urandom(args.size)
            file = portal.staged(order, f"f{number}.pdf", io.BytesIO(data), len(data))
            xml = agent.notifications / f"LAT-1_{file.id:06d}.xml"
            placed = hotfolder / f"f{number}.pdf"
            started = time.perf_counter()
            portal.clean(file.id)
            while not placed.exists():
                time.sleep(0.001)
            to_hotfolder.append(time.perf_counter() - started)
            while not xml.exists():
                time.sleep(0.001)
            to_xml.append(time.perf_counter() - started)
            time.sleep(args.interval)
    finally:
        agent.stop()
    note = f"{args.files} files of {size_text(args.size)}, one every {args.interval} s"
    report(BENCH, "clean → in hotfolder, median", median(to_hotfolder) * 1000, "ms", note=note)
    report(BENCH, "clean → in hotfolder, p99", percentile(to_hotfolder, 0.99) * 1000, "ms")
    report(BENCH, "clean → XML written, median", median(to_xml) * 1000, "ms")
    p99 = percentile(to_xml, 0.99)
    report(BENCH, "clean → XML written, p99", p99 * 1000, "ms", target="≤ 500 ms", met=p99 <= 0.5)


def throughput(portal: PortalHost, sshd: Sshd, directory: Path, args: argparse.Namespace) -> None:
    order = portal.order("BULK-1")
    pool = os.urandom(8 * MiB)
    for number in range(args.bulk):
        offset = (number * 4099) % (len(pool) - args.bulk_size) if args.bulk_size < len(pool) else 0
        portal.land(order, f"bulk{number}.pdf", (pool[offset:] + pool)[: args.bulk_size])
    subprocess.run(["sync"], check=True)
    source = portal.settings.storage.order_root / CUSTOMER_NO / "BULK-1" / "Eingehend"
    target = directory / "rsync-target"
    rsync, rsync_synced = rsync_seconds(sshd, source, target)
    shutil.rmtree(target)
    subprocess.run(["sync"], check=True)
    rsync_fsync, _synced = rsync_seconds(sshd, source, target, "--fsync")
    shutil.rmtree(target)
    subprocess.run(["sync"], check=True)
    agent = AgentHost(directory / "agent-bulk", portal)
    started = time.perf_counter()
    agent.start()
    try:
        agent.wait_for_xml(args.bulk, timeout=1800)
        seconds = time.perf_counter() - started
    finally:
        agent.stop()
    total = args.bulk * args.bulk_size / MiB
    note = f"{args.bulk} × {size_text(args.bulk_size)}, agent start to last XML"
    report(BENCH, "bulk: rsync -a over SSH", rsync, "s", note=f"{total / rsync:.0f} MiB/s")
    report(
        BENCH,
        "bulk: rsync -a over SSH, then sync",
        rsync_synced,
        "s",
        note=f"{total / rsync_synced:.0f} MiB/s",
    )
    report(
        BENCH,
        "bulk: rsync -a --fsync over SSH",
        rsync_fsync,
        "s",
        note=f"{total / rsync_fsync:.0f} MiB/s; each file durable, as the agent's",
    )
    report(
        BENCH,
        "bulk: agent (durable, verified, one XML each)",
        seconds,
        "s",
        baseline="rsync -a",
        baseline_value=rsync,
        ratio=rsync / seconds,
        target="≥ 1.0 × rsync -a",
        met=rsync / seconds >= 1.0,
        note=f"{note}; {total / seconds:.0f} MiB/s; × rsync -a + sync "
        f"{rsync_synced / seconds:.2f}; × rsync -a --fsync {rsync_fsync / seconds:.2f}",
    )


def big_file(
    portal: PortalHost, sshd: Sshd, directory: Path, size: int, name: str, baseline: bool
) -> float:
    """One file of ``size``: sftp get (if ``baseline``), then the agent, running and waiting
    as in production, from the moment the file turns clean to its XML; returns the
    agent's peak RSS."""
    order = portal.order(name)
    source = directory / f"{name}.bin"
    write_random_file(source, size)
    with source.open("rb") as body:
        file = portal.staged(order, f"{name}.pdf", body, size)
    source.unlink()
    agent = AgentHost(directory / f"agent-{name}", portal)
    agent.start()
    try:
        time.sleep(3)  # started, and waiting in its long poll
        subprocess.run(["sync"], check=True)
        started = time.perf_counter()
        portal.clean(file.id)
        agent.wait_for_xml(1, timeout=1800)
        seconds = time.perf_counter() - started
        rss = agent.peak_rss_mib()
    finally:
        agent.stop()
    placed = portal.settings.storage.order_root / CUSTOMER_NO / name / "Eingehend" / f"{name}.pdf"
    if baseline:
        subprocess.run(["sync"], check=True)
        get = sftp_get_seconds(sshd, placed, directory / "got.bin", fsync=False)
        get_fsync = sftp_get_seconds(sshd, placed, directory / "got.bin", fsync=True)
        report(
            BENCH, f"{size_text(size)}: sftp get", get, "s", note=f"{size / MiB / get:.0f} MiB/s"
        )
        report(
            BENCH,
            f"{size_text(size)}: sftp get -f (fsync)",
            get_fsync,
            "s",
            note=f"{size / MiB / get_fsync:.0f} MiB/s",
        )
        report(
            BENCH,
            f"{size_text(size)}: agent (fsync, SHA-256, XML)",
            seconds,
            "s",
            baseline="sftp get",
            baseline_value=get,
            ratio=get / seconds,
            target="≥ 1.0 × sftp get",
            met=get / seconds >= 1.0,
            note=f"{size / MiB / seconds:.0f} MiB/s, clean to XML, the agent running; "
            f"× sftp get -f {get_fsync / seconds:.2f}",
        )
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50 if quick() else 200)
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per latency file")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between files")
    parser.add_argument("--bulk", type=int, default=200 if quick() else 1000)
    parser.add_argument("--bulk-size", type=int, default=MiB, help="bytes per bulk file")
    size_option(parser, "agent-big", "1G", "256M", "the big file")
    size_option(parser, "agent-small", "256M", "64M", "the smaller file for the RSS comparison")
    parser.add_argument("--skip", default="", help="some of: latency throughput big")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--tls",
        choices=["nginx", "gunicorn"],
        default="nginx",
        help="where TLS ends: nginx in front of gunicorn (production) or gunicorn itself",
    )
    args = parser.parse_args()
    heading("4. Hotfolder agent over HTTPS (bench/agent.py)")
    with workdir(args.keep) as directory:
        portal = PortalHost(directory / "portal", nginx=args.tls == "nginx")
        sshd = Sshd(directory / "sshd").start()
        portal.start()
        try:
            if "latency" not in args.skip:
                latency(portal, directory, args)
            if "throughput" not in args.skip:
                throughput(portal, sshd, directory, args)
            if "big" not in args.skip:
                small = big_file(portal, sshd, directory, args.agent_small, "SMALL-1", False)
                big = big_file(portal, sshd, directory, args.agent_big, "BIG-1", True)
                report(
                    BENCH,
                    f"agent peak RSS, {size_text(args.agent_big)} file",
                    big,
                    "MiB",
                    target="≤ 60 MiB",
                    met=big <= 60,
                    note=f"{size_text(args.agent_small)} file: {small:.1f} MiB "
                    f"(ratio {big / small:.2f}: flat in file size)",
                )
        finally:
            portal.stop()
            sshd.stop()


if __name__ == "__main__":
    main()
