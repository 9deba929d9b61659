"""The agent as a real process against a real portal over TLS: killed at every step of a
delivery, stopped, doubled, taken over, refused.

``PTPORTAL_AGENT_PAUSE_AT`` (see ``hotfolder_agent.seams``) makes the agent stand still
at a named step and write a marker; the test then SIGKILLs it there and starts it again
(same directory, same state folder), which must finish the job: no file lost, none
delivered twice, none half-written in a hotfolder, one XML per file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import trustme
from agent_helpers import (
    AgentProcess,
    agent_dir,
    all_names,
    clean_upload,
    hotfolder_of,
    make_order,
    notifications,
    portal_copy,
    running_portal,
    visible_files,
    wait_for,
)
from conftest import write_ini
from lxml import etree

from hotfolder_agent.delivery import STEP_LINKED, STEP_PLACED, STEP_PLANNED, STEP_VERIFIED
from hotfolder_agent.download import STEP_DOWNLOAD_STARTED
from hotfolder_agent.notification import STEP_BEFORE_XML
from hotfolder_agent.seams import PAUSE_AT, PAUSE_MARKER, PAUSE_SECONDS
from shared.accounts.api_tokens import create_token, revoke_token
from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import AgentError, Delivery, OrderFile
from shared.orders.workflow_xml import SCHEMA_PATH

FILE_BYTES = 2 * 1024 * 1024 + 123  # more than one read: "download started" is a partial file
STEPS = [
    STEP_DOWNLOAD_STARTED,
    STEP_VERIFIED,
    STEP_PLANNED,
    STEP_LINKED,
    STEP_PLACED,
    STEP_BEFORE_XML,
]


@pytest.fixture
def portal(tmp_path, clamd):
    with running_portal(tmp_path / "portal", clamd) as host:
        yield host


@pytest.fixture
def plant(portal):
    """Three clean uploads in two orders of two customers, and no agent yet."""
    settings = portal.settings
    first, second = make_order(settings, "A1"), make_order(settings, "B7", "K2")
    files = [
        clean_upload(settings, first, "Innenteil.pdf", os.urandom(FILE_BYTES)),
        clean_upload(settings, first, "Umschlag & Rücken.pdf", os.urandom(FILE_BYTES)),
        clean_upload(settings, second, "Плакат.pdf", os.urandom(FILE_BYTES)),
    ]
    return files


@pytest.fixture
def agents():
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def expected_hotfolders(portal, settings, files) -> dict:
    """{hotfolder: {stored name: bytes}} as it must end up."""
    result: dict = {}
    for file in files:
        file = OrderFile.get_by_id(file.id)
        order = file.order
        folder = hotfolder_of(settings, order.customer.customer_no, order.project_no)
        result.setdefault(folder, {})[file.stored_name] = portal_copy(portal.settings, file)
    return result


def assert_nothing_half_written(portal, settings, files) -> None:
    complete = {
        data
        for folder in expected_hotfolders(portal, settings, files).values()
        for data in folder.values()
    }
    for folder in expected_hotfolders(portal, settings, files):
        for name in visible_files(folder):
            assert (folder / name).read_bytes() in complete, f"half-written {folder / name}"


def assert_delivered_exactly_once(portal, settings, files) -> None:
    """Each file once in its hotfolder (where the portal says), whole, and in one XML."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    placed: dict = {}
    for file in files:
        row = Delivery.get(Delivery.file == file.id)
        path = Path(row.hotfolder_path)
        assert path.read_bytes() == portal_copy(portal.settings, OrderFile.get_by_id(file.id))
        placed.setdefault(path.parent, []).append(path.name)
    assert set(placed) == set(expected_hotfolders(portal, settings, files))
    for folder, names in placed.items():
        assert visible_files(folder) == sorted(names), "none lost, none twice"
        assert not [n for n in all_names(folder) if n.startswith(".")], "no temporary files"
    listed = []
    for path in notifications(settings):
        document = etree.parse(str(path))
        assert schema.validate(document), schema.error_log
        listed += [element.text for element in document.iter("hotfolderPath")]
    rows = Delivery.select().where(Delivery.state == Delivery.STATE_DONE)
    assert sorted(listed) == sorted(row.hotfolder_path for row in rows), "each file in one XML"
    assert len(listed) == len(files)
    assert not list(settings.notification_dir.glob(".*")), "no temporary XML"
    assert not list((settings.state_dir / "deliveries").glob("*.json")), "no records left"


