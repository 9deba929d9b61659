"""The sandbox: a file (or child) that hangs, burns CPU, eats memory or crashes ends as
"failed" with the reason, in time, and harms neither the caller nor other processes."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pikepdf
import pytest
from preflight_helpers import new_page, save

from shared.files.findings import ERROR, WARNING, Finding
from shared.files.messages import describe
from shared.files.preflight import PreflightLimits, run_preflight, sandbox

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here


@pytest.fixture(scope="module")
def operator_flood(tmp_path_factory) -> Path:
    """Three million q/Q pairs in one page's content: 12 MB to parse from a 12 KB stream."""
    pdf = pikepdf.new()
    new_page(pdf, content=b"q Q\n" * 3_000_000)
    return save(pdf, tmp_path_factory.mktemp("flood") / "flood.pdf")


def _children() -> set[int]:
    """Processes whose parent is this test process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.add(int(entry.name))
    return found


def _failure(report) -> Finding:
    assert report.status == "failed"
    return report.finding("preflight_failed")


def test_wall_clock_timeout_kills_the_child(operator_flood):
    before = _children()
    started = time.monotonic()
    report = run_preflight(operator_flood, "pdf", limits=PreflightLimits(wall_seconds=1))
    assert time.monotonic() - started < 3
    assert _failure(report).params == {"kind": "timeout", "detail": "1 s"}
    assert _children() == before
    assert describe(report.findings[0], "de").startswith(
        "Die automatische Prüfung hat zu lange gedauert"
    )


def test_cpu_limit(operator_flood):
    report = run_preflight(
        operator_flood, "pdf", limits=PreflightLimits(cpu_seconds=1, wall_seconds=30)
    )
    assert _failure(report).params == {"kind": "cpu_limit", "detail": "1 s"}


def test_memory_limit(operator_flood):
    report = run_preflight(
        operator_flood, "pdf", limits=PreflightLimits(memory_bytes=256 * 1024 * 1024)
    )
    assert _failure(report).params["kind"] == "memory_limit"


def test_default_limits_end_the_operator_flood_defined(operator_flood):
    started = time.monotonic()
    report = run_preflight(operator_flood, "pdf")
    assert time.monotonic() - started < PreflightLimits().wall_seconds
    assert _failure(report).params["kind"] in ("memory_limit", "cpu_limit")


def test_the_callers_own_limits_are_untouched(operator_flood):
    before = [resource.getrlimit(limit) for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU)]
    run_preflight(operator_flood, "pdf", limits=PreflightLimits(memory_bytes=256 * 1024 * 1024))
    after = [resource.getrlimit(limit) for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU)]
    assert after == before


# --- children that misbehave in ways no file should be able to cause ---------------------


def _child(monkeypatch, source: str) -> None:
    monkeypatch.setattr(sandbox, "CHILD_ARGUMENTS", ("-c", source))


def test_crash_is_failed_with_the_signal(monkeypatch, tmp_path):
    _child(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    report = run_preflight(tmp_path / "any.pdf", "pdf")
    failed = _failure(report)
    assert failed.params["kind"] == "crashed"
    assert failed.params["detail"].startswith("SIGSEGV")
    assert report.findings == (failed,)


def test_crash_after_the_report_keeps_the_findings(monkeypatch, tmp_path):
    report_line = json.dumps(
        {
            "report": {
                "status": "warnings",
                "file_type": "pdf",
                "page_count": 2,
                "findings": [{"code": "rgb_colour", "severity": "warning", "params": {}}],
            }
        }
    )
    _child(
        monkeypatch,
        f"import os, signal, sys; print({report_line!r}, flush=True); "
        "os.kill(os.getpid(), signal.SIGABRT)",
    )
    report = run_preflight(tmp_path / "any.pdf", "pdf")
    assert report.status == "failed"
    assert report.page_count == 2
    assert report.codes() == ["rgb_colour", "preflight_failed"]
    assert report.findings[0] == Finding("rgb_colour", WARNING, {})
    assert report.findings[1].params["detail"].startswith("SIGABRT")


def test_a_hanging_grandchild_is_killed_with_the_group(monkeypatch, tmp_path):
    _child(
        monkeypatch,
        "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)",
    )
    started = time.monotonic()
    report = run_preflight(tmp_path / "any.pdf", "pdf", limits=PreflightLimits(wall_seconds=1))
    assert time.monotonic() - started < 3
    assert _failure(report).params["kind"] == "timeout"
    time.sleep(0.2)
    sleepers = [
        entry
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _cmdline(entry) == "sleep 300"
    ]
    assert sleepers == []


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_the_child_gets_no_secrets_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PTPORTAL_SMTP_PASSWORD", "hunter2")
    _child(
        monkeypatch,
        "import json, os; print(json.dumps({'failure': 'error', 'detail': ' '.join(os.environ)}))",
    )
    report = run_preflight(tmp_path / "any.pdf", "pdf")
    detail = report.finding("preflight_failed").params["detail"]
    assert "PYTHONPATH" in detail
    assert "PTPORTAL_SMTP_PASSWORD" not in detail


def test_garbage_on_stdout_and_a_bad_exit_is_crashed(monkeypatch, tmp_path):
    _child(monkeypatch, "import sys; print('not json'); sys.exit(3)")
    report = run_preflight(tmp_path / "any.pdf", "pdf")
    assert _failure(report).params["kind"] == "crashed"
    assert report.findings[0].severity == ERROR
    assert report.to_json()  # still a report the database can store
