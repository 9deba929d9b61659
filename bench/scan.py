"""Benchmark 3, scan cost: last byte received → "clean" against clamdscan, same clamd, same run.

A dedicated clamd runs with the shipped clamd.conf settings (limits of 2000M, so a
1 GiB file is scanned whole) and the EICAR test signatures, with its clean-file
cache off (else the second scan of the same bytes would be free). The portal and
``ptportal worker`` run as in production with the configured ``scan_mode``; one
file is uploaded with tus and the database is polled until it is clean in
``Eingehend``. Baseline: ``clamdscan`` of the stored file (clamd reads it itself).

Then, to say whether overlapping scan and upload would pay, the same file is
scanned without the queue: INSTREAM after the upload (the portal's default), by
path, and INSTREAM fed while a copy of the file is still being written at the
upload's speed (time from its last byte to the answer).

With ``--busy N`` N other processes keep the CPUs busy from before the upload until the
clamdscan baseline is done (both measured under the same load); every figure carries the
machine's load average at the moment the file turned clean. ``--profile`` samples the
worker with py-spy (idle threads included: waiting is what this benchmark is about) from
the last byte until clean.

    .venv/bin/python bench/scan.py --size 1G [--mode auto|stream|path] [--no-experiments]
                                   [--busy 2] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from common import (
    USERNAME,
    Clamd,
    FileBody,
    MiB,
    bind,
    heading,
    load_average,
    report,
    running_portal,
    sign_in,
    size_option,
    size_text,
    tus_upload,
    workdir,
    write_random_file,
)

TARGET = 1.2
UPLOAD_RATE = 200 * MiB
# Without the experiments, the worker idles this long before the upload: long enough for
# its queue polling to slow down to its maximum interval, as between real uploads.
IDLE_SECONDS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_option(parser, "size", "1G", "128M", "file size")
    parser.add_argument(
        "--mode", choices=("auto", "stream", "path"), default="auto", help="[clamav] scan_mode"
    )
    parser.add_argument(
        "--no-experiments",
        dest="experiments",
        action="store_false",
        help="only the portal against clamdscan (no direct scans, no overlap experiment)",
    )
    parser.add_argument(
        "--busy", type=int, default=0, help="other processes keeping the CPUs busy meanwhile"
    )
    parser.add_argument(
        "--busy-kind", choices=sorted(BUSY), default="cpu", help="what the busy processes do"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy on the worker")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    load = f", {options.busy} other processes busy ({options.busy_kind})" if options.busy else ""
    heading(f"3. Scan cost, {size_text(options.size)}, scan_mode = {options.mode}{load}")
    with workdir(options.keep) as directory:
        run(
            directory,
            options.size,
            options.mode,
            options.experiments,
            busy=options.busy,
            busy_kind=options.busy_kind,
            profile=options.profile,
        )


# A busy process: spins on a CPU, or ("io") rewrites 64 MiB of its own file on the bench's
# disk with a data sync after each, like another upload; bounded to 30 minutes either way.
BUSY = {
    "cpu": "import time\nend = time.monotonic() + 1800\nwhile time.monotonic() < end: pass",
    "io": (
        "import os, sys, time\nend = time.monotonic() + 1800\nblock = os.urandom(1 << 20)\n"
        "with open(sys.argv[1], 'wb') as out:\n"
        "    while time.monotonic() < end:\n"
        "        out.seek(0)\n"
        "        for _ in range(64): out.write(block)\n"
        "        out.flush(); os.fdatasync(out.fileno())\n"
    ),
}


@contextlib.contextmanager
def busy_processes(count: int, kind: str = "cpu", directory: Path | None = None) -> Iterator[None]:
    """``count`` busy processes of ``kind`` (see BUSY) while the block runs."""
    processes = [
        subprocess.Popen([sys.executable, "-c", BUSY[kind], str(directory / f"busy-{number}")])
        for number in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def wait_until_clean(ini: Path, key: str, timeout: float = 900) -> float:
    """Poll the database every 20 ms until the upload is clean; perf_counter at that moment."""
    from shared.db import database
    from shared.models import OrderFile

    bind(ini)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            state = OrderFile.select(OrderFile.state).where(OrderFile.upload_key == key).scalar()
            if state == OrderFile.STATE_CLEAN:
                return time.perf_counter()
            if state not in OrderFile.OPEN_STATES:
                raise SystemExit(f"the upload ended as {state!r}, not clean")
            time.sleep(0.02)
    finally:
        database.close()
    raise SystemExit("the upload was not clean in time")


def run(
    directory: Path,
    size: int,
    mode: str,
    experiments: bool,
    busy: int = 0,
    busy_kind: str = "cpu",
    profile: bool = False,
) -> None:
    """The experiments first, if asked (the worker idles meanwhile, as between uploads),
    then upload, wait until clean, and clamdscan the stored file."""
    from common import profiled, stored_file

    from shared.files.intake import file_path
    from shared.files.scanning import clamd_limits

    clamd = Clamd(directory / "clamd").start()
    try:
        source = directory / "source.bin"
        write_random_file(source, size)
        with running_portal(
            directory / "portal", with_worker=True, clamd=clamd, scan_mode=mode
        ) as portal:
            settings = portal.settings()
            if experiments:
                direct = direct_scans(clamd, source, clamd_limits(settings.clamav))
                # Fed at about the speed of the portal's upload (benchmark 1) on this machine.
                overlap_tail = overlapped_instream(
                    clamd, source, directory / "overlap.bin", UPLOAD_RATE
                )
            else:
                time.sleep(IDLE_SECONDS)
            with busy_processes(busy, busy_kind, directory):
                cookie, csrf = sign_in(portal.base, USERNAME, portal.password)
                times = tus_upload(portal, cookie, csrf, FileBody(source), 64 * MiB)
                with profiled(portal.worker.pid, directory / "worker.pyspy", profile, idle=True):
                    clean_at = wait_until_clean(portal.ini, times.key)
                load = load_average()
                stored = file_path(settings, stored_file(portal, times.key))
                clamdscan = clamd.clamdscan_seconds(stored)
    finally:
        clamd.stop()
    bench = f"3 scan/{mode}" + (f" busy {busy} {busy_kind}" if busy else "")
    last_to_clean = clean_at - times.last_answer
    report(bench, "upload (first → last byte)", times.last_answer - times.first_byte, "s")
    report(
        bench,
        "last byte → clean (portal)",
        last_to_clean,
        "s",
        baseline="clamdscan",
        baseline_value=clamdscan,
        target=f"≤ {TARGET}",
        met=last_to_clean <= TARGET * clamdscan,
        note=f"load average {load} when clean",
    )
    report(bench, "first byte → clean (portal)", clean_at - times.first_byte, "s")
    if not experiments:
        return
    # The bench's clamd reads the staging area: auto scans by path.
    scanned_as = "path" if mode == "auto" else mode
    report(
        bench,
        "  of which queue, placing (derived)",
        last_to_clean - direct[scanned_as],
        "s",
        note=f"last byte → clean minus a direct {scanned_as} scan",
    )
    for name, label in (("stream", "INSTREAM"), ("path", "by path")):
        report(
            bench,
            f"direct scan, {label} after upload",
            direct[name],
            "s",
            baseline="clamdscan",
            baseline_value=clamdscan,
        )
    report(
        bench,
        "INSTREAM fed during upload: last byte → answer",
        overlap_tail,
        "s",
        baseline="clamdscan",
        baseline_value=clamdscan,
        note=f"saves {direct['stream'] - overlap_tail:.1f} s over INSTREAM after",
    )


def direct_scans(clamd: Clamd, source: Path, limits) -> dict[str, float]:
    """Seconds for shared.files.scanning's Scanner in stream and in path mode, no queue."""
    from shared.files.scanning import Scanner

    seconds = {}
    for mode in ("stream", "path"):
        scanner = Scanner(str(clamd.socket), 900, limits, mode)
        started = time.perf_counter()
        verdict = scanner.scan_file(source).verdict.value
        seconds[mode] = time.perf_counter() - started
        if verdict != "clean":
            raise SystemExit(f"{mode} scan said {verdict}")
    return seconds


