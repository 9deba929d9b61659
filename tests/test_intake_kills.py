"""Placing a clean file into Eingehend survives a kill at every step: the worker process is
stopped still at a step by the test seam (``shared.seams``) and SIGKILLed there; the next
sweep finishes the job: the file is clean and placed once, nothing left in staging, no
second copy, no file stuck in "scanning".
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from file_helpers import received, world_fixture  # noqa: F401  (fixture "world")

from shared.files.intake import (
    STEP_PLACE_INTENT,
    STEP_PLACE_LINKED,
    STEP_PLACE_UNLINKED,
    files_to_scan,
    folder_path,
    make_scanner,
    scan_received,
)
from shared.files.receiving import staging_path
from shared.models import OrderFile
from shared.seams import PAUSE_AT, PAUSE_MARKER

DATA = b"%PDF-1.7\n" + os.urandom(300_000)
STEPS = [STEP_PLACE_INTENT, STEP_PLACE_LINKED, STEP_PLACE_UNLINKED]

WORKER = textwrap.dedent(
    """
    import sys
    from shared.config import load_settings
    from shared.db import bind_database
    from shared.files.intake import make_scanner, scan_received

    settings = load_settings(sys.argv[1])
    bind_database(settings.database.url)
    scan_received(settings, make_scanner(settings), int(sys.argv[2]))
    """
)


def killed_while_placing(settings, file: OrderFile, step: str, directory) -> None:
    """A worker process scanning ``file`` that is SIGKILLed at ``step``."""
    marker = directory / "paused"
    env = os.environ | {PAUSE_AT: step, PAUSE_MARKER: str(marker)}
    ini = settings.source
    process = subprocess.Popen([sys.executable, "-c", WORKER, str(ini), str(file.id)], env=env)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert process.poll() is None, "the worker ended before the step"
        assert time.monotonic() < deadline, "the worker never reached the step"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def sweep(settings) -> None:
    """What the worker's minute sweep does with the files due."""
    scanner = make_scanner(settings)
    for file_id in files_to_scan():
        scan_received(settings, scanner, file_id)


def on_disk(settings, file: OrderFile) -> dict[str, bytes]:
    folder = folder_path(settings, file)
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def assert_placed_once(settings, file: OrderFile, name: str = "Flyer.pdf") -> None:
    placed = OrderFile.get_by_id(file.id)
    assert placed.state == OrderFile.STATE_CLEAN
    assert placed.stored_name == name
    assert on_disk(settings, placed) == {name: DATA}, "placed once, no second copy"
    assert not list(settings.storage.staging_root.iterdir()), "nothing left in staging"
    assert placed.sha256 == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_of_placing_is_finished_by_the_next_sweep(world, tmp_path, step):
    settings, order, _staff = world
    file = received(settings, order, "Flyer.pdf", DATA)

    killed_while_placing(settings, file, step, tmp_path)

    stranded = OrderFile.get_by_id(file.id)
    assert stranded.state == OrderFile.STATE_SCANNING, "killed before the clean state"
    assert stranded.stored_name == "Flyer.pdf", "the intent was recorded first"
    assert file.id in files_to_scan(), "due at once, not after ten minutes"
    sweep(settings)
    assert_placed_once(settings, file)
    sweep(settings)
    assert_placed_once(settings, file)


def test_a_name_taken_meanwhile_is_given_up_for_the_next_free_one(world, tmp_path):
    settings, order, _staff = world
    file = received(settings, order, "Flyer.pdf", DATA)
    killed_while_placing(settings, file, STEP_PLACE_INTENT, tmp_path)
    folder = folder_path(settings, file)
    (folder / "Flyer.pdf").write_bytes(b"put there by hand")

    sweep(settings)

    placed = OrderFile.get_by_id(file.id)
    assert (placed.state, placed.stored_name) == (OrderFile.STATE_CLEAN, "Flyer (2).pdf")
    assert on_disk(settings, placed) == {"Flyer.pdf": b"put there by hand", "Flyer (2).pdf": DATA}
    assert not staging_path(settings, placed).exists()


def test_a_different_file_at_the_name_without_the_staging_copy_is_not_taken_for_it(world, tmp_path):
    settings, order, _staff = world
    file = received(settings, order, "Flyer.pdf", DATA)
    killed_while_placing(settings, file, STEP_PLACE_UNLINKED, tmp_path)
    (folder_path(settings, file) / "Flyer.pdf").write_bytes(b"changed by hand")

    sweep(settings)

    stuck = OrderFile.get_by_id(file.id)
    assert stuck.state != OrderFile.STATE_CLEAN, "a checksum that differs is not this file"


@pytest.mark.parametrize("step", [STEP_PLACE_INTENT, STEP_PLACE_LINKED, STEP_PLACE_UNLINKED])
def test_a_release_killed_at_any_step_is_finished_by_releasing_again(world, tmp_path, step):
    from shared.files.intake import release_held
    from shared.models import FileEvent

    settings, order, staff = world
    file = received(settings, order, "Flyer.pdf", DATA)
    OrderFile.update(state=OrderFile.STATE_TOO_LARGE).where(OrderFile.id == file.id).execute()
    script = WORKER.replace(
        "scan_received(settings, make_scanner(settings), int(sys.argv[2]))",
        "from shared.models import OrderFile, StaffUser\n"
        "from shared.files.intake import release_held\n"
        "release_held(settings, OrderFile.get_by_id(int(sys.argv[2])), StaffUser.get())",
    )
    marker = tmp_path / "paused"
    env = os.environ | {PAUSE_AT: step, PAUSE_MARKER: str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(settings.source), str(file.id)], env=env
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert OrderFile.get_by_id(file.id).state == OrderFile.STATE_TOO_LARGE

    release_held(settings, OrderFile.get_by_id(file.id), staff)

    assert_placed_once(settings, file)
    assert FileEvent.select().where(FileEvent.kind == "released").count() == 1


@pytest.fixture(autouse=True)
def _no_seam_in_this_process(monkeypatch):
    monkeypatch.delenv(PAUSE_AT, raising=False)
