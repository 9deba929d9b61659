"""Two hosts on one machine: the portal (gunicorn over TLS) and hotfolder agents, each in
its own directory with its own client.ini.

The portal's directory holds its database, storage and a certificate from a trustme
CA; the agent's directory holds a client.ini with ``[agent]`` alone (no database URL, no
order root), the CA to trust, its hotfolders, notifications and state folder. Tests
plant clean uploads the way the portal makes them (received in staging, scanned by the
real clamd, linked into Eingehend) and run ``python -m hotfolder_agent`` as a child.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import trustme
from conftest import base_sections, write_ini
from file_helpers import received
from smtp_helpers import free_port

from shared.accounts.api_tokens import SCOPE_AGENT, create_token
from shared.accounts.customers import add_contact, upsert_customer
from shared.config import AgentSettings, Settings, load_agent_settings, load_settings
from shared.db import bind_database, database, write_transaction
from shared.files.folders import create_order_folders
from shared.files.intake import make_scanner, scan_received
from shared.files.preflighting import preflight_file
from shared.models import Order, OrderFile, Proof
from shared.schema import init_database

ROOT = Path(__file__).resolve().parent.parent

FAST_AGENT = {
    "hotfolder_root": "hotfolders",
    "notification_dir": "notifications",
    "state_dir": "state",
    "stable_seconds": "0.2",
    "rescan_seconds": "2",
    "batch_window_seconds": "0",
    "heartbeat_seconds": "1",
    "poll_interval_seconds": "0.2",
    "timeout_seconds": "5",
}


def wait_for(condition: Callable[[], object], timeout: float = 15.0, step: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s: {condition}")


# --- the portal's host ---------------------------------------------------------------------


@dataclass
class PortalHost:
    """The portal's directory: settings (database bound in this process) and TLS files."""

    directory: Path
    settings: Settings
    port: int
    certificate: Path
    ca: trustme.CA
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self, name: str = "portal") -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def agent_token(self, name: str = "agent") -> str:
        return create_token(name, SCOPE_AGENT)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def portal_host(directory: Path, clamd, **ini: dict[str, object]) -> PortalHost:
    """A portal directory with its database, a CA and a certificate for 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    sections = {
        "portal": {"base_url": f"https://127.0.0.1:{port}"},
        "clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        "worker": {"queue_url": "sqlite:///data/queue.db"},
    }
    for section, values in ini.items():
        sections.setdefault(section, {}).update(values)
    settings = load_settings(write_ini(directory, base_sections(2525, **sections)))
    bind_database(settings.database.url)
    init_database("Testdruck")
    ca = trustme.CA()
    certificate = directory / "server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(certificate)
    )
    return PortalHost(directory, settings, port, certificate, ca)


def serve(host: PortalHost, workers: int = 2, with_worker: bool = False) -> None:
    """Start gunicorn over TLS (and ``ptportal worker``) for ``host``; wait until it answers."""
    command = [sys.executable, "-m", "portal", "--config", str(host.settings.source)]
    started = [
        [
            *command,
            "serve",
            "--bind",
            f"127.0.0.1:{host.port}",
            "--workers",
            str(workers),
            "--threads",
            "8",
            "--certfile",
            str(host.certificate),
        ]
    ]
    names = ["portal"]
    if with_worker:
        started.append([*command, "worker", "--workers", "2"])
        names.append("worker")
    for name, argv in zip(names, started, strict=True):
        with (host.directory / f"{name}.log").open("ab") as log:
            host.processes.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            )
    context = host.tls_context()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{host.url}/healthz", timeout=2, context=context):
                return
        except OSError:
            if host.processes[0].poll() is not None:
                raise AssertionError(f"the portal did not start:\n{host.log()}") from None
            time.sleep(0.1)
    raise AssertionError(f"the portal did not answer:\n{host.log()}")


def stop_serving(host: PortalHost) -> None:
    for process in host.processes:
        if process.poll() is None:
            process.terminate()
    for process in host.processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    host.processes.clear()


@contextmanager
def running_portal(directory: Path, clamd, **options) -> Iterator[PortalHost]:
    """``portal_host`` served by gunicorn over TLS until the block ends."""
    with_worker = options.pop("with_worker", False)
    workers = options.pop("workers", 2)
    host = portal_host(directory, clamd, **options)
    try:
        serve(host, workers=workers, with_worker=with_worker)
        yield host
    finally:
        stop_serving(host)
        database.close()


def make_order(settings: Settings, project_no: str, customer_no: str = "K1", **customer) -> Order:
    """A customer (created or updated) with an order and its folders."""
    with write_transaction():
        found, _ = upsert_customer(
            customer_no,
            name=customer.get("name", "Kunde GmbH"),
            email=customer.get("email", f"{customer_no.lower()}@example.com"),
            create_hotfolder=customer.get("create_hotfolder", True),
        )
        if customer.get("contact"):
            add_contact(found, customer["contact"], customer.get("contact_name", ""), True)
        order = Order.create(
            project_no=project_no,
            customer=found,
            folders_created=True,
            job_description=customer.get("job", "Flyer A5"),
        )
    create_order_folders(settings.storage.order_root, customer_no, project_no)
    return order


def scanned_and_checked(settings: Settings, file_id: int) -> OrderFile:
    """What the worker does with a received file: the real clamd's scan, then the preflight
    (agents take a clean file once it is checked)."""
    file = scan_received(settings, make_scanner(settings), file_id)
    assert file.state == OrderFile.STATE_CLEAN, file.state
    preflight_file(settings, file_id)
    return OrderFile.get_by_id(file_id)


def clean_upload(settings: Settings, order: Order, name: str, data: bytes) -> OrderFile:
    """A file uploaded, scanned clean by the real clamd and checked: in Eingehend now."""
    return scanned_and_checked(settings, received(settings, order, name, data).id)


def decided_proof(order: Order, version: int = 1, decision: str = "approved") -> Proof:
    """A proof of ``order`` the customer decided on (the rows ``shared.orders.proofs``
    writes; the way there is tests/test_proofs.py's)."""
    sha256 = hashlib.sha256(b"proof %d" % version).hexdigest()
    with write_transaction():
        return Proof.create(
            order=order,
            version=version,
            file_name=f"Proof {version}.pdf",
            file_size=1000,
            sha256=sha256,
            requested_by_name="Anna Muster",
            decision=decision,
            decided_at=datetime(2026, 5, 4, 10, 0, version),
            decided_by_username="k1",
            decided_from="203.0.113.5",
            decision_comment="Passt so." if decision == "approved" else "Logo größer.",
            decision_sha256=sha256,
        )


def portal_copy(settings: Settings, file: OrderFile) -> bytes:
    """The bytes of ``file`` in the portal's storage (what must arrive)."""
    order = file.order
    folder = settings.storage.order_root / order.customer.customer_no / order.project_no
    return (folder / file.folder / file.stored_name).read_bytes()


# --- the agent's host ------------------------------------------------------------------------


def agent_dir(
    directory: Path, host: PortalHost, token: str | None = None, **agent
) -> AgentSettings:
    """An agent's directory: client.ini with [agent] only, the portal's CA, fast timings."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "portal-ca.pem"
    host.ca.cert_pem.write_to_path(str(ca_file))
    values = {
        "portal_url": host.url,
        "token": token if token is not None else host.agent_token(f"agent-{directory.name}"),
        "ca_file": ca_file.name,
        **FAST_AGENT,
        **agent,
    }
    return load_agent_settings(write_ini(directory, {"agent": values}))


def hotfolder_of(settings: AgentSettings, customer_no: str, project_no: str) -> Path:
    return settings.hotfolder_root / customer_no / project_no


def visible_files(directory: Path) -> list[str]:
    """Names of the regular files a hotfolder consumer would see (no hidden temporaries)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def all_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def notifications(settings: AgentSettings) -> list[Path]:
    directory = settings.notification_dir
    return sorted(directory.glob("*.xml")) if directory.is_dir() else []


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def without_file_override() -> None:
    """In a child, before exec: root loses the right to ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


class AgentProcess:
    """``python -m hotfolder_agent`` for an agent directory, its output in a log file."""

    def __init__(
        self,
        settings: AgentSettings,
        name: str = "agent",
        env: dict[str, str] | None = None,
        obey_permissions: bool = False,
    ) -> None:
        self.settings = settings
        self.log_file = settings.source.parent / f"{name}.log"
        self._log = self.log_file.open("ab")
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        preexec = without_file_override if obey_permissions and os.geteuid() == 0 else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotfolder_agent", "--config", str(settings.source)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=settings.source.parent,
            preexec_fn=preexec,  # only the capability drop, before exec
        )

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no handler, no clean-up — a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and the exit status; an agent still running after ``timeout`` fails the
        test with the stacks of its threads (SIGUSR1) in the message."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(
                f"the agent did not stop within {timeout} s of SIGTERM:\n{self.log[-20_000:]}"
            ) from None
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()
        else:
            self._log.close()
