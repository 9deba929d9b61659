"""The real watchdog observer in both modes, the handlers and the stability rule on their own."""

from __future__ import annotations

import os
import time

import pytest
from agent_helpers import (
    agent_settings,
    agent_world_fixture,  # noqa: F401 (fixture "agent_world")
    clean_upload,
    hotfolder_of,
    make_order,
    notifications,
    running_agent,
    visible_files,
    wait_for,
)
from watchdog.events import DirModifiedEvent, FileClosedEvent, FileCreatedEvent, FileMovedEvent

from hotfolder_agent.layout import Layout
from hotfolder_agent.pending import KIND_INCOMING, KIND_OUTBOUND, PendingFiles
from hotfolder_agent.watcher import OrderFolderHandler, OutboundHandler
from shared.db import bind_database, database
from shared.models import AgentError, AgentHeartbeat, Customer, Delivery, Notification
from shared.schema import init_database


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_ready_only_after_it_stayed_unchanged_for_the_stable_time(tmp_path):
    clock = FakeClock()
    pending = PendingFiles(stable_seconds=2, clock=clock)
    growing, still = tmp_path / "growing.pdf", tmp_path / "still.pdf"
    growing.write_bytes(b"a")
    still.write_bytes(b"b")
    pending.add(KIND_INCOMING, growing)
    pending.add(KIND_INCOMING, still)
    assert pending.take_ready() == [], "first look"
    clock.now += 1.9
    assert pending.take_ready() == []
    with growing.open("ab") as handle:
        handle.write(b"more")
    clock.now += 0.1
    assert pending.take_ready() == [(KIND_INCOMING, still)]
    clock.now += 1.9
    assert pending.take_ready() == [], "changed: the stable time started again"
    clock.now += 0.1
    assert pending.take_ready() == [(KIND_INCOMING, growing)]
    assert len(pending) == 0


def test_a_vanished_file_is_forgotten(tmp_path):
    pending = PendingFiles(stable_seconds=0)
    pending.add(KIND_INCOMING, tmp_path / "gone.pdf")
    assert pending.take_ready() == [] and len(pending) == 0


def test_handlers_only_enqueue_files_in_eingehend_and_outbound_folders(agent_world):
    settings, _order = agent_world
    layout = Layout(settings)
    pending = PendingFiles(stable_seconds=0)
    incoming = OrderFolderHandler(layout, pending)
    outbound = OutboundHandler(layout, pending)
    root = settings.storage.order_root
    hot = settings.agent.hotfolder_root

    incoming.on_any_event(FileCreatedEvent(str(root / "K1/A1/Eingehend/a.pdf")))
    incoming.on_any_event(FileClosedEvent(str(root / "K1/A1/Final/b.pdf")))
    incoming.on_any_event(FileCreatedEvent(str(root / "K1/A1/Eingehend/.hidden")))
    incoming.on_any_event(DirModifiedEvent(str(root / "K1/A1/Eingehend")))
    incoming.on_any_event(
        FileMovedEvent(str(root / "K1/x.tmp"), str(root / "K1/A1/Eingehend/c.pdf"))
    )
    outbound.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Final/proof.pdf")))
    outbound.on_any_event(FileCreatedEvent(str(hot / "K1/A1/_to_customer/Final/sent/old.pdf")))
    outbound.on_any_event(FileCreatedEvent(str(hot / "K1/A1/a.pdf")))

    assert (KIND_INCOMING, root / "K1/A1/Eingehend/a.pdf") in pending
    assert (KIND_INCOMING, root / "K1/A1/Eingehend/c.pdf") in pending
    assert (KIND_OUTBOUND, hot / "K1/A1/_to_customer/Final/proof.pdf") in pending
    assert len(pending) == 3


