"""Staff files back to the customer: dropped in the agent's hotfolder, uploaded with tus,
scanned by the portal's worker like any upload, then moved into ``sent``.

A real portal over TLS with its worker (SQLite queue) and clamd; the agent in its own
directory. Killed in the middle of an upload, the agent continues where the portal
stopped: one file in the portal, not two.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from agent_helpers import (
    AgentProcess,
    agent_dir,
    hotfolder_of,
    make_order,
    running_portal,
    wait_for,
)
from clamd_helpers import EICAR

from hotfolder_agent.outbound import CHUNK_BYTES, STEP_UPLOAD_STARTED
from hotfolder_agent.seams import PAUSE_AT, PAUSE_MARKER
from shared.files.access import visible_to_customer
from shared.models import AgentError, OrderFile, OutboundTransfer


@pytest.fixture
def portal(tmp_path, clamd):
    with running_portal(tmp_path / "portal", clamd, with_worker=True) as host:
        make_order(host.settings, "A1")
        yield host


@pytest.fixture
def agents():
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def drop(settings, folder: str, name: str, data: bytes, project_no: str = "A1"):
    directory = hotfolder_of(settings, "K1", project_no) / "_to_customer" / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def staff_files(folder: str):
    return list(OrderFile.select().where(OrderFile.folder == folder))


def test_a_dropped_file_is_scanned_and_reaches_the_customer_then_moves_to_sent(
    portal, agents, tmp_path
):
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    data = b"%PDF-1.7 proof " * 50_000
    dropped = drop(settings, "Final", "Proof für Kunde.pdf", data)
    wait_for(lambda: [f for f in staff_files("Final") if f.state == "clean"], timeout=60)
    [file] = staff_files("Final")
    assert file.display_name == "Proof für Kunde.pdf"
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert OrderFile.select().where(visible_to_customer() & (OrderFile.id == file.id)).exists()
    sent = dropped.parent / "sent" / dropped.name
    wait_for(sent.exists, timeout=30)
    assert not dropped.exists() and sent.read_bytes() == data
    transfer = OutboundTransfer.get()
    assert transfer.state == OutboundTransfer.STATE_SENT
    assert transfer.source_path == str(dropped)
    assert agents[0].terminate() == 0


def test_an_infected_staff_file_never_reaches_the_customer(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    drop(settings, "In Bearbeitung", "virus.pdf", EICAR)
    wait_for(lambda: [f for f in staff_files("In Bearbeitung") if f.state == "rejected"], 60)
    [file] = staff_files("In Bearbeitung")
    assert not OrderFile.select().where(visible_to_customer() & (OrderFile.id == file.id)).exists()
    assert agents[0].terminate() == 0


def test_a_kill_in_the_middle_of_an_upload_continues_where_the_portal_stopped(
    portal, agents, tmp_path
):
    settings = agent_dir(tmp_path / "agent", portal)
    marker = tmp_path / "agent" / "paused"
    crashing = AgentProcess(
        settings, "crashing", env={PAUSE_AT: STEP_UPLOAD_STARTED, PAUSE_MARKER: str(marker)}
    )
    agents.append(crashing)
    data = os.urandom(CHUNK_BYTES + 3_000_000)
    dropped = drop(settings, "Final", "gross.pdf", data)
    wait_for(marker.exists, timeout=60)
    crashing.kill()
    [file] = staff_files("Final")
    assert file.state == OrderFile.STATE_UPLOADING and file.received_bytes == CHUNK_BYTES
    restarted = AgentProcess(settings, "restarted")
    agents.append(restarted)
    # Larger than the test clamd scans (5 MiB): held for staff once it arrived whole.
    wait_for(lambda: OrderFile.get_by_id(file.id).state == "too_large", timeout=60)
    assert OrderFile.get_by_id(file.id).sha256 == hashlib.sha256(data).hexdigest()
    assert [f.id for f in staff_files("Final")] == [file.id], "one file, not two"
    wait_for(lambda: (dropped.parent / "sent" / "gross.pdf").exists(), timeout=30)
    assert restarted.terminate() == 0


def test_a_drop_folder_of_an_unknown_order_is_reported(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    dropped = drop(settings, "Final", "x.pdf", b"x" * 100, project_no="X9")
    wait_for(lambda: AgentError.select().where(AgentError.action == "send").exists(), 60)
    error = AgentError.get(AgentError.action == "send")
    assert error.path == str(dropped) and "404" in error.reason and "not yours" in error.reason
    assert dropped.exists(), "left where it is"
    assert agents[0].terminate() == 0


def test_a_portal_that_takes_smaller_chunks_gets_them(clamd, agents, tmp_path):
    # [portal] upload_chunk_bytes below the agent's own chunk: the agent sends what the
    # portal says it takes (HEAD), not its own size, which the portal would refuse (413).
    with running_portal(
        tmp_path / "portal", clamd, with_worker=True, portal={"upload_chunk_bytes": "1M"}
    ) as small:
        make_order(small.settings, "A1")
        settings = agent_dir(tmp_path / "agent", small)
        agents.append(AgentProcess(settings))
        data = os.urandom(3 * 1024 * 1024 + 17)
        drop(settings, "Final", "drei Teile.pdf", data)
        wait_for(lambda: [f for f in staff_files("Final") if f.state == "clean"], timeout=60)
        [file] = staff_files("Final")
        assert file.sha256 == hashlib.sha256(data).hexdigest()
        assert "413" not in small.log()
        assert agents[0].terminate() == 0
