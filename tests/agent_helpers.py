"""The hotfolder agent under test: settings with an [agent] section, clean uploads, a running agent.

Everything is real: SQLite, clamd (EICAR-only signatures), watchdog, the file system.
``start_agent_process`` runs ``python -m hotfolder_agent`` as a child, for the
kill-and-restart tests; ``running_agent`` runs the same loop on a thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import base_sections, tasks_for, write_ini
from file_helpers import received

from hotfolder_agent.agent import Agent
from shared.accounts.customers import add_contact, upsert_customer
from shared.config import Settings, load_settings
from shared.db import bind_database, database, write_transaction
from shared.files.folders import create_order_folders
from shared.files.intake import make_scanner, scan_received
from shared.models import Order, OrderFile
from shared.schema import init_database
from shared.worker import BackgroundTasks

ROOT = Path(__file__).resolve().parent.parent

FAST_AGENT = {
    "hotfolder_root": "hotfolders",
    "notification_dir": "notifications",
    "stable_seconds": "0.2",
    "rescan_seconds": "2",
    "batch_window_seconds": "0",
    "heartbeat_seconds": "1",
    "poll_interval_seconds": "0.2",
}


def agent_settings(directory: Path, clamd, smtp_port: int = 2525, **agent: object) -> Settings:
    """A client.ini in ``directory`` for portal and agent, with fast agent timings."""
    sections = base_sections(
        smtp_port,
        clamav={"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        agent={**FAST_AGENT, **agent},
    )
    return load_settings(write_ini(directory, sections))


def make_order(settings: Settings, project_no: str, customer_no: str = "K1", **customer) -> Order:
    """A customer (created or updated) with an order and its folders."""
    with write_transaction():
        found, _ = upsert_customer(
            customer_no,
            name=customer.get("name", "Kunde GmbH"),
            email=customer.get("email", f"{customer_no.lower()}@example.com"),
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


@pytest.fixture(name="agent_world")
def agent_world_fixture(tmp_path, clamd):
    """Settings with fast agent timings and a bound database with order A1 of customer K1."""
    settings = agent_settings(tmp_path, clamd)
    bind_database(settings.database.url)
    init_database("Testdruck")
    order = make_order(settings, "A1")
    yield settings, order
    database.close()


def clean_upload(settings: Settings, order: Order, name: str, data: bytes) -> OrderFile:
    """A file uploaded and scanned clean by clamd: it is in Eingehend now."""
    file = received(settings, order, name, data)
    file = scan_received(settings, make_scanner(settings), file.id)
    assert file.state == OrderFile.STATE_CLEAN, file.state
    return file


def hotfolder_of(settings: Settings, customer_no: str, project_no: str) -> Path:
    return settings.agent.hotfolder_root / customer_no / project_no


def visible_files(directory: Path) -> list[str]:
    """Names of the regular files a hotfolder consumer would see (no hidden temporaries)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def all_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def notifications(settings: Settings) -> list[Path]:
    directory = settings.agent.notification_dir
    return sorted(directory.glob("*.xml")) if directory.is_dir() else []


def wait_for(condition: Callable[[], object], timeout: float = 15.0, step: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s: {condition}")


@contextmanager
def running_agent(settings: Settings, tasks: BackgroundTasks | None = None) -> Iterator[Agent]:
    """The agent's loop on a thread (immediate task queue); stopped and joined afterwards."""
    agent = Agent(settings, tasks=tasks or tasks_for(settings))
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(agent.run()), daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        agent.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the agent did not stop"
        assert outcome == [0]


# --- the agent as a child process ----------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def _without_file_override() -> None:
    """In the child, before exec: root loses the right to ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


class AgentProcess:
    """``python -m hotfolder_agent`` with its stderr in a file."""

    def __init__(self, ini: Path, log_file: Path, env: dict[str, str], obey_permissions: bool):
        self.log_file = log_file
        self._log = log_file.open("ab")
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        preexec = _without_file_override if obey_permissions and os.geteuid() == 0 else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotfolder_agent", "--config", str(ini)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=ROOT,
            preexec_fn=preexec,  # only the capability drop, before exec
        )

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no handler, no clean-up — a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)  # reaped: its pid is gone for the next agent
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

    def children(self) -> list[int]:
        """Process ids of the agent's worker processes (while the agent runs)."""
        return [pid for pid in _all_pids() if _stat(pid)[1] == self.process.pid]


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) of a process; ("X", 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return "X", 0
    return fields[0], int(fields[1])


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and has not ended (a zombie has ended)."""
    return _stat(pid)[0] not in ("X", "Z")


def start_agent_process(
    settings: Settings,
    name: str = "agent",
    env: dict[str, str] | None = None,
    obey_permissions: bool = False,
) -> AgentProcess:
    """Start the agent for ``settings``' client.ini; its log goes to ``<name>.log`` beside it."""
    directory = settings.source.parent
    return AgentProcess(settings.source, directory / f"{name}.log", env or {}, obey_permissions)
