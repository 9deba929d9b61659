"""Hotfolder agent: latency from Eingehend to hotfolder + XML, and throughput against rsync -a.

Sets up a throw-away client.ini (SQLite, memory queue) in a temporary directory,
places files in Eingehend the way the portal does (``start_upload`` and
``append_chunk`` into staging, then ``scan_received`` links the file into
Eingehend — clamd's verdict is stubbed as clean, the scan is not what is
measured), and runs the agent as in production, ``python -m hotfolder_agent``.

1. Latency, per watch mode: files land one at a time (``--interval`` apart); for
   each, the time from its commit in Eingehend to the moment the agent recorded
   its XML notification as written (and, separately, the copy as done), from the
   database's timestamps. Median and p99 over ``--files`` files.
2. Throughput: ``--bulk`` files of ``--bulk-size`` bytes lie in Eingehend, the agent
   starts and delivers them all (copy, fsync, verify, link, record, one XML each);
   the same files are copied with ``rsync -a`` and ``rsync -a --fsync`` first.

    .venv/bin/python bench/agent.py                  # 200 files per mode, 1,000 x 1 MiB
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.accounts.customers import upsert_customer  # noqa: E402
from shared.clock import utcnow  # noqa: E402
from shared.config import Settings, load_settings  # noqa: E402
from shared.db import bind_database, database, write_transaction  # noqa: E402
from shared.files.folders import create_order_folders  # noqa: E402
from shared.files.intake import scan_received  # noqa: E402
from shared.files.receiving import append_chunk, start_upload  # noqa: E402
from shared.files.scanning import ScanResult, ScanVerdict  # noqa: E402
from shared.models import AgentHeartbeat, Delivery, JobNotification, Order  # noqa: E402
from shared.schema import init_database  # noqa: E402

MiB = 1024 * 1024
ORDERS = 10


class AlwaysClean:
    """Stands in for clamd: the bench measures the agent, not the virus scan."""

    def scan_file(self, _path: Path) -> ScanResult:
        return ScanResult(ScanVerdict.CLEAN)


def write_ini(directory: Path, mode: str, poll: float, stable: float) -> Path:
    ini = directory / "client.ini"
    ini.write_text(
        f"""[portal]
base_url = http://127.0.0.1:5000
secret_key = {secrets.token_urlsafe(32)}
max_upload_bytes = 1G

[database]
url = sqlite:///{directory}/ptportal.db

[storage]
order_root = {directory}/orders
staging_root = {directory}/staging
quarantine_root = {directory}/quarantine

[smtp]
email = bench@example.com

[clamav]
clamd_conf = {ROOT}/shared/clamav/clamd.conf

[worker]
queue_url = memory://

