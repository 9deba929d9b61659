"""Benchmark 6, login cost: Argon2id verification with the default parameters, and sign-ins/s.

First the password vault alone, in this process: one Argon2id verification with
the parameters ``[security]`` defaults to (RFC 9106's second recommended option).
Then the portal as in production (``ptportal serve``: 2 gthread workers × 8 threads,
default Argon2 cost) with ``--clients`` browsers signing in over and over (sign-in
page, then the form post), for ``--seconds``: sign-ins per second, the latency of
the form post, and the workers' peak RSS (every verification takes its memory cost).

    .venv/bin/python bench/login.py --clients 4 --seconds 10
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import threading
import time
import urllib.parse
import urllib.request

from common import (
    CSRF_TOKEN,
    SHIPPED_CLAMD_CONF,
    USERNAME,
    heading,
    median,
    memory_kib,
    percentile,
    quick,
    report,
    reset_peak_rss,
    running_portal,
    workdir,
    write_ini,
)

BENCH = "6 login"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="browsers signing in at once")
    parser.add_argument("--seconds", type=int, default=4 if quick() else 10)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    heading("6. Login cost: Argon2id with the default parameters")
    with workdir(options.keep) as directory:
        verify_cpu = vault_alone(directory)
        endpoint(directory / "portal", options.clients, options.seconds, verify_cpu)


def vault_alone(directory) -> float:
    """Median time of one verification with the default ``[security]`` parameters."""
    from shared.accounts.passwords import PasswordVault
    from shared.config import load_settings

    ini = write_ini(directory, 1, clamd_conf=SHIPPED_CLAMD_CONF, cheap_argon2=False)
    security = load_settings(ini).security
    vault = PasswordVault(security)
    stored = vault.hash("Setzerei und Druckerei 1887")
    times, cpu = [], []
    for _ in range(5 if quick() else 15):
        started, cpu_started = time.perf_counter(), time.process_time()
        if not vault.verify(stored, "Setzerei und Druckerei 1887"):
            raise SystemExit("the vault did not verify its own hash")
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    parameters = (
        f"t={security.argon2_time_cost}, m={security.argon2_memory_kib // 1024} MiB, "
        f"p={security.argon2_parallelism}"
    )
    report(
        BENCH,
        "Argon2id verify, default parameters",
        median(times) * 1000,
        "ms",
        note=f"{parameters}; min {min(times) * 1000:.0f} ms",
    )
    report(BENCH, "Argon2id verify, CPU time (all lanes)", median(cpu) * 1000, "ms")
    return median(cpu)


def endpoint(directory, clients: int, seconds: int, verify_cpu: float) -> None:
    """``clients`` threads sign in again and again; sign-ins/s, post latency, peak RSS."""
    with running_portal(directory, cheap_argon2=False, login_attempts=1000) as portal:
        pids = portal.worker_pids()
        for pid in pids:
            reset_peak_rss(pid)
        stop_at = time.monotonic() + seconds
        latencies: list[float] = []
        failures: list[str] = []

        def browser() -> None:
            while time.monotonic() < stop_at:
                jar = http.cookiejar.CookieJar()
                opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
                with opener.open(f"{portal.base}/login") as page:
                    token = CSRF_TOKEN.search(page.read().decode()).group(1)
                form = {"csrf_token": token, "username": USERNAME, "password": portal.password}
                started = time.perf_counter()
                with opener.open(
                    f"{portal.base}/login", data=urllib.parse.urlencode(form).encode()
                ) as answer:
                    answer.read()
                    if urllib.parse.urlsplit(answer.url).path == "/login":
                        failures.append(str(answer.status))
                        continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        threads = [threading.Thread(target=browser) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        peak = max(memory_kib(pid, "VmHWM") for pid in pids) / 1024
    if failures or not latencies:
        raise SystemExit(f"sign-ins failed: {failures[:5]}")
    rate = len(latencies) / elapsed
    ceiling = (os.cpu_count() or 1) / verify_cpu
    report(
        BENCH,
        f"sign-ins/s, {clients} browsers",
        rate,
        "/s",
        baseline="CPUs / verify CPU time",
        baseline_value=ceiling,
        note=f"{len(latencies)} sign-ins in {elapsed:.1f} s",
    )
    report(
        BENCH,
        "sign-in post, p50",
        median(latencies) * 1000,
        "ms",
        note=f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms",
    )
    report(
        BENCH,
        "worker peak RSS while signing in",
        peak,
        "MiB",
        note="Argon2 takes m MiB per verification in progress",
    )


if __name__ == "__main__":
    main()
