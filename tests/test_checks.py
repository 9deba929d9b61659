"""`ptportal check`: one OK/FAIL line per part, exit status 1 when anything fails."""

from __future__ import annotations

import subprocess
import sys

from conftest import base_sections, write_ini
from smtp_helpers import RecordingHandler, free_port, make_tls, smtp_server, starttls_options

from shared.config import load_settings
from shared.db import bind_database, database
from shared.schema import init_database


def run_check(ini) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal", "--config", str(ini), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines_by_part(output: str) -> dict[str, str]:
    parts = {}
    for line in output.splitlines():
        state, name, *_ = line.split()
        parts[name] = state
    return parts


def prepared_ini(tmp_path, clamd, smtp_port: int, **smtp):
    sections = base_sections(
        smtp_port,
        clamav={"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 5},
        worker={"queue_url": "sqlite:///data/queue.db"},
        smtp=smtp,
    )
    ini = write_ini(tmp_path, sections)
    bind_database(load_settings(ini).database.url)
    init_database("Testdruck")
    database.close()
    return ini


def test_everything_ok_with_starttls_login(tmp_path, clamd):
    tls = make_tls(tmp_path)
    with smtp_server(RecordingHandler(), **starttls_options(tls, "portal", "geheim")) as port:
        ini = prepared_ini(
            tmp_path,
            clamd,
            port,
            security="starttls",
            username="portal",
            password="geheim",
            ca_file=tls.ca_file,
        )
        result = run_check(ini)
    assert result.returncode == 0, result.stdout + result.stderr
    parts = lines_by_part(result.stdout)
    assert parts == {
        "config": "OK",
        "database": "OK",
        "storage": "OK",
        "clamd": "OK",
        "smtp": "OK",
        "queue": "OK",
    }
    assert "ClamAV" in result.stdout and "logged in as portal" in result.stdout


def test_each_failure_is_named_and_the_exit_status_is_1(tmp_path, clamd):
    tls = make_tls(tmp_path)
    with smtp_server(RecordingHandler(), **starttls_options(tls, "portal", "geheim")) as port:
        ini = prepared_ini(
            tmp_path,
            clamd,
            port,
            security="starttls",
            username="portal",
            password="falsch",
            ca_file=tls.ca_file,
        )
        with clamd.stopped():
            result = run_check(ini)
    assert result.returncode == 1
    parts = lines_by_part(result.stdout)
    assert parts["clamd"] == "FAIL" and parts["smtp"] == "FAIL"
    assert parts["database"] == "OK" and parts["storage"] == "OK"
    assert "Traceback" not in result.stdout + result.stderr


def test_mail_server_down_and_old_schema_are_reported(tmp_path, clamd):
    ini = prepared_ini(tmp_path, clamd, free_port())
    from shared.migrations import SchemaVersion

    SchemaVersion.delete().execute()
    database.close()
    result = run_check(ini)
    assert result.returncode == 1
    parts = lines_by_part(result.stdout)
    assert parts["smtp"] == "FAIL"
    assert parts["database"] == "FAIL" and "ptportal migrate" in result.stdout


def test_the_storage_probe_tries_every_promise_and_leaves_nothing(tmp_path):
    from shared.files.storage_probe import probe_storage

    staging, orders = tmp_path / "staging", tmp_path / "orders"
    staging.mkdir()
    orders.mkdir()

    kept = probe_storage(staging, orders)

    assert kept == [
        "exclusive create",
        "fsync of files and folders",
        "hard links that never replace a name",
        "atomic rename",
        "advisory locks",
    ]
    assert list(staging.iterdir()) == list(orders.iterdir()) == []


def test_storage_without_hard_links_fails_the_check(tmp_path, monkeypatch):
    import os

    import pytest

    from shared.files import storage_probe

    staging, orders = tmp_path / "staging", tmp_path / "orders"
    staging.mkdir()
    orders.mkdir()

    def no_links(*_args):
        raise OSError(
            1, "Operation not permitted"
        )  # what a CIFS mount without unix extensions says

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(storage_probe.StorageBroken, match=r"hard link from .* into"):
        storage_probe.probe_storage(staging, orders)
    assert list(staging.iterdir()) == list(orders.iterdir()) == []