def records(settings) -> dict[int, dict]:
    """The per-file records of the state folder (step 1), by file id."""
    folder = settings.state_dir / "deliveries"
    return {
        int(path.stem): json.loads(path.read_text())
        for path in folder.glob("*.json")
        if path.stem.isdigit()
    }


def plans(settings) -> dict[int, dict]:
    """The plan records' entries (step 4), by file id."""
    entries = {}
    for path in (settings.state_dir / "deliveries").glob("plan-*.json"):
        for file_id, entry in json.loads(path.read_text())["files"].items():
            entries[int(file_id)] = entry
    return entries


def assert_killed_at(step: str, portal, settings, files) -> None:
    """The disk, the state folder and the portal look as the step says: the kill hit there.

    With one download thread the files are fetched one at a time. Steps 1–3 stand on
    that thread (the others wait); from step 4 on the main loop stands, while the thread
    may fetch the next files meanwhile.
    """
    hidden, shown = [], []
    for folder in expected_hotfolders(portal, settings, files):
        hidden += [folder / n for n in all_names(folder) if n.startswith(".ptportal-")]
        shown += [folder / n for n in visible_files(folder)]
    sizes = {file.id: file.size for file in files}
    done = Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count()
    steps = {file_id: record["step"] for file_id, record in records(settings).items()}
    if step == STEP_DOWNLOAD_STARTED:
        [partial] = hidden
        assert partial.stat().st_size < FILE_BYTES and not shown
        assert set(steps.values()) == {"downloading"}
    elif step == STEP_VERIFIED:
        assert [p for p in hidden if p.stat().st_size == FILE_BYTES] and not shown
        assert not plans(settings)
    elif step == STEP_PLANNED:
        entries = plans(settings)
        assert entries and not shown
        assert not any(Path(entry["planned"]).exists() for entry in entries.values())
        assert all(sizes[file_id] == FILE_BYTES for file_id in entries)
    elif step == STEP_LINKED:
        [linked] = shown
        assert [temp for temp in hidden if os.path.samefile(temp, linked)]
    elif step == STEP_PLACED:
        assert len(shown) >= 1 and done == 0
    elif step == STEP_BEFORE_XML:
        assert done >= 1 and not notifications(settings)


def paused_agent(settings, agents: list, step: str) -> AgentProcess:
    marker = settings.source.parent / "paused"
    agent = AgentProcess(settings, "crashing", env={PAUSE_AT: step, PAUSE_MARKER: str(marker)})
    agents.append(agent)
    wait_for(marker.exists, timeout=30)
    return agent


def all_notified(settings, count: int):
    return lambda: (
        len(notifications(settings)) == count
        and (Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count() == count)
    )


def finish_with_restarted_agent(portal, settings, agents: list, files) -> AgentProcess:
    agent = AgentProcess(settings, "restarted")
    agents.append(agent)
    wait_for(all_notified(settings, len(files)), timeout=60)
    wait_for(lambda: not list((settings.state_dir / "deliveries").glob("*.json")), timeout=10)
    assert agent.terminate() == 0, agent.log
    assert_delivered_exactly_once(portal, settings, files)
    return agent


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_any_step_and_restart_finishes_the_job(portal, plant, agents, tmp_path, step):
    settings = agent_dir(tmp_path / "agent", portal, downloads="1")
    crashing = paused_agent(settings, agents, step)
    crashing.kill()
    assert_killed_at(step, portal, settings, plant)
    assert_nothing_half_written(portal, settings, plant)

    restarted = finish_with_restarted_agent(portal, settings, agents, plant)
    assert "Traceback" not in crashing.log + restarted.log


@pytest.mark.parametrize("step", [STEP_PLANNED, STEP_LINKED, STEP_PLACED])
def test_a_kill_among_many_files_loses_and_doubles_nothing(portal, plant, agents, tmp_path, step):
    first = OrderFile.get_by_id(plant[0].id).order
    second = OrderFile.get_by_id(plant[2].id).order
    plant += [
        clean_upload(
            portal.settings, (first, second)[n % 2], f"Seite {n}.pdf", os.urandom(30_000 + n)
        )
        for n in range(40)
    ]
    settings = agent_dir(tmp_path / "agent", portal, downloads="4")
    crashing = paused_agent(settings, agents, step)
    crashing.kill()
    assert_nothing_half_written(portal, settings, plant)
    finish_with_restarted_agent(portal, settings, agents, plant)


