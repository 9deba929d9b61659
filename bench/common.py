"""What the benchmarks share: a portal system in a temp dir, clamd, sshd, a tus client, figures.

Every benchmark starts the real processes (``python -m portal serve`` under gunicorn,
``python -m portal worker``, Debian's clamd and sshd) on localhost with a throw-away
client.ini, measures, and prints each figure next to its baseline. ``report`` also
appends each figure as one JSON line to ``$BENCH_RESULTS`` for ``bench/summary.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import http.client
import http.cookiejar
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
GiB = 1024 * MiB
POOL_BYTES = 64 * MiB
# Every bench file starts like a PDF: the portal refuses content of no type the shop
# accepts ([files] accepted_types), and random bytes are of none.
PDF_HEADER = b"%PDF-1.7\n"
CUSTOMER_NO = "BENCH"
PROJECT_NO = "BENCH-1"
USERNAME = "bench"
SHIPPED_CLAMD_CONF = ROOT / "shared" / "clamav" / "clamd.conf"
TEST_SIGNATURES = ROOT / "shared" / "clamav" / "test-signatures"
_UNITS = {"": 1, "K": 1024, "M": MiB, "G": GiB, "T": 1024 * GiB}
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
# Every client of a benchmark says it is the same browser. Flask-Login ties a session to
# the address and User-Agent it signed in with; another agent sending the session cookie
# makes the portal rewrite that cookie on every answer, which a browser would store once.
USER_AGENT = "ptportal-bench/1 (a browser)"


# --- options and figures ---------------------------------------------------------------


def parse_size(text: str) -> int:
    """``256M``, ``1G``, ``1048576`` → bytes."""
    match = re.fullmatch(r"(\d+)([KMGT]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 256M or 1G)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def size_text(size: int) -> str:
    """``1 GiB``, ``256 MiB``, ``256 KiB``."""
    if size >= GiB and size % GiB == 0:
        return f"{size // GiB} GiB"
    if size < MiB:
        return f"{size / 1024:.0f} KiB"
    return f"{size / MiB:.0f} MiB"


def quick() -> bool:
    """True when ``bench/run --quick`` asked for small sizes (``BENCH_QUICK=1``)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def size_option(parser: argparse.ArgumentParser, name: str, normal: str, small: str, text: str):
    """A size flag whose default is ``small`` under ``--quick``, overridable by ``BENCH_<NAME>``."""
    env = "BENCH_" + name.upper().replace("-", "_")
    default = os.environ.get(env) or (small if quick() else normal)
    parser.add_argument(
        f"--{name}", type=parse_size, default=parse_size(default), help=f"{text} (${env})"
    )


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return Path("/proc/loadavg").read_text().split()[0]


def heading(title: str) -> None:
    """Print a benchmark's title with the machine's load at its start."""
    print(f"\n== {title}  (load average {load_average()} on {os.cpu_count()} CPUs)", flush=True)


