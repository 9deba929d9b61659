"""Retention: files past the customer's hotfolder_delete_after_days are deleted and recorded."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from file_helpers import received, world_fixture  # noqa: F401 (fixture "world")

from shared.clock import utcnow
from shared.files.intake import file_path, make_scanner, scan_received
from shared.files.receiving import staging_path, start_upload
from shared.files.retention import ABANDONED_AFTER, delete_expired, due_for_deletion
from shared.models import Customer, FileEvent, OrderFile


def clean_file(settings, order, name: str, age_days: float) -> OrderFile:
    file = scan_received(settings, make_scanner(settings), received(settings, order, name, b"x").id)
    assert file.state == OrderFile.STATE_CLEAN
    OrderFile.update(created_at=utcnow() - timedelta(days=age_days)).where(
        OrderFile.id == file.id
    ).execute()
    return OrderFile.get_by_id(file.id)


def set_retention(order, days: int) -> None:
    Customer.update(hotfolder_delete_after_days=days).where(
        Customer.id == order.customer_id
    ).execute()


def test_old_files_go_young_files_stay_and_each_deletion_is_recorded(world):
    settings, order, _ = world
    set_retention(order, 30)
    old = clean_file(settings, order, "alt.pdf", 31)
    young = clean_file(settings, order, "neu.pdf", 29)
    old_path = file_path(settings, old)

    assert [f.id for f in due_for_deletion()] == [old.id]
    deleted = delete_expired(settings)

    assert [f.id for f in deleted] == [old.id]
    assert not old_path.exists()
    assert file_path(settings, young).exists()
    old = OrderFile.get_by_id(old.id)
    assert old.state == OrderFile.STATE_DELETED and old.deleted_at is not None
    event = FileEvent.get(FileEvent.file == old)
    assert event.kind == "retention_deleted" and event.detail == str(old_path)
    assert delete_expired(settings) == []


def test_zero_days_keeps_files(world):
    settings, order, _ = world
    set_retention(order, 0)
    kept = clean_file(settings, order, "ewig.pdf", 3650)
    assert delete_expired(settings) == []
    assert file_path(settings, kept).exists()


def test_abandoned_upload_is_removed_from_staging(world):
    settings, order, _ = world
    set_retention(order, 0)
    file = start_upload(settings, order, "halb.pdf", 1000)
    OrderFile.update(created_at=utcnow() - ABANDONED_AFTER - timedelta(hours=1)).where(
        OrderFile.id == file.id
    ).execute()
    assert staging_path(settings, file).exists()
    assert [f.id for f in delete_expired(settings)] == [file.id]
    assert not staging_path(settings, file).exists()


def test_cli_dry_run_lists_without_deleting(world):
    settings, order, _ = world
    set_retention(order, 1)
    old = clean_file(settings, order, "alt.pdf", 2)
    command = [sys.executable, "-m", "portal", "--config", str(settings.source), "retention"]
    listed = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert f"would delete\t{file_path(settings, old)}" in listed.stdout
    assert file_path(settings, old).exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 file(s) deleted" in done.stdout
    assert not file_path(settings, old).exists()
