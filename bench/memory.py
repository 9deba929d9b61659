"""Benchmark 2, memory: peak RSS of the portal worker during big and concurrent uploads.

One gunicorn worker with 8 threads takes every upload, so all of them land in the
process that is measured. Its peak RSS (``VmHWM``) is reset before each scenario
(``/proc/<pid>/clear_refs``) and read after it: one small file, one big file
(flat means the same peak), and 8 small files at once. The bodies come from a
random pool in memory, so the client's disk does not get in the way.

    .venv/bin/python bench/memory.py --small 256M --big 2G --concurrent 8
"""

from __future__ import annotations

import argparse
import threading

from common import (
    USERNAME,
    MiB,
    PoolBody,
    heading,
    memory_kib,
    report,
    reset_peak_rss,
    running_portal,
    sign_in,
    size_option,
    size_text,
    tus_upload,
    workdir,
)

BENCH = "2 memory"
TARGET_MIB = 80


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_option(parser, "small", "256M", "64M", "size of the small uploads")
    size_option(parser, "big", "2G", "512M", "size of the big upload")
    parser.add_argument("--concurrent", type=int, default=8, help="small uploads at once")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    heading(
        f"2. Worker peak RSS: 1 × {size_text(options.small)}, 1 × {size_text(options.big)}, "
        f"{options.concurrent} × {size_text(options.small)} at once"
    )
    with workdir(options.keep) as directory:
        run(directory, options.small, options.big, options.concurrent)


def run(directory, small: int, big: int, concurrent: int) -> None:
    """Measure the three scenarios in one worker; report peaks against the 80 MiB target."""
    with running_portal(directory, workers=1, threads=max(8, concurrent)) as portal:
        cookie, csrf = sign_in(portal.base, USERNAME, portal.password)
        (pid,) = portal.worker_pids()
        staging = portal.settings().storage.staging_root
        pool = PoolBody(0).pool

        def uploads(sizes: list[int]) -> float:
            """Upload files of ``sizes`` at once; the worker's peak RSS meanwhile, in MiB."""
            reset_peak_rss(pid)
            errors: list[BaseException] = []

            def one(size: int) -> None:
                try:
                    tus_upload(portal, cookie, csrf, PoolBody(size, pool), 64 * MiB)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(size,)) for size in sizes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise SystemExit(f"an upload failed: {errors[0]!r}")
            for staged in staging.glob("*.part"):
                staged.unlink()
            return memory_kib(pid, "VmHWM") / 1024

        uploads([MiB])  # first request: imports and caches that every worker has anyway
        idle = memory_kib(pid, "VmRSS") / 1024
        peak_small = uploads([small])
        peak_big = uploads([big])
        peak_many = uploads([small] * concurrent)

    report(BENCH, "worker RSS idle (after sign-in)", idle, "MiB")
    for label, peak in (
        (f"peak RSS, 1 × {size_text(small)}", peak_small),
        (f"peak RSS, 1 × {size_text(big)}", peak_big),
        (f"peak RSS, {concurrent} × {size_text(small)} at once", peak_many),
    ):
        report(
            BENCH,
            label,
            peak,
            "MiB",
            baseline="limit",
            baseline_value=TARGET_MIB,
            target=f"≤ {TARGET_MIB} MiB",
            met=peak <= TARGET_MIB,
        )
    report(
        BENCH,
        f"flat: peak {size_text(big)} / {size_text(small)}",
        peak_big / peak_small,
        "×",
        target="≤ 1.05",
        met=peak_big / peak_small <= 1.05,
    )


if __name__ == "__main__":
    main()