def overlapped_instream(clamd: Clamd, source: Path, target: Path, rate: float) -> float:
    """Write ``source`` to ``target`` at ``rate`` bytes/s (64 MiB requests, fdatasync each,
    like the portal receives it) while feeding the bytes on disk to clamd with INSTREAM;
    returns the seconds from the last byte written to clamd's answer."""
    size = source.stat().st_size
    done = threading.Event()
    last_byte: list[float] = []

    def writer() -> None:
        started = time.perf_counter()
        with source.open("rb") as reader, target.open("wb") as out:
            written = 0
            while piece := reader.read(MiB):
                out.write(piece)
                written += len(piece)
                if written % (64 * MiB) == 0 or written == size:
                    out.flush()
                    os.fdatasync(out.fileno())
                ahead = written / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        last_byte.append(time.perf_counter())
        done.set()

    target.touch()
    thread = threading.Thread(target=writer)
    with socket.socket(socket.AF_UNIX) as connection, target.open("rb") as tail:
        connection.connect(str(clamd.socket))
        connection.sendall(b"nINSTREAM\n")
        thread.start()
        sent = 0
        while sent < size:
            piece = tail.read(MiB)
            if not piece:
                if done.is_set() and tail.tell() >= size:
                    break
                time.sleep(0.005)
                continue
            connection.sendall(struct.pack("!L", len(piece)) + piece)
            sent += len(piece)
        connection.sendall(struct.pack("!L", 0))
        answer = connection.recv(4096)
        answered = time.perf_counter()
    thread.join()
    target.unlink()
    if not answer.strip().endswith(b"OK"):
        raise SystemExit(f"clamd answered {answer!r}")
    return answered - last_byte[0]


if __name__ == "__main__":
    main()