def test_another_agent_takes_over_a_dead_agents_files_and_only_one_copy_remains(
    portal, plant, agents, tmp_path
):
    """Agent one dies after linking; its lease runs out; agent two (own state folder, same
    hotfolder tree) delivers the file; agent one, started again, removes its own copy."""
    shared = {"hotfolder_root": str(tmp_path / "hot"), "notification_dir": str(tmp_path / "xml")}
    one = agent_dir(tmp_path / "one", portal, downloads="1", **shared)
    two = agent_dir(tmp_path / "two", portal, downloads="1", **shared)
    crashing = paused_agent(one, agents, STEP_LINKED)
    crashing.kill()
    with write_transaction():  # as if ten seconds of silence had passed
        Delivery.update(lease_until=utcnow() - timedelta(seconds=1)).execute()
    second = AgentProcess(two, "two")
    agents.append(second)
    wait_for(all_notified(two, len(plant)), timeout=60)
    assert second.terminate() == 0
    restarted = AgentProcess(one, "one-again")
    agents.append(restarted)
    wait_for(lambda: "action=let_go" in restarted.log, timeout=30)
    wait_for(lambda: not list((one.state_dir / "deliveries").glob("*.json")), timeout=30)
    assert restarted.terminate() == 0
    assert_delivered_exactly_once(portal, two, plant)
    assert "removed this agent's copy" in restarted.log


def test_two_agents_on_one_tree_never_deliver_a_file_twice(portal, plant, agents, tmp_path):
    order = OrderFile.get_by_id(plant[0].id).order
    plant += [
        clean_upload(portal.settings, order, f"Seite {n}.pdf", os.urandom(20_000))
        for n in range(12)
    ]
    shared = {"hotfolder_root": str(tmp_path / "hot"), "notification_dir": str(tmp_path / "xml")}
    one = agent_dir(tmp_path / "one", portal, **shared)
    two = agent_dir(tmp_path / "two", portal, **shared)
    agents += [AgentProcess(one, "one"), AgentProcess(two, "two")]
    wait_for(all_notified(one, len(plant)), timeout=60)
    assert [agent.terminate() for agent in agents] == [0, 0]
    assert_delivered_exactly_once(portal, one, plant)


# --- stopping ------------------------------------------------------------------------------


def stops_quickly(agent: AgentProcess) -> float:
    started = time.monotonic()
    assert agent.terminate(timeout=10) == 0, agent.log
    return time.monotonic() - started


def test_sigterm_stops_within_five_seconds_while_waiting_for_work(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    agent = AgentProcess(settings)
    agents.append(agent)
    wait_for(lambda: "POST /api/v1/agent/leases" in portal.log(), timeout=30)
    time.sleep(1)  # now in the long poll
    assert stops_quickly(agent) < 5
    assert "action=stop" in agent.log


def test_sigterm_stops_within_five_seconds_at_a_step_and_the_job_goes_on_later(
    portal, plant, agents, tmp_path
):
    settings = agent_dir(tmp_path / "agent", portal, downloads="1")
    marker = settings.source.parent / "paused"
    agent = AgentProcess(
        settings,
        env={PAUSE_AT: STEP_DOWNLOAD_STARTED, PAUSE_MARKER: str(marker), PAUSE_SECONDS: "1"},
    )
    agents.append(agent)
    wait_for(marker.exists, timeout=30)
    assert stops_quickly(agent) < 5
    assert_nothing_half_written(portal, settings, plant)
    finish_with_restarted_agent(portal, settings, agents, plant)


def test_sigusr1_writes_every_threads_stack_to_the_log_and_the_agent_goes_on(
    portal, plant, agents, tmp_path
):
    settings = agent_dir(tmp_path / "agent", portal)
    agent = AgentProcess(settings)
    agents.append(agent)
    wait_for(all_notified(settings, len(plant)), timeout=60)
    agent.process.send_signal(signal.SIGUSR1)
    wait_for(lambda: "hotfolder_agent/poller.py" in agent.log, timeout=10)
    stacks = agent.log
    assert stacks.count("(most recent call first)") >= 3
    assert "hotfolder_agent/agent.py" in stacks and "hotfolder_agent/reporter.py" in stacks
    assert agent.terminate() == 0, agent.log


# --- refused and unusable ------------------------------------------------------------------------


def test_a_revoked_token_is_said_once_and_waited_on_without_a_hot_loop(
    portal, plant, agents, tmp_path
):
    token = create_token("doomed", "agent")
    settings = agent_dir(tmp_path / "agent", portal, token=token)
    revoke_token("doomed")
    agent = AgentProcess(settings)
    agents.append(agent)
    wait_for(lambda: "refuses the agent token" in agent.log, timeout=30)
    time.sleep(3)
    assert agent.log.count("refuses the agent token") == 1
    requests = portal.log().count("/api/v1/agent/")
    assert requests <= 6, f"{requests} requests in 3 s: a hot loop"
    assert "[agent] token" in agent.log and "PTPORTAL_AGENT_TOKEN" in agent.log
    assert stops_quickly(agent) < 5
    assert Delivery.select().count() == 0


def test_a_workflow_token_is_refused_like_a_wrong_one(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal, token=create_token("erp"))
    agent = AgentProcess(settings)
    agents.append(agent)
    wait_for(lambda: "refuses the agent token" in agent.log, timeout=30)
    assert "not an agent token" in agent.log
    assert stops_quickly(agent) < 5


def test_an_unknown_certificate_is_refused_and_said_once(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "agent" / "portal-ca.pem"))
    agent = AgentProcess(settings)
    agents.append(agent)
    wait_for(lambda: "is not trusted" in agent.log, timeout=30)
    time.sleep(1)
    assert agent.log.count("is not trusted") == 1
    assert "[agent] ca_file" in agent.log
    assert stops_quickly(agent) < 5


