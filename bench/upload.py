"""Upload throughput and memory: one file through the real portal under gunicorn, against dd.

Sets up a throw-away client.ini (SQLite, memory queue) in a temporary directory,
creates a customer, an order and an active portal login through ``shared``,
starts ``python -m portal serve`` (gunicorn, 1 worker, 4 threads), signs in
over HTTP like a browser and sends one file with tus in chunks of
``upload_chunk_bytes``. Then writes the same number of bytes with ``dd`` to the
same disk as a baseline. See bench/README.md.

    .venv/bin/python bench/upload.py --size 1G
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import http.cookiejar
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
PIECE = MiB
POOL_BYTES = 64 * MiB
CUSTOMER_NO = "BENCH"
PROJECT_NO = "BENCH-1"
USERNAME = "bench"
UNITS = {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB, "T": 1024 * 1024 * MiB}


def parse_size(text: str) -> int:
    """``256M``, ``1G``, ``1048576``."""
    match = re.fullmatch(r"(\d+)([KMGT]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 256M or 1G)")
    return int(match.group(1)) * UNITS[match.group(2).upper()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_ini(directory: Path, port: int, size: int, chunk: int) -> Path:
    """A client.ini for this run; cheap Argon2 so signing in does not raise the worker's RSS."""
    ini = directory / "client.ini"
    ini.write_text(
        f"""[portal]
base_url = http://127.0.0.1:{port}
secret_key = {secrets.token_urlsafe(32)}
shop_name = Benchmark
max_upload_bytes = {max(size, 20 * 1024 * MiB)}
upload_chunk_bytes = {chunk}

[database]
url = sqlite:///{directory}/ptportal.db

[storage]
order_root = {directory}/orders
staging_root = {directory}/staging
quarantine_root = {directory}/quarantine

[workflow]
portal_create_uplogin_automatically = 0
portal_send_uplogin_email_automatically = 0

[smtp]
email = bench@example.com
security = none

[worker]
queue_url = memory://

[security]
argon2_time_cost = 1
argon2_memory_kib = 64
argon2_parallelism = 1
""",
        encoding="utf-8",
    )
    return ini


def prepare_database(ini: Path, password: str) -> None:
    """Customer, order and an active login with ``password``, straight through ``shared``."""
    from shared.accounts import create_login
    from shared.config import load_settings
    from shared.customers import upsert_customer
    from shared.db import bind_database, database, write_transaction
    from shared.models import PortalLogin
    from shared.orders import create_order
    from shared.passwords import PasswordVault
    from shared.schema import init_database

    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database(settings.portal.shop_name)
    with write_transaction():
        customer, _ = upsert_customer(
            CUSTOMER_NO, name="Benchmark", email="bench@example.com", portal_enabled=True
        )
        login = create_login(customer, username=USERNAME, state=PortalLogin.STATE_ACTIVE)
        login.password_hash = PasswordVault(settings.security).hash(password)
        login.save()
    create_order(settings, project_no=PROJECT_NO, customer_no=CUSTOMER_NO)
    database.close()


