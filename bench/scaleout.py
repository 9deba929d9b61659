"""Benchmark 9, scale-out: 100 clients upload 20 MiB each through nginx, to one node, then two.

One database and one storage directory; every node is its own ``ptportal serve``
(gunicorn, 2 gthread workers × 8 threads) and nginx balances over them with the README's
proxy settings (``tests/nginx_helpers.py``). All clients start together; each sends its
file in one tus PATCH. Measured per layout: the aggregate throughput (bytes of every
upload ÷ time from the first byte to the last answer), failed uploads (must be 0), every
stored SHA-256 against the bytes sent, the peak RSS of every gunicorn worker, and the p95
of page requests (a customer's order page) made by another client meanwhile. The two-node
figure is the one-node figure's ratio; on a machine with 2 cores both layouts share the
same two cores, so the ratio says what a second node costs or buys on the same host, not
what a second host brings.

    .venv/bin/python bench/scaleout.py --clients 100 --size 20M
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from common import (
    PROJECT_NO,
    SHIPPED_CLAMD_CONF,
    USER_AGENT,
    USERNAME,
    MiB,
    PoolBody,
    Portal,
    children,
    free_port,
    heading,
    memory_kib,
    percentile,
    prepare_accounts,
    quick,
    random_pool,
    report,
    sign_in,
    size_option,
    size_text,
    stop,
    stored_file,
    tus_upload,
    workdir,
    write_ini,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nginx_helpers import running_nginx

BENCH = "9 scale-out"
TARGET_RATIO = 1.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20 if quick() else 100)
    size_option(parser, "size", "20M", "4M", "bytes each client uploads")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    heading(
        f"9. Scale-out: {options.clients} clients × {size_text(options.size)} through nginx, "
        "one node, then two"
    )
    with workdir(options.keep) as directory:
        run(directory, options.clients, options.size)


def start_nodes(ini: Path, directory: Path, count: int) -> list:
    """``count`` gunicorn nodes on the same client.ini; their processes and ports."""
    import subprocess

    nodes = []
    for index in range(count):
        port = free_port()
        log = (directory / f"node{index}.log").open("ab")
        command = [sys.executable, "-m", "portal", "--config", str(ini), "serve"]
        command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8"]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        nodes.append((process, port))
    for process, port in nodes:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"node on port {port} did not start") from None
                time.sleep(0.2)
    return nodes


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_latencies(base: str, cookie: str, stop_event: threading.Event) -> list[float]:
    """GET the customer's order page again and again until ``stop_event``; milliseconds."""
    times: list[float] = []
    while not stop_event.is_set():
        request = urllib.request.Request(
            f"{base}/orders/{PROJECT_NO}", headers={"Cookie": cookie, "User-Agent": USER_AGENT}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
            times.append((time.perf_counter() - started) * 1000)
        except OSError:
            times.append(float("inf"))
    return times


def one_layout(
    directory: Path, ini: Path, password: str, nodes: int, clients: int, size: int, pool
) -> dict:
    """Run every client's upload through nginx over ``nodes`` nodes; the figures."""
    running = start_nodes(ini, directory, nodes)
    try:
        with running_nginx([port for _process, port in running]) as base:
            port = int(base.rsplit(":", 1)[1])
            portal = Portal(directory, ini, port, password)
            cookie, csrf = sign_in(base, USERNAME, password)
            results: list = [None] * clients
            errors: list[str] = []
            start = threading.Barrier(clients + 1)

            def client(index: int) -> None:
                start.wait()
                try:
                    results[index] = tus_upload(
                        portal, cookie, csrf, PoolBody(size, pool), size, f"datei-{index}.pdf"
                    )
                except BaseException as exc:  # SystemExit from a failed PATCH included
                    errors.append(f"{index}: {exc}")

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            done = threading.Event()
            pages: list[float] = []
            reader = threading.Thread(
                target=lambda: pages.extend(page_latencies(base, cookie, done))
            )
            workers = [pid for process, _port in running for pid in children(process.pid)]
            busy_before, total_before = _busy_jiffies()
            workers_before = sum(_cpu_seconds(pid) for pid in workers)
            own_before = sum(os.times()[:2])
            start.wait()
            reader.start()
            for thread in threads:
                thread.join()
            done.set()
            reader.join()
            busy_after, total_after = _busy_jiffies()
            workers_cpu = sum(_cpu_seconds(pid) for pid in workers) - workers_before
            own_cpu = sum(os.times()[:2]) - own_before
        uploads = [result for result in results if result is not None]
        rss = max(memory_kib(pid) for pid in workers) / 1024
        busy = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
        return {
            "uploads": uploads,
            "errors": errors,
            "seconds": max(u.last_answer for u in uploads) - min(u.first_byte for u in uploads)
            if uploads
            else float("inf"),
            "rss": rss,
            "pages": pages,
            # Where the CPU went (seconds): the whole machine, the portal's gunicorn workers,
            # and this process (the 100 clients and the page reader).
            "cpu": {
                "cores_busy": (busy_after - busy_before)
                / max(total_after - total_before, 1)
                * (os.cpu_count() or 1),
                "machine": busy,
                "workers": workers_cpu,
                "clients": own_cpu,
            },
        }
    finally:
        for process, _port in running:
            stop(process)


def run(directory: Path, clients: int, size: int) -> None:
    clamd_conf = SHIPPED_CLAMD_CONF  # no scans here: the worker does not run
    password = "Bench-Passwort-2026 sicher genug"
    ini = write_ini(directory, free_port(), clamd_conf=clamd_conf, chunk=max(size, MiB))
    prepare_accounts(ini, password)
    pool = random_pool()
    expected = hashlib.sha256(bytes(_body_bytes(PoolBody(size, pool)))).hexdigest()
    figures = {}
    for nodes in (1, 2):
        figures[nodes] = result = one_layout(directory, ini, password, nodes, clients, size, pool)
        portal = Portal(directory, ini, 0, password)
        wrong = [u.key for u in result["uploads"] if stored_file(portal, u.key).sha256 != expected]
        throughput = len(result["uploads"]) * size / MiB / result["seconds"]
        pages = result["pages"]
        report(
            BENCH,
            f"{nodes} node{'s' if nodes > 1 else ''}: aggregate upload",
            throughput,
            "MiB/s",
            note=f"{len(result['uploads'])} of {clients} uploads complete, "
            f"{len(result['errors'])} failed, {len(wrong)} with a wrong SHA-256; "
            f"worker peak RSS {result['rss']:.0f} MiB; order page p95 "
            f"{percentile(pages, 0.95):.0f} ms over {len(pages)} requests meanwhile",
        )
        cpu = result["cpu"]
        rest = cpu["machine"] - cpu["workers"] - cpu["clients"]
        print(
            f"  CPU: {cpu['cores_busy']:.2f} of {os.cpu_count()} cores busy; of "
            f"{cpu['machine']:.1f} CPU-s: gunicorn workers {cpu['workers']:.1f}, the clients "
            f"{cpu['clients']:.1f}, the rest (nginx, kernel, others) {rest:.1f}"
        )
        result["throughput"] = throughput
        if result["errors"] or wrong:
            print("  failures:", result["errors"][:5], wrong[:5])
    ratio = figures[2]["throughput"] / figures[1]["throughput"]
    report(
        BENCH,
        "two nodes vs one, aggregate upload",
        figures[2]["throughput"],
        "MiB/s",
        baseline="one node",
        baseline_value=figures[1]["throughput"],
        ratio=ratio,
        target=f"≥ {TARGET_RATIO} where the cores allow",
        met=ratio >= TARGET_RATIO,
        note="both layouts on the same 2 cores: see bench/README.md",
    )


def _body_bytes(body: PoolBody) -> bytearray:
    """The bytes ``body`` sends (to know the SHA-256 every stored copy must have)."""

    class Collect:
        def __init__(self) -> None:
            self.data = bytearray()

        def sendall(self, piece) -> None:
            self.data += piece

    sink = Collect()
    body.send(sink, 0, body.size)
    return sink.data


if __name__ == "__main__":
    main()
