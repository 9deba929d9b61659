"""Run the preflight and previews in a separate, limited process; never raise into the caller.

One process per file (``python -m shared.files.preflight.run``), started with a minimal
environment (no secrets from the portal's environment reach code that parses customer
files) in a session of its own. The child limits its own CPU time and memory before it
reads the file (see ``run``); the parent enforces the wall-clock limit and kills the
whole process group when it passes. Its answers arrive as JSON lines in a temporary file
(no pipe to fill up and block), read after it exited.

What the caller gets back is always a report: a crash, a hang or a limit becomes status
"failed" with a ``preflight_failed`` finding (kind: timeout, cpu_limit, memory_limit,
crashed, error, too_many_pages), keeping whatever the checks reported before a crash
while rendering.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.files.findings import INFO, Finding
from shared.files.preflight.options import Expectations, PreflightLimits, PreflightSettings
from shared.files.preflight.preview_files import preview_name
from shared.files.preflight.report import PreflightReport, failure

logger = logging.getLogger(__name__)

# The directory holding the ``shared`` package: the child imports it from there.
PACKAGE_ROOT = Path(__file__).resolve().parents[3]
# The child's command line after the interpreter (tests put a misbehaving child here).
CHILD_ARGUMENTS = ("-X", "faulthandler", "-m", "shared.files.preflight.run")
_MAX_ANSWER_BYTES = 4 * 1024 * 1024
_STDERR_TAIL = 2000
_MEMORY_SIGNS = ("MemoryError", "bad_alloc", "Out of memory", "out of memory")


@dataclass(frozen=True)
class SandboxRun:
    """How the child ended: its JSON lines, exit status, resources used."""

    answers: list[dict[str, Any]]
    returncode: int
    timed_out: bool
    cpu_seconds: float
    peak_rss_kib: int
    stderr_tail: str

    def answer(self, key: str) -> dict[str, Any] | None:
        return next((answer for answer in self.answers if key in answer), None)


def run_preflight(
    path: Path,
    file_type: str,
    expectations: Expectations | None = None,
    settings: PreflightSettings | None = None,
    limits: PreflightLimits | None = None,
    preview_dir: Path | None = None,
) -> PreflightReport:
    """Preflight ``path`` of ``file_type`` in the sandbox; with ``preview_dir``, write the
    first-page thumbnail there. Never raises for anything the file does."""
    settings = settings or PreflightSettings()
    limits = limits or PreflightLimits()
    if preview_dir is not None:
        Path(preview_dir).mkdir(parents=True, exist_ok=True)
    request = {
        "job": "preflight",
        "path": str(Path(path).resolve()),
        "file_type": file_type,
        "settings": settings.to_dict(),
        "expectations": (expectations or Expectations()).to_dict(),
        "limits": limits.to_dict(),
        "preview_dir": str(Path(preview_dir).resolve()) if preview_dir else None,
    }
    run = _run(request, limits)
    report_answer = run.answer("report")
    failed = _failure(run, limits)
    if report_answer is None:
        report = PreflightReport.of(file_type, [failed or failure("crashed", run.stderr_tail)])
    else:
        report = PreflightReport.from_dict(report_answer["report"])
        report = _with_thumbnail(report, run.answer("thumbnail"))
        if failed is not None:
            report = report.with_findings(failed)
    log = logger.warning if report.status == "failed" else logger.info
    log(
        "preflight of %s: %s (%.1f s CPU, %d MiB peak)",
        path,
        report.status,
        run.cpu_seconds,
        run.peak_rss_kib // 1024,
    )
    return report


def render_page_preview(
    path: Path,
    file_type: str,
    page: int,
    preview_dir: Path,
    limits: PreflightLimits | None = None,
    longest_px: int | None = None,
) -> Path | None:
    """The preview of page ``page`` (from 1) in ``preview_dir``, rendered in the sandbox
    unless it exists; None when it cannot be rendered (the reason is logged)."""
    longest_px = longest_px or PreflightSettings().preview_px
    target = Path(preview_dir) / preview_name(page, longest_px)
    if target.exists():
        return target
    limits = limits or PreflightLimits()
    Path(preview_dir).mkdir(parents=True, exist_ok=True)
    request = {
        "job": "preview",
        "path": str(Path(path).resolve()),
        "file_type": file_type,
        "page": page,
        "longest_px": longest_px,
        "preview_dir": str(Path(preview_dir).resolve()),
        "limits": limits.to_dict(),
    }
    run = _run(request, limits)
    answer = run.answer("preview")
    failed = _failure(run, limits)
    if failed is not None or answer is None or not answer.get("preview"):
        reason = failed.params if failed else (answer or {}).get("skipped", "no answer")
        logger.warning("preview of %s page %d not rendered: %s", path, page, reason)
        return None
    return Path(preview_dir) / answer["preview"]


def _with_thumbnail(report: PreflightReport, answer: dict[str, Any] | None) -> PreflightReport:
    if answer is None:
        return report
    if answer.get("thumbnail"):
        return report.with_findings(thumbnail=answer["thumbnail"])
    skipped = Finding("preview_skipped", INFO, {"reason": str(answer.get("skipped", ""))[:300]})
    return report.with_findings(skipped)


def _failure(run: SandboxRun, limits: PreflightLimits) -> Finding | None:
    """Why the child did not finish, or None when it did."""
    if run.timed_out:
        return failure("timeout", f"{limits.wall_seconds:g} s")
    told = run.answer("failure")
    if told is not None:
        return failure(told["failure"], told.get("detail", ""))
    if run.returncode == 0:
        return None
    if run.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and (
        run.cpu_seconds >= limits.cpu_seconds - 0.5
    ):
        return failure("cpu_limit", f"{limits.cpu_seconds} s")
    if any(sign in run.stderr_tail for sign in _MEMORY_SIGNS):
        return failure("memory_limit", run.stderr_tail[-300:])
    if run.returncode < 0:
        name = signal.Signals(-run.returncode).name
        return failure("crashed", f"{name}; {run.stderr_tail[-300:]}".strip("; "))
    return failure("crashed", f"exit status {run.returncode}; {run.stderr_tail[-300:]}")


def _run(request: dict[str, Any], limits: PreflightLimits) -> SandboxRun:
    """Start the child, wait at most ``limits.wall_seconds``, collect what it said."""
    environment = {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PACKAGE_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, *CHILD_ARGUMENTS],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            cwd=PACKAGE_ROOT,
            env=environment,
            start_new_session=True,
        )
        # A child that died at once breaks the pipe; its exit status says why.
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(request).encode())
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        status, usage, timed_out = _wait(process, limits.wall_seconds)
        answers = _answers(stdout)
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - _STDERR_TAIL))
        tail = stderr.read().decode("utf-8", "replace").strip()
    told = next((answer["usage"] for answer in answers if "usage" in answer), {})
    return SandboxRun(
        answers,
        status,
        timed_out,
        usage.ru_utime + usage.ru_stime,
        told.get("peak_rss_kib", usage.ru_maxrss),  # wait4's counts the pre-exec parent too
        tail,
    )


def _wait(process: subprocess.Popen, wall_seconds: float):
    """Wait for the child, killing its process group at the deadline.

    ``os.wait4`` instead of ``Popen.wait`` gives the child's own resource usage; the exit
    status is handed back to the Popen object so it does not wait a second time.
    """
    deadline = time.monotonic() + wall_seconds
    timed_out = False
    pidfd = os.pidfd_open(process.pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            if time.monotonic() >= deadline:
                timed_out = True
                break
    finally:
        os.close(pidfd)
    # Before reaping: until then the child's pid, and so its group id, cannot be reused.
    _kill_group(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage, timed_out


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _answers(stdout) -> list[dict[str, Any]]:
    stdout.seek(0)
    answers = []
    for line in stdout.read(_MAX_ANSWER_BYTES).decode("utf-8", "replace").splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict):
            answers.append(answer)
    return answers
