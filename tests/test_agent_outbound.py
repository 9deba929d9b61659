"""Staff files back to customers: outbound folder → portal staging → real clamd → Final → sent."""

from __future__ import annotations

import os

from agent_helpers import (
    agent_world_fixture,  # noqa: F401 (fixture "agent_world")
    all_names,
    hotfolder_of,
    running_agent,
    wait_for,
)
from clamd_helpers import EICAR
from conftest import tasks_for

from hotfolder_agent.context import make_context
from hotfolder_agent.heartbeat import beat
from hotfolder_agent.layout import Layout
from hotfolder_agent.outbound import SENT, _claim, send_outbound
from shared.files.folders import FOLDER_FINAL, FOLDER_IN_PROGRESS
from shared.files.intake import file_path
from shared.files.receiving import EVENT_FROM_HOTFOLDER, stage_local_file
from shared.models import FileEvent, OrderFile, OutboundTransfer


def drop(settings, folder: str, name: str, data: bytes):
    directory = hotfolder_of(settings, "K1", "A1") / "_to_customer" / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def portal_files(folder: str) -> list[OrderFile]:
    return list(OrderFile.select().where(OrderFile.folder == folder).order_by(OrderFile.id))


def test_a_dropped_file_is_scanned_and_appears_in_final_then_moves_to_sent(agent_world):
    settings, _order = agent_world
    data = os.urandom(400_000)
    with running_agent(settings):
        dropped = drop(settings, FOLDER_FINAL, "Proof – Seite 1.pdf", data)
        sent = dropped.parent / "sent" / dropped.name
        wait_for(sent.exists)
        wait_for(lambda: [f.state for f in portal_files(FOLDER_FINAL)] == ["clean"])
    [file] = portal_files(FOLDER_FINAL)
    assert file.display_name == "Proof – Seite 1.pdf" and file.uploaded_by_staff is None
    assert file_path(settings, file).read_bytes() == data
    assert file.sha256 and file.size == len(data)
    assert not dropped.exists() and sent.read_bytes() == data
    event = FileEvent.get(FileEvent.file == file.id)
    assert event.kind == EVENT_FROM_HOTFOLDER and event.detail == str(dropped)
    transfer = OutboundTransfer.get()
    assert transfer.state == OutboundTransfer.STATE_SENT and transfer.sent_path == str(sent)


def test_an_infected_staff_file_never_reaches_the_customer(agent_world):
    settings, _order = agent_world
    with running_agent(settings):
        dropped = drop(settings, FOLDER_IN_PROGRESS, "virus.pdf", EICAR)
        wait_for((dropped.parent / "sent" / "virus.pdf").exists)
    [file] = portal_files(FOLDER_IN_PROGRESS)
    assert file.state == OrderFile.STATE_REJECTED and file.stored_name is None
    folder = settings.storage.order_root / "K1" / "A1" / FOLDER_IN_PROGRESS
    assert all_names(folder) == []


def test_restart_after_a_kill_once_staged_does_not_stage_twice(agent_world):
    settings, order = agent_world
    dropped = drop(settings, FOLDER_FINAL, "a.pdf", b"staged before the kill")
    crashed = make_context(settings, tasks_for(settings))
    beat(crashed)
    _claim(crashed, Layout(settings).outbound(dropped), order)
    stage_local_file(settings, order, dropped, FOLDER_FINAL)
    beat(crashed, stopped=True)

    restarted = make_context(settings, tasks_for(settings))
    outcome = send_outbound(restarted, Layout(settings).outbound(dropped))

    assert outcome.status == SENT
    assert [f.state for f in portal_files(FOLDER_FINAL)] == ["clean"]
    assert all_names(dropped.parent / "sent") == ["a.pdf"]


def test_restart_after_a_kill_between_link_and_unlink_keeps_one_copy_in_sent(agent_world):
    settings, _order = agent_world
    dropped = drop(settings, FOLDER_FINAL, "a.pdf", b"moving")
    ctx = make_context(settings, tasks_for(settings))
    sent = dropped.parent / "sent"
    sent.mkdir()
    os.link(dropped, sent / "a.pdf")

    outcome = send_outbound(ctx, Layout(settings).outbound(dropped))

    assert outcome.sent_path == sent / "a.pdf" and not dropped.exists()
    assert all_names(sent) == ["a.pdf"]