def start_portal(ini: Path, port: int, log_file: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "portal", "--config", str(ini), "serve"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
    with log_file.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(port: int, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the portal stopped during start-up; see portal.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the portal did not answer within 30 s")


def worker_pid(master_pid: int) -> int:
    """The gunicorn worker: the master's only child."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (peak RSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(base: str, password: str) -> tuple[str, str]:
    """Sign in like a browser; returns the Cookie header and a CSRF token of the session."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(f"{base}/login") as page:
        token = _CSRF.search(page.read().decode()).group(1)
    form = {"csrf_token": token, "username": USERNAME, "password": password}
    with browser.open(f"{base}/login", data=urllib.parse.urlencode(form).encode()) as page:
        html = page.read().decode()
        if urllib.parse.urlsplit(page.url).path == "/login":
            raise SystemExit("signing in failed")
    # Signing in starts a new session and with it a new CSRF token.
    token = _CSRF.search(html).group(1)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar), token


class RandomSource:
    """Incompressible bytes at no cost per byte: 1 MiB slices of a 64 MiB urandom pool.

    Generating fresh random data runs at about 200 MB/s on one core, slower than
    the disk; slicing a pool at varying offsets keeps the client out of the way.
    The SHA-256 is computed as the bytes are sent.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.pool = memoryview(os.urandom(POOL_BYTES))
        self.digest = hashlib.sha256()

    def _piece(self, index: int) -> memoryview:
        start = (index * 7919 * 4096) % (POOL_BYTES - PIECE)
        return self.pool[start : start + min(PIECE, self.size - index * PIECE)]

    def pieces(self, start: int, end: int) -> Iterator[memoryview]:
        position = start
        while position < end:
            index, skip = divmod(position, PIECE)
            piece = self._piece(index)[skip : skip + end - position]
            self.digest.update(piece)
            yield piece
            position += len(piece)


def upload(port: int, cookie: str, csrf: str, source: RandomSource, chunk: int) -> str:
    """Send the file with tus; returns its upload key."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    common = {"Tus-Resumable": "1.0.0", "Cookie": cookie, "X-CSRFToken": csrf}
    name = base64.b64encode(b"bench.bin").decode()
    headers = common | {"Upload-Length": str(source.size), "Upload-Metadata": f"filename {name}"}
    connection.request("POST", f"/orders/{PROJECT_NO}/uploads", headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 201:
        raise SystemExit(f"creating the upload failed: {answer.status}")
    location = answer.getheader("Location")
    offset = 0
    while offset < source.size:
        end = min(offset + chunk, source.size)
        headers = common | {
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(end - offset),
            "Upload-Offset": str(offset),
        }
        connection.request("PATCH", location, body=source.pieces(offset, end), headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 204:
            raise SystemExit(f"PATCH at {offset} failed: {answer.status} {body[:200]!r}")
        offset = int(answer.getheader("Upload-Offset"))
    connection.close()
    return location.rsplit("/", 1)[1]


def server_sha256(ini: Path, upload_key: str) -> tuple[str | None, Path]:
    from shared.config import load_settings
    from shared.db import bind_database, database
    from shared.models import OrderFile
    from shared.uploads import staging_path

    settings = load_settings(ini)
    bind_database(settings.database.url)
    file = OrderFile.get(OrderFile.upload_key == upload_key)
    database.close()
    return file.sha256, staging_path(settings, file)


def dd_seconds(directory: Path, size: int) -> float:
    """The same number of bytes written by dd to the same disk, flushed like the upload."""
    target = directory / "dd.bin"
    started = time.perf_counter()
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={size}"]
    subprocess.run([*command, "iflag=count_bytes", "conv=fsync", "status=none"], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def machine() -> str:
    memory_kib_total = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} CPUs, {memory_kib_total / MiB:.1f} GiB RAM"


def run(directory: Path, size: int, chunk: int) -> None:
    port = free_port()
    password = secrets.token_urlsafe(16)
    ini = write_ini(directory, port, size, chunk)
    prepare_database(ini, password)
    server = start_portal(ini, port, directory / "portal.log")
    try:
        wait_until_up(port, server)
        worker = worker_pid(server.pid)
        cookie, csrf = sign_in(f"http://127.0.0.1:{port}", password)
        rss_before = memory_kib(worker, "VmRSS")
        source = RandomSource(size)
        cpu_before, client_cpu_before = cpu_seconds(worker), time.process_time()
        started = time.perf_counter()
        key = upload(port, cookie, csrf, source, chunk)
        seconds = time.perf_counter() - started
        worker_cpu = cpu_seconds(worker) - cpu_before
        client_cpu = time.process_time() - client_cpu_before
        peak = memory_kib(worker, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=60)
    stored_hash, staged = server_sha256(ini, key)
    staged.unlink()
    baseline = dd_seconds(directory, size)

    rate = size / MiB / seconds
    dd_rate = size / MiB / baseline
    print(f"machine:          {machine()}; data in {directory}")
    print(f"file:             {size / MiB:.0f} MiB in chunks of {chunk / MiB:.0f} MiB")
    print(f"upload:           {seconds:.2f} s, {rate:.0f} MiB/s")
    print(f"dd bs=4M fsync:   {baseline:.2f} s, {dd_rate:.0f} MiB/s")
    print(f"upload / dd:      {rate / dd_rate:.2f}")
    print(f"worker RSS:       {rss_before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB")
    print(f"CPU seconds:      worker {worker_cpu:.2f}, this client {client_cpu:.2f}")
    print(f"SHA-256 matched:  {stored_hash == source.digest.hexdigest()} ({stored_hash})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"), help="e.g. 256M, 1G")
    parser.add_argument(
        "--chunk", type=parse_size, default=parse_size("64M"), help="upload_chunk_bytes (64M)"
    )
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    directory = options.dir or Path(tempfile.mkdtemp(prefix="ptportal-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    try:
        run(directory, options.size, options.chunk)
    finally:
        if not options.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
