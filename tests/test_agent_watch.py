"""The drop folders: the stability rule, the handlers, and the real watchdog observer in both
modes (inotify for local disks, polling for SMB/NFS)."""

from __future__ import annotations

import pytest
from agent_helpers import wait_for
from conftest import write_ini
from watchdog.events import DirModifiedEvent, FileClosedEvent, FileCreatedEvent, FileMovedEvent

from hotfolder_agent.layout import Layout
from hotfolder_agent.pending import KIND_DIRECTORY, KIND_OUTBOUND, PendingFiles
from hotfolder_agent.watcher import OutboundHandler, start_observer, stop_observer
from shared.config import load_agent_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def agent_settings(tmp_path, **agent):
    values = {"portal_url": "https://portal.example", "token": "pta_x", **agent}
    return load_agent_settings(write_ini(tmp_path, {"agent": values}))


def test_a_file_is_ready_only_after_it_stayed_unchanged_for_the_stable_time(tmp_path):
    clock = FakeClock()
    pending = PendingFiles(stable_seconds=2, clock=clock)
    growing, still = tmp_path / "growing.pdf", tmp_path / "still.pdf"
    growing.write_bytes(b"a")
    still.write_bytes(b"b")
    pending.add(KIND_OUTBOUND, growing)
    pending.add(KIND_OUTBOUND, still)
    assert pending.take_ready() == [], "first look"
    clock.now += 1.9
    assert pending.take_ready() == []
    with growing.open("ab") as handle:
        handle.write(b"more")
    clock.now += 0.1
    assert pending.take_ready() == [(KIND_OUTBOUND, still)]
    clock.now += 1.9
    assert pending.take_ready() == [], "changed: the stable time started again"
    clock.now += 0.1
    assert pending.take_ready() == [(KIND_OUTBOUND, growing)]
    assert len(pending) == 0


def test_a_file_put_back_with_a_delay_waits_it_out_whatever_a_rescan_says(tmp_path):
    clock = FakeClock()
    pending = PendingFiles(stable_seconds=0, clock=clock)
    refused = tmp_path / "refused.pdf"
    refused.write_bytes(b"x")
    pending.add(KIND_OUTBOUND, refused, delay=600)
    clock.now += 2
    pending.add(KIND_OUTBOUND, refused)  # the rescan finds it again
    assert pending.take_ready() == []
    clock.now += 598
    assert pending.take_ready() == [(KIND_OUTBOUND, refused)]


def test_a_vanished_file_is_forgotten(tmp_path):
    pending = PendingFiles(stable_seconds=0)
    pending.add(KIND_OUTBOUND, tmp_path / "gone.pdf")
    assert pending.take_ready() == [] and len(pending) == 0


def test_the_handler_enqueues_only_files_dropped_for_the_customer(tmp_path):
    settings = agent_settings(tmp_path)
    pending = PendingFiles(stable_seconds=0)
    handler = OutboundHandler(Layout(settings), pending)
    hot = settings.hotfolder_root
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Final/proof.pdf")))
    handler.on_any_event(FileClosedEvent(str(hot / "K1/A1/_to_customer/In Bearbeitung/a.pdf")))
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Final/sent/old.pdf")))
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Final/.~lock")))
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Other/x.pdf")))
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/.ptportal-7-abcd.part")))
    handler.on_any_event(FileCreatedEvent(str(hot / "K1/A1/delivered.pdf")))
    handler.on_any_event(DirModifiedEvent(str(hot / "K1/A1/_to_customer/Final")))
    handler.on_any_event(
        FileMovedEvent(str(tmp_path / "x.tmp"), str(hot / "K2/B7/_to_customer/Final/c.pdf"))
    )
    assert (KIND_OUTBOUND, hot / "K1/A1/_to_customer/Final/proof.pdf") in pending
    assert (KIND_OUTBOUND, hot / "K1/A1/_to_customer/In Bearbeitung/a.pdf") in pending
    assert (KIND_OUTBOUND, hot / "K2/B7/_to_customer/Final/c.pdf") in pending
    assert len(pending) == 3


@pytest.mark.parametrize("watch_mode", ["native", "polling"])
def test_the_observer_sees_dropped_files_and_new_folders(tmp_path, watch_mode):
    settings = agent_settings(tmp_path, watch_mode=watch_mode, poll_interval_seconds="0.2")
    drop = settings.hotfolder_root / "K1" / "A1" / "_to_customer" / "Final"
    drop.mkdir(parents=True)
    pending = PendingFiles(stable_seconds=0)
    observer = start_observer(settings, Layout(settings), pending)
    try:
        (drop / "proof.pdf").write_bytes(b"%PDF")
        wait_for(lambda: (KIND_OUTBOUND, drop / "proof.pdf") in pending, timeout=10)
        new_order = settings.hotfolder_root / "K2"
        new_order.mkdir()
        wait_for(lambda: (KIND_DIRECTORY, new_order) in pending, timeout=10)
    finally:
        stop_observer(observer)