[agent]
hotfolder_root = {directory}/hotfolders
notification_dir = {directory}/notifications
watch_mode = {mode}
poll_interval_seconds = {poll}
stable_seconds = {stable}
rescan_seconds = 600
batch_window_seconds = 0
heartbeat_seconds = 5
""",
        encoding="utf-8",
    )
    return ini


def prepare(directory: Path, mode: str, poll: float, stable: float) -> tuple[Settings, list]:
    settings = load_settings(write_ini(directory, mode, poll, stable))
    bind_database(settings.database.url)
    init_database("Benchmark")
    orders = []
    with write_transaction():
        customer, _ = upsert_customer("BENCH", name="Benchmark GmbH", email="b@example.com")
        for number in range(ORDERS):
            orders.append(Order.create(project_no=f"B-{number}", customer=customer))
    for order in orders:
        create_order_folders(settings.storage.order_root, "BENCH", order.project_no)
    return settings, orders


def land(settings: Settings, order: Order, name: str, data: bytes) -> tuple[int, datetime]:
    """Put one file into Eingehend as the portal does; returns its id and the landing time."""
    file = start_upload(settings, order, name, len(data))
    append_chunk(settings, file, 0, io.BytesIO(data), len(data))
    scan_received(settings, AlwaysClean(), file.id)
    return file.id, utcnow()


def start_agent(settings: Settings) -> subprocess.Popen:
    log = (settings.source.parent / "agent.log").open("ab")
    agent = subprocess.Popen(
        [sys.executable, "-m", "hotfolder_agent", "--config", str(settings.source)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    while not AgentHeartbeat.select().exists():
        if time.monotonic() > deadline or agent.poll() is not None:
            raise SystemExit("the agent did not start; see " + str(log.name))
        time.sleep(0.05)
    return agent


def stop_agent(agent: subprocess.Popen) -> None:
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=120)


def notified_count() -> int:
    return JobNotification.select().where(JobNotification.written_at.is_null(False)).count()


def wait_for_notifications(count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while notified_count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {notified_count()} of {count} notifications after {timeout} s")
        time.sleep(0.02)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency(mode: str, args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix=f"ptportal-bench-{mode}-", dir=args.dir))
    settings, orders = prepare(directory, mode, args.poll_interval, args.stable)
    agent = start_agent(settings)
    landed: dict[int, datetime] = {}
    try:
        for number in range(args.files):
            data = os.urandom(args.size)
            file_id, at = land(settings, orders[number % ORDERS], f"f{number}.pdf", data)
            landed[file_id] = at
            time.sleep(args.interval)
        wait_for_notifications(args.files, timeout=120)
    finally:
        stop_agent(agent)
    rows = (
        Delivery.select(Delivery, JobNotification)
        .join(JobNotification)
        .where(Delivery.file.in_(list(landed)))
    )
    to_xml, to_hotfolder = [], []
    for row in rows:
        start = landed[row.file_id]
        to_xml.append((row.notification.written_at - start).total_seconds() * 1000)
        to_hotfolder.append((row.done_at - start).total_seconds() * 1000)
    print(
        f"latency {mode:8} n={len(to_xml)}  file in hotfolder: median "
        f"{statistics.median(to_hotfolder):7.1f} ms  p99 {percentile(to_hotfolder, 0.99):7.1f} ms"
        f"   with XML written: median {statistics.median(to_xml):7.1f} ms"
        f"  p99 {percentile(to_xml, 0.99):7.1f} ms"
    )
    database.close()
    if not args.keep:
        shutil.rmtree(directory)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def throughput(args: argparse.Namespace) -> None:
    if shutil.which("rsync") is None:
        raise SystemExit("rsync is missing: apt-get install rsync")
    directory = Path(tempfile.mkdtemp(prefix="ptportal-bench-bulk-", dir=args.dir))
    settings, orders = prepare(directory, "native", args.poll_interval, args.stable)
    pool = os.urandom(8 * MiB)
    for number in range(args.bulk):
        offset = (number * 4099) % (len(pool) - args.bulk_size) if args.bulk_size < len(pool) else 0
        data = (pool[offset:] + pool)[: args.bulk_size]
        land(settings, orders[number % ORDERS], f"bulk{number}.pdf", data)
    total = args.bulk * args.bulk_size / MiB
    subprocess.run(["sync"], check=True)
    source = f"{settings.storage.order_root}/"
    results = {}
    for label, extra in (("rsync -a", []), ("rsync -a --fsync", ["--fsync"])):
        target = directory / f"rsync-{len(results)}"
        seconds = timed(["rsync", "-a", *extra, source, f"{target}/"]) + timed(["sync"])
        results[label] = seconds
        shutil.rmtree(target)
        subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    agent = start_agent(settings)
    try:
        wait_for_notifications(args.bulk, timeout=1800)
        results["agent (copy+fsync+verify+XML)"] = time.perf_counter() - started
    finally:
        stop_agent(agent)
    first = Delivery.select().order_by(Delivery.started_at).first().started_at
    last = Delivery.select().order_by(Delivery.done_at.desc()).first().done_at
    results["agent, first claim to last copy"] = (last - first).total_seconds()
    print(f"throughput: {args.bulk} files x {args.bulk_size // 1024} KiB = {total:.0f} MiB")
    base = results["rsync -a"]
    for label, seconds in results.items():
        print(
            f"  {label:34} {seconds:7.2f} s  {total / seconds:7.1f} MiB/s"
            f"  {args.bulk / seconds:7.1f} files/s  x{seconds / base:5.2f} rsync -a"
        )
    database.close()
    if not args.keep:
        shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files per latency run")
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per latency file")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between files")
    parser.add_argument("--stable", type=float, default=0.0, help="[agent] stable_seconds")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="polling mode interval")
    parser.add_argument("--bulk", type=int, default=1000, help="files for the throughput run")
    parser.add_argument("--bulk-size", type=int, default=MiB, help="bytes per throughput file")
    parser.add_argument("--modes", default="native,polling")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--dir", default=None, help="where the temporary directories go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()
    print(
        f"stable_seconds={args.stable} poll_interval_seconds={args.poll_interval} "
        f"batch_window_seconds=0 interval={args.interval}s size={args.size} bytes"
    )
    for mode in args.modes.split(","):
        latency(mode, args)
    if not args.skip_throughput:
        throughput(args)


if __name__ == "__main__":
    main()