def report(
    bench: str,
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: str = "",
    baseline_value: float | None = None,
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> None:
    """Print one figure (with its baseline and ratio) and record it for the summary."""
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    line = f"  {figure:<44} {value:>10.2f} {unit:<8}"
    if baseline:
        line += f" vs {baseline} {baseline_value:.2f}" if baseline_value is not None else baseline
    if ratio is not None:
        line += f"  ratio {ratio:.2f}"
    if target:
        line += f"  target {target}" + ("" if met is None else (" OK" if met else " MISSED"))
    if note:
        line += f"  ({note})"
    print(line, flush=True)
    record = {
        "bench": bench,
        "figure": figure,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
        "note": note,
    }
    results = os.environ.get("BENCH_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def machine_details() -> dict[str, str]:
    """nproc, RAM, disk, kernel and the versions that matter, for bench/README.md."""
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    source = subprocess.run(
        ["findmnt", "-no", "SOURCE,FSTYPE", "--target", tempfile.gettempdir()],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    disk = "?"
    if source:
        device = Path(source[0]).name
        rotational = Path(f"/sys/block/{device}/queue/rotational")
        kind = f"rotational={rotational.read_text().strip()}" if rotational.exists() else "?"
        disk = f"{source[0]} {source[1] if len(source) > 1 else ''} ({kind})"
    return {
        "cpus": f"{os.cpu_count()} × {cpu}",
        "memory": f"{memory_kib / MiB:.1f} GiB",
        "disk": disk,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": ", ".join(_versions()),
    }


def _versions() -> Iterator[str]:
    from importlib.metadata import PackageNotFoundError, version

    for package in ("gunicorn", "Werkzeug", "Flask", "peewee", "argon2-cffi"):
        with contextlib.suppress(PackageNotFoundError):
            yield f"{package} {version(package)}"
    for command in (["clamd", "--version"], ["ssh", "-V"], ["wrk", "--version"]):
        binary = shutil.which(command[0], path=os.environ.get("PATH", "") + ":/usr/sbin")
        if binary:
            run = subprocess.run([binary, *command[1:]], capture_output=True, text=True)
            text = (run.stdout or run.stderr).strip().splitlines()
            if text:
                yield text[0].split(" Copyright")[0].split(" [")[0].split(",")[0][:40]


# --- processes ---------------------------------------------------------------------------


def memory_kib(pid: int, field_name: str = "VmHWM") -> int:
    """``VmRSS`` / ``VmHWM`` (peak RSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak_rss(pid: int) -> None:
    """Start measuring VmHWM afresh from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's master → its workers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    """A new directory on the disk under test (``$BENCH_DIR`` or the temp dir), removed after."""
    parent = os.environ.get("BENCH_DIR") or None
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="ptportal-bench-", dir=parent)).resolve()
    try:
        yield directory
    finally:
        if keep:
            print(f"  (kept {directory})")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def random_pool() -> memoryview:
    """``POOL_BYTES`` random bytes whose first ones are a PDF header (files start at 0)."""
    pool = bytearray(os.urandom(POOL_BYTES))
    pool[: len(PDF_HEADER)] = PDF_HEADER
    return memoryview(bytes(pool))


def write_random_file(path: Path, size: int) -> str:
    """Write ``size`` incompressible bytes; returns their SHA-256.

    Fresh random bytes come at about 200 MB/s per core, slower than the disk, so
    the file is made of 1 MiB slices of a 64 MiB urandom pool at varying offsets.
    """
    pool = random_pool()
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        written, index = 0, 0
        while written < size:
            start = (index * 7919 * 4096) % (POOL_BYTES - MiB)
            piece = pool[start : start + min(MiB, size - written)]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
            index += 1
    return digest.hexdigest()


def dd_seconds(directory: Path, size: int) -> float:
    """The same number of bytes written by dd to the same disk, flushed (conv=fsync)."""
    target = directory / "dd.bin"
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={size}"]
    started = time.perf_counter()
    subprocess.run([*command, "iflag=count_bytes", "conv=fsync", "status=none"], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


# --- clamd -------------------------------------------------------------------------------


class Clamd:
    """A dedicated clamd: the shipped clamd.conf settings and the EICAR test signatures.

    Offline and quick to start. ``DisableCache yes`` because clamd otherwise remembers
    the hash of every clean file and answers a second scan of the same bytes from its
    cache, which would make whichever scan comes second look free.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "clamd.sock"
        database = directory / "db"
        shutil.copytree(TEST_SIGNATURES, database)
        (directory / "tmp").mkdir()
        local = [
            "Foreground yes",
            f"LocalSocket {self.socket}",
            f"DatabaseDirectory {database}",
            f"TemporaryDirectory {directory / 'tmp'}",
            f"PidFile {directory / 'clamd.pid'}",
            f"LogFile {directory / 'clamd.log'}",
            "SelfCheck 0",
            "DisableCache yes",
        ]
        self.conf = directory / "clamd.conf"
        self.conf.write_text("\n".join(local) + "\n" + SHIPPED_CLAMD_CONF.read_text())
        self.process: subprocess.Popen | None = None

    def start(self) -> Clamd:
        binary = shutil.which("clamd", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if binary is None:
            raise SystemExit("clamd is missing: bench/run installs clamav-daemon")
        with (self.directory / "clamd.out").open("wb") as out:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.socket))
                probe.sendall(b"nPING\n")
                if probe.recv(16).strip() == b"PONG":
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"clamd did not start: {(self.directory / 'clamd.out').read_text()}")

    def clamdscan_seconds(self, path: Path, *options: str) -> float:
        """``clamdscan`` of ``path`` on this clamd (clamd opens the file itself by default)."""
        command = ["clamdscan", "-c", str(self.conf), "--no-summary", *options, str(path)]
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if run.returncode != 0 or not run.stdout.strip().endswith("OK"):
            raise SystemExit(f"clamdscan failed: {run.stdout}{run.stderr}")
        return elapsed

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


# --- sshd and sftp -----------------------------------------------------------------------


class Sshd:
    """Debian's sshd on 127.0.0.1 with a throw-away host key and a user key made here."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = directory / "user_key"
        for key in (directory / "host_key", self.key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        shutil.copy(directory / "user_key.pub", directory / "authorized_keys")
        sftp_server = next(
            (
                path
                for path in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
                if Path(path).exists()
            ),
            "internal-sftp",
        )
        self.conf = directory / "sshd_config"
        self.conf.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nLogLevel ERROR\n"
            f"Subsystem sftp {sftp_server}\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> Sshd:
        binary = shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if binary is None:
            raise SystemExit("sshd is missing: bench/run installs openssh-server")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        log = (self.directory / "sshd.log").open("wb")
        self.process = subprocess.Popen([binary, "-D", "-e", "-f", str(self.conf)], stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.05)
        raise SystemExit(f"sshd did not start: {(self.directory / 'sshd.log').read_text()}")

    def put_seconds(self, source: Path, target: Path, fsync: bool = False) -> float:
        """Upload ``source`` to ``target`` with OpenSSH's sftp (``put -f``: fsync at the end)."""
        batch = self.directory / "batch"
        batch.write_text(f'put {"-f " if fsync else ""}"{source}" "{target}"\n')
        command = [
            "sftp",
            "-q",
            "-b",
            str(batch),
            "-i",
            str(self.key),
            "-P",
            str(self.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            f"{self.user}@127.0.0.1",
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if target.stat().st_size != source.stat().st_size:
            raise SystemExit("sftp stored a file of the wrong size")
        return elapsed

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


# --- the portal ----------------------------------------------------------------------------


@dataclass
class Portal:
    """A running portal: its client.ini, port, processes and the bench login's password."""

    directory: Path
    ini: Path
    port: int
    password: str
    server: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    extra: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        return children(self.server.pid)

    def settings(self):
        from shared.config import load_settings

        return load_settings(self.ini)


def write_ini(
    directory: Path,
    port: int,
    *,
    clamd_conf: Path,
    clamd_address: str = "/nonexistent/clamd.sock",
    scan_mode: str = "auto",
    chunk: int = 64 * MiB,
    cheap_argon2: bool = True,
    queue: str = "memory://",
    login_attempts: int = 10,
) -> Path:
    """A client.ini for one benchmark run, everything under ``directory``."""
    security = (
        "[security]\nargon2_time_cost = 1\nargon2_memory_kib = 64\nargon2_parallelism = 1\n"
        if cheap_argon2
        else ""
    )
    ini = directory / "client.ini"
    ini.write_text(
        f"""[portal]
base_url = http://127.0.0.1:{port}
secret_key = {secrets.token_urlsafe(32)}
shop_name = Benchmark
max_upload_bytes = 20G
upload_chunk_bytes = {chunk}
login_attempts_per_minute = {login_attempts}

[database]
url = sqlite:///{directory}/data/ptportal.db

[storage]
order_root = {directory}/data/orders
staging_root = {directory}/data/staging
quarantine_root = {directory}/data/quarantine

[workflow]
portal_create_uplogin_automatically = 0
portal_send_uplogin_email_automatically = 0

[smtp]
server = 127.0.0.1
port = 9
email = bench@example.com
security = none

[worker]
queue_url = {queue}

[clamav]
address = {clamd_address}
clamd_conf = {clamd_conf}
scan_mode = {scan_mode}
timeout_seconds = 600

{security}""",
        encoding="utf-8",
    )
    return ini


def bind(ini: Path):
    """Load the settings of ``ini`` and bind this process's database to them."""
    from shared.config import load_settings
    from shared.db import bind_database

    settings = load_settings(ini)
    bind_database(settings.database.url)
    return settings


def prepare_accounts(ini: Path, password: str) -> None:
    """Schema, a customer with an order and an active portal login with ``password``."""
    from portal.links import portal_links
    from shared.accounts.customers import upsert_customer
    from shared.accounts.logins import create_login
    from shared.accounts.passwords import PasswordVault
    from shared.db import database, write_transaction
    from shared.models import PortalLogin
    from shared.orders.orders import create_order
    from shared.schema import init_database

    settings = bind(ini)
    init_database(settings.portal.shop_name)
    with write_transaction():
        customer, _ = upsert_customer(
            CUSTOMER_NO, name="Benchmark", email="bench@example.com", portal_enabled=True
        )
        login = create_login(customer, username=USERNAME, state=PortalLogin.STATE_ACTIVE)
        login.password_hash = PasswordVault(settings.security).hash(password)
        login.save()
    links = portal_links(settings.portal.base_url)
    create_order(settings, links, project_no=PROJECT_NO, customer_no=CUSTOMER_NO)
    database.close()


@contextlib.contextmanager
def running_portal(
    directory: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    with_worker: bool = False,
    clamd: Clamd | None = None,
    prepare: Callable[[Path, str], None] = prepare_accounts,
    **ini_options,
) -> Iterator[Portal]:
    """The portal under gunicorn (and ``ptportal worker`` if asked) on a free port."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(16)
    if clamd is not None:
        ini_options.setdefault("clamd_conf", clamd.conf)
        ini_options.setdefault("clamd_address", str(clamd.socket))
    else:
        ini_options.setdefault("clamd_conf", SHIPPED_CLAMD_CONF)
    if with_worker:
        ini_options.setdefault("queue", f"sqlite:///{directory}/data/queue.db")
    ini = write_ini(directory, port, **ini_options)
    prepare(ini, password)
    portal = Portal(directory, ini, port, password)
    command = [sys.executable, "-m", "portal", "--config", str(ini)]
    serve = ["serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    try:
        with (directory / "portal.log").open("wb") as log:
            portal.server = subprocess.Popen(
                [*command, *serve, "--threads", str(threads)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if with_worker:
            with (directory / "worker.log").open("wb") as log:
                portal.worker = subprocess.Popen(
                    [*command, "worker"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        _wait_until_up(portal, workers)
        yield portal
    finally:
        for process in (portal.server, portal.worker):
            if process is not None:
                stop(process)


def _wait_until_up(portal: Portal, workers: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if portal.server.poll() is not None:
            raise SystemExit(
                f"the portal stopped during start-up; see {portal.directory}/portal.log"
            )
        try:
            with urllib.request.urlopen(f"{portal.base}/healthz", timeout=2) as answer:
                if answer.status == 200 and len(portal.worker_pids()) == workers:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the portal did not answer in time")


def sign_in(base: str, username: str, password: str, path: str = "/login") -> tuple[str, str]:
    """Sign in like a browser; returns the Cookie header and a CSRF token of the new session."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.addheaders = [("User-Agent", USER_AGENT)]
    with browser.open(f"{base}{path}") as page:
        token = CSRF_TOKEN.search(page.read().decode()).group(1)
    form = {"csrf_token": token, "username": username, "password": password}
    with browser.open(f"{base}{path}", data=urllib.parse.urlencode(form).encode()) as page:
        html = page.read().decode()
        if urllib.parse.urlsplit(page.url).path == path:
            raise SystemExit(f"signing in as {username} failed")
    found = CSRF_TOKEN.search(html)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar), (
        found.group(1) if found else ""
    )


# --- a tus client like the browser's ------------------------------------------------------


class FileBody:
    """Request bodies cut from a file on disk, sent with sendfile (the client costs ~nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def send(self, sock: socket.socket, start: int, end: int) -> None:
        with self.path.open("rb") as handle:
            sock.sendfile(handle, offset=start, count=end - start)


class PoolBody:
    """``size`` incompressible bytes from a 64 MiB random pool, without touching the disk."""

    def __init__(self, size: int, pool: memoryview | None = None) -> None:
        self.size = size
        self.pool = pool if pool is not None else random_pool()

    def send(self, sock: socket.socket, start: int, end: int) -> None:
        position = start
        while position < end:
            index, skip = divmod(position, MiB)
            offset = (index * 7919 * 4096) % (POOL_BYTES - MiB) + skip
            length = min(MiB - skip, end - position)
            sock.sendall(self.pool[offset : offset + length])
            position += length


@dataclass
class UploadTimes:
    key: str
    first_byte: float  # perf_counter when the first PATCH started
    last_answer: float  # perf_counter when the final PATCH was answered


def tus_upload(
    portal: Portal, cookie: str, csrf: str, body, chunk: int, name: str = "bench.bin"
) -> UploadTimes:
    """Create an upload and send ``body`` in PATCH requests of ``chunk`` bytes (tus 1.0)."""
    import base64

    connection = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=600)
    common = {
        "Tus-Resumable": "1.0.0",
        "Cookie": cookie,
        "X-CSRFToken": csrf,
        "User-Agent": USER_AGENT,
    }
    metadata = f"filename {base64.b64encode(name.encode()).decode()}"
    connection.request(
        "POST",
        f"/orders/{PROJECT_NO}/uploads",
        headers=common | {"Upload-Length": str(body.size), "Upload-Metadata": metadata},
    )
    answer = connection.getresponse()
    answer.read()
    if answer.status != 201:
        raise SystemExit(f"creating the upload failed: {answer.status}")
    location = answer.getheader("Location")
    offset, first_byte = 0, time.perf_counter()
    while offset < body.size:
        end = min(offset + chunk, body.size)
        connection.putrequest("PATCH", location, skip_accept_encoding=True)
        headers = common | {
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(end - offset),
            "Upload-Offset": str(offset),
        }
        for header, value in headers.items():
            connection.putheader(header, value)
        connection.endheaders()
        body.send(connection.sock, offset, end)
        answer = connection.getresponse()
        text = answer.read()
        if answer.status != 204:
            raise SystemExit(f"PATCH at {offset} failed: {answer.status} {text[:200]!r}")
        offset = int(answer.getheader("Upload-Offset"))
    last_answer = time.perf_counter()
    connection.close()
    return UploadTimes(location.rsplit("/", 1)[1], first_byte, last_answer)


def stored_file(portal: Portal, key: str):
    """The OrderFile row of an upload, read fresh from the database."""
    from shared.db import database
    from shared.models import OrderFile

    bind(portal.ini)
    try:
        return OrderFile.get(OrderFile.upload_key == key)
    finally:
        database.close()


# --- profiling -----------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(pid: int, output: Path, enabled: bool, idle: bool = False) -> Iterator[None]:
    """Sample ``pid`` with py-spy (``--profile``) while the block runs; print the top frames.

    ``idle`` counts waiting threads too (sleeps, fsyncs, sockets): where the time goes, not
    only where the CPU goes."""
    if not enabled:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent) + ":" + os.environ["PATH"])
    if spy is None:
        raise SystemExit("py-spy is missing: pip install -e '.[bench]'")
    process = subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(output),
            "--nonblocking",
            *(["--idle"] if idle else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes what it has
        process.wait(timeout=60)
        print_profile(output)


def print_profile(raw: Path, top: int = 12) -> None:
    """The functions with the most samples at the top of the stack (self time)."""
    if not raw.exists():
        print("  (py-spy wrote no profile)")
        return
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frame = stack.rsplit(";", 1)[-1]
        counts[frame] = counts.get(frame, 0) + int(number)
        total += int(number)
    print(f"  py-spy, {total} samples, self time (raw profile in {raw}):")
    for frame, number in sorted(counts.items(), key=lambda item: -item[1])[:top]:
        print(f"    {100 * number / max(total, 1):5.1f} %  {frame}")
