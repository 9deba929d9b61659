"""Benchmark 1, upload throughput: one file through the portal vs SFTP vs dd, same disk, same run.

The portal runs as in production (``ptportal serve``: gunicorn, 2 gthread workers
× 8 threads). A tus client like the browser's sends the file in PATCH requests of
``upload_chunk_bytes`` (64 MiB); it sends with sendfile and hashes nothing, as a
browser on another machine costs the server nothing. The time runs from the first
PATCH to the answer to the last one, i.e. until the file is on disk, fsynced, with
the SHA-256 the server computed while it streamed in (checked against the file's).
Baselines: OpenSSH's ``sftp`` to Debian's sshd on 127.0.0.1 (``put``, and ``put -f``
which also fsyncs) and ``dd bs=4M conv=fsync``, all into the same directory.

    .venv/bin/python bench/upload.py --size 1G --runs 3 [--profile]
"""

from __future__ import annotations

import argparse

from common import (
    USERNAME,
    FileBody,
    GiB,
    MiB,
    Sshd,
    cpu_seconds,
    dd_seconds,
    heading,
    median,
    profiled,
    quick,
    report,
    running_portal,
    sign_in,
    size_option,
    size_text,
    stored_file,
    tus_upload,
    workdir,
    write_random_file,
)

BENCH = "1 upload"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_option(parser, "size", "1G", "256M", "file size")
    size_option(parser, "chunk", "64M", "64M", "upload_chunk_bytes")
    parser.add_argument("--runs", type=int, default=1 if quick() else 3, help="median of N")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", action="store_true", help="py-spy on the gunicorn worker")
    options = parser.parse_args()
    heading(f"1. Upload throughput, {size_text(options.size)}: portal vs SFTP vs dd")
    with workdir(options.keep) as directory:
        run(directory, options.size, options.chunk, options.runs, options.profile)


def run(directory, size: int, chunk: int, runs: int, profile: bool) -> None:
    """Interleave dd, sftp, sftp -f and the portal ``runs`` times; report the medians."""
    source = directory / "source.bin"
    digest = write_random_file(source, size)
    sshd = Sshd(directory / "sshd").start()
    seconds: dict[str, list[float]] = {"portal": [], "sftp": [], "sftp -f": [], "dd": []}
    cpu: list[float] = []
    hashes_match = True
    try:
        # One worker when profiling, so py-spy watches the one that gets the upload.
        with running_portal(directory / "portal", workers=1 if profile else 2) as portal:
            cookie, csrf = sign_in(portal.base, USERNAME, portal.password)
            for number in range(runs):
                seconds["dd"].append(dd_seconds(directory, size))
                for name, fsync in (("sftp", False), ("sftp -f", True)):
                    target = directory / "sftp.bin"
                    seconds[name].append(sshd.put_seconds(source, target, fsync=fsync))
                    target.unlink()
                pids = portal.worker_pids()
                before = sum(cpu_seconds(pid) for pid in pids)
                with profiled(pids[0], directory / "upload.pyspy", profile and number == 0):
                    times = tus_upload(portal, cookie, csrf, FileBody(source), chunk)
                seconds["portal"].append(times.last_answer - times.first_byte)
                cpu.append(sum(cpu_seconds(pid) for pid in pids) - before)
                file = stored_file(portal, times.key)
                hashes_match &= file.sha256 == digest
                staged = portal.settings().storage.staging_root / f"{times.key}.part"
                staged.unlink()
    finally:
        sshd.stop()

    rate = {name: size / MiB / median(values) for name, values in seconds.items()}
    spread = {name: f"{min(values):.2f}–{max(values):.2f} s" for name, values in seconds.items()}
    print(f"  seconds per run: {seconds}")
    report(BENCH, "dd bs=4M conv=fsync", rate["dd"], "MiB/s", note=spread["dd"])
    report(BENCH, "SFTP put -f (fsync)", rate["sftp -f"], "MiB/s", note=spread["sftp -f"])
    report(
        BENCH,
        "portal vs SFTP",
        rate["portal"],
        "MiB/s",
        baseline="SFTP put",
        baseline_value=rate["sftp"],
        target="≥ 1.0",
        met=rate["portal"] >= rate["sftp"],
        note=spread["portal"],
    )
    report(
        BENCH,
        "portal vs dd",
        rate["portal"],
        "MiB/s",
        baseline="dd",
        baseline_value=rate["dd"],
        target="≥ 0.5",
        met=rate["portal"] >= 0.5 * rate["dd"],
    )
    report(BENCH, "worker CPU per GiB", median(cpu) * GiB / size, "s", note="gunicorn worker")
    report(BENCH, "server SHA-256 = file's", float(hashes_match), "bool", met=hashes_match)


if __name__ == "__main__":
    main()