@pytest.mark.parametrize("watch_mode", ["native", "polling"])
def test_observer_delivers_new_uploads_end_to_end(tmp_path, clamd, watch_mode):
    # Rescans are rare here, so the observer's events must do the work.
    settings = agent_settings(tmp_path, clamd, watch_mode=watch_mode, rescan_seconds=600)
    bind_database(settings.database.url)
    init_database("Testdruck")
    order = make_order(settings, "A1")
    try:
        with running_agent(settings):
            wait_for(lambda: hotfolder_of(settings, "K1", "A1").is_dir())
            files = [
                clean_upload(settings, order, f"Seite {n}.pdf", os.urandom(50_000 + n))
                for n in range(3)
            ]
            # an order created while the agent runs: its folders appear later
            later = make_order(settings, "A2", "K2")
            files.append(clean_upload(settings, later, "Umschlag.pdf", b"cover" * 1000))
            wait_for(lambda: len(notifications(settings)) == 4)
        assert visible_files(hotfolder_of(settings, "K1", "A1")) == [
            "Seite 0.pdf",
            "Seite 1.pdf",
            "Seite 2.pdf",
        ]
        assert visible_files(hotfolder_of(settings, "K2", "A2")) == ["Umschlag.pdf"]
        assert Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count() == 4
        beat = AgentHeartbeat.get()
        assert beat.watch_mode == watch_mode and beat.stopped_at is not None
    finally:
        database.close()


def test_startup_rescan_delivers_what_arrived_while_stopped(agent_world):
    settings, order = agent_world
    before = clean_upload(settings, order, "before.pdf", b"arrived while stopped")
    with running_agent(settings):
        wait_for(lambda: notifications(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    assert visible_files(hotfolder) == [before.stored_name]
    assert (hotfolder / "_to_customer" / "Final").is_dir()
    assert (hotfolder / "_to_customer" / "In Bearbeitung").is_dir()


def test_a_file_without_a_clean_upload_record_is_not_delivered_but_shown(agent_world):
    settings, order = agent_world
    stray = settings.storage.order_root / "K1" / "A1" / "Eingehend" / "stray.pdf"
    stray.write_bytes(b"nobody uploaded this")
    clean = clean_upload(settings, order, "real.pdf", b"uploaded")
    with running_agent(settings):
        wait_for(lambda: notifications(settings))
        wait_for(lambda: AgentError.select().where(AgentError.path == str(stray)).exists())
    assert visible_files(hotfolder_of(settings, "K1", "A1")) == [clean.stored_name]
    error = AgentError.get(AgentError.path == str(stray))
    assert "no clean upload" in error.reason and error.resolved_at is None


def test_sigterm_like_stop_writes_the_notifications_of_delivered_files(tmp_path, clamd):
    settings = agent_settings(tmp_path, clamd, batch_window_seconds=600)
    bind_database(settings.database.url)
    init_database("Testdruck")
    order = make_order(settings, "A1")
    try:
        clean_upload(settings, order, "a.pdf", b"a")
        clean_upload(settings, order, "b.pdf", b"b")
        with running_agent(settings):
            hotfolder = hotfolder_of(settings, "K1", "A1")
            wait_for(lambda: len(visible_files(hotfolder)) == 2)
            time.sleep(0.3)
            assert notifications(settings) == [], "the batch window is still open"
        written = notifications(settings)
        assert len(written) == 1, "one notification for the batch, written on stop"
        assert written[0].read_text().count("<file>") == 2
    finally:
        database.close()


def test_customers_without_hotfolder_keep_their_files_in_the_portal_only(agent_world):
    settings, order = agent_world
    with_hotfolder = clean_upload(settings, order, "mit.pdf", b"goes to the hotfolder")
    other = make_order(settings, "B1", customer_no="K2")
    Customer.update(create_hotfolder=False).where(Customer.customer_no == "K2").execute()
    clean_upload(settings, other, "ohne.pdf", b"stays in the portal")
    with running_agent(settings) as agent:
        wait_for(lambda: notifications(settings))
        agent.rescan()
        time.sleep(1.0)  # several stable periods: K2's file had every chance to go
    assert visible_files(hotfolder_of(settings, "K1", "A1")) == [with_hotfolder.stored_name]
    assert not hotfolder_of(settings, "K2", "B1").exists() or not visible_files(
        hotfolder_of(settings, "K2", "B1")
    )
    assert not AgentError.select().exists(), "a customer without hotfolder is no error"
    kinds = [n.kind for n in Notification.select().where(Notification.kind == "files_delivered")]
    assert kinds == ["files_delivered"], "the delivery is announced to staff once"