def test_an_unwritable_hotfolder_is_shown_and_others_still_served(portal, plant, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    blocked = hotfolder_of(settings, "K2", "B7")
    blocked.mkdir(parents=True)
    blocked.chmod(0o555)
    agent = AgentProcess(settings, obey_permissions=True)
    agents.append(agent)
    try:
        wait_for(all_notified(settings, 2), timeout=60)
        wait_for(lambda: AgentError.select().where(AgentError.action == "deliver").exists())
        error = AgentError.get(AgentError.action == "deliver")
        assert error.path == str(blocked) and "Permission denied" in error.reason
        assert error.order.project_no == "B7"
        assert visible_files(blocked) == []
        assert agent.log.count("failed: Permission denied") == 1
    finally:
        blocked.chmod(0o755)
    assert agent.terminate() == 0
    restarted = AgentProcess(settings, "restarted")
    agents.append(restarted)
    wait_for(all_notified(settings, 3), timeout=60)
    assert restarted.terminate() == 0
    assert_delivered_exactly_once(portal, settings, plant)
    assert not AgentError.select().where(AgentError.resolved_at.is_null()).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_a_full_hotfolder_disk_keeps_no_half_file_and_delivers_once_there_is_room(
    portal, agents, tmp_path
):
    order = make_order(portal.settings, "A1")
    big = clean_upload(portal.settings, order, "gross.pdf", os.urandom(3 * 1024 * 1024))
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        settings = agent_dir(
            tmp_path / "agent",
            portal,
            hotfolder_root=str(mount / "hot"),
            notification_dir=str(tmp_path / "xml"),
        )
        agent = AgentProcess(settings)
        agents.append(agent)
        wait_for(lambda: AgentError.select().exists(), timeout=60)
        error = AgentError.get()
        assert "full" in error.reason and error.file_id == big.id
        hotfolder = hotfolder_of(settings, "K1", "A1")
        wait_for(lambda: not [n for n in all_names(hotfolder) if n.startswith(".")])
        assert visible_files(hotfolder) == []
        assert agent.terminate() == 0
        subprocess.run(["mount", "-o", "remount,size=8m", str(mount)], check=True)
        restarted = AgentProcess(settings, "restarted")
        agents.append(restarted)
        wait_for(all_notified(settings, 1), timeout=60)
        assert restarted.terminate() == 0
        assert (hotfolder / "gross.pdf").read_bytes() == portal_copy(portal.settings, big)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_second_agent_on_the_same_state_folder_stops_with_exit_code_3(portal, agents, tmp_path):
    settings = agent_dir(tmp_path / "agent", portal)
    agents.append(AgentProcess(settings))
    wait_for(lambda: "action=start" in agents[0].log, timeout=30)
    second = subprocess.run(
        [sys.executable, "-m", "hotfolder_agent", "--config", str(settings.source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 3
    assert "in use by another agent process" in second.stderr


def test_a_bad_client_ini_stops_the_agent_with_one_line_and_exit_code_2(tmp_path):
    ini = write_ini(
        tmp_path,
        {"agent": {"portal_url": "https://p.example", "token": "x", "watch_mode": "sometimes"}},
    )
    result = subprocess.run(
        [sys.executable, "-m", "hotfolder_agent", "--config", str(ini)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "[agent] watch_mode = 'sometimes' is not allowed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_agent_imports_neither_the_portal_nor_its_database():
    code = (
        "import sys, hotfolder_agent.agent, hotfolder_agent.cli\n"
        "bad = [m for m in ('portal', 'flask', 'peewee', 'shared.models', 'shared.db')"
        " if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
