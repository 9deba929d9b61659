"""The agent as a real process: killed at every step of a delivery, stopped, doubled, cut off.

``PTPORTAL_AGENT_PAUSE_AT`` (see ``hotfolder_agent.seams``) makes the child stop
still at a named step and write a marker; the test then SIGKILLs it there and
starts a fresh agent, which must finish the job: no file lost, none delivered
twice, none half-written in a hotfolder, one XML per file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from agent_helpers import (
    agent_settings,
    all_names,
    clean_upload,
    hotfolder_of,
    is_running,
    make_order,
    notifications,
    start_agent_process,
    visible_files,
    wait_for,
)
from conftest import base_sections, write_ini
from lxml import etree

from hotfolder_agent import job_xml
from hotfolder_agent.copying import STEP_COPY_STARTED, STEP_TEMP_COMPLETE
from hotfolder_agent.delivery import STEP_BEFORE_RECORD, STEP_LINKED
from hotfolder_agent.notification import STEP_BEFORE_XML
from hotfolder_agent.seams import PAUSE_AT, PAUSE_MARKER, PAUSE_SECONDS
from shared.db import bind_database, database
from shared.models import AgentError, Delivery, OrderFile
from shared.schema import init_database

FILE_BYTES = 2 * 1024 * 1024 + 123  # more than one copy chunk: "copy started" is a partial file


@pytest.fixture
def plant(tmp_path, clamd):
    """Three clean uploads in two orders of two customers, and no agent yet."""
    settings = agent_settings(tmp_path, clamd)
    bind_database(settings.database.url)
    init_database("Testdruck")
    first, second = make_order(settings, "A1"), make_order(settings, "B7", "K2")
    files = [
        clean_upload(settings, first, "Innenteil.pdf", os.urandom(FILE_BYTES)),
        clean_upload(settings, first, "Umschlag & Rücken.pdf", os.urandom(FILE_BYTES)),
        clean_upload(settings, second, "Плакат.pdf", os.urandom(FILE_BYTES)),
    ]
    agents = []
    yield settings, files, agents
    for agent in agents:
        agent.stop()
    database.close()


def expected_hotfolders(settings, files) -> dict:
    """{hotfolder: {stored name: bytes}} as it must end up."""
    result: dict = {}
    for file in files:
        order = file.order
        source = settings.storage.order_root / order.customer.customer_no / order.project_no
        data = (source / "Eingehend" / file.stored_name).read_bytes()
        folder = hotfolder_of(settings, order.customer.customer_no, order.project_no)
        result.setdefault(folder, {})[file.stored_name] = data
    return result


def assert_nothing_half_written(settings, files) -> None:
    complete = {
        data for folder in expected_hotfolders(settings, files).values() for data in folder.values()
    }
    for folder in expected_hotfolders(settings, files):
        for name in visible_files(folder):
            assert (folder / name).read_bytes() in complete, f"half-written {folder / name}"


def assert_delivered_exactly_once(settings, files) -> None:
    schema = etree.XMLSchema(etree.parse(str(job_xml.SCHEMA_PATH)))
    for folder, wanted in expected_hotfolders(settings, files).items():
        assert visible_files(folder) == sorted(wanted), "none lost, none twice"
        for name, data in wanted.items():
            assert (folder / name).read_bytes() == data
        assert not [n for n in all_names(folder) if n.startswith(".")], "no temporary files"
    listed = []
    for path in notifications(settings):
        document = etree.parse(str(path))
        assert schema.validate(document), schema.error_log
        listed += [element.text for element in document.iter("hotfolderPath")]
    rows = Delivery.select().where(Delivery.state == Delivery.STATE_DONE)
    assert sorted(listed) == sorted(row.hotfolder_path for row in rows), "each file in one XML"
    assert len(listed) == len(files)
    assert not list(settings.agent.notification_dir.glob(".*")), "no temporary XML"


def assert_killed_at(step: str, settings, files) -> None:
    """The disk and the database look as the step says: the kill really hit there.

    The files arrive together, so they go through the steps as one batch: every copy
    is made durable before the first is linked, every one is linked before the batch
    is recorded.
    """
    hidden, shown = [], []
    for folder in expected_hotfolders(settings, files):
        hidden += [folder / n for n in all_names(folder) if n.startswith(".ptportal-")]
        shown += [folder / n for n in visible_files(folder)]
    size_of = {f".ptportal-{file.id}.part": file.size for file in files}
    intents = Delivery.select().where(Delivery.state == Delivery.STATE_INTENT).count()
    done = Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count()
    if step == STEP_COPY_STARTED:
        [partial] = hidden  # the batch's first copy, half-way
        assert partial.stat().st_size < size_of[partial.name] and not shown
    elif step == STEP_TEMP_COMPLETE:
        assert len(hidden) == len(files) and not shown
        assert all(p.stat().st_size == size_of[p.name] for p in hidden), "complete copies"
    elif step == STEP_LINKED:
        [linked] = shown  # the first of the batch, its temporary name not removed yet
        assert len(hidden) == len(files)
        assert [os.path.samefile(path, linked) for path in hidden].count(True) == 1
    elif step == STEP_BEFORE_RECORD:
        assert not hidden and len(shown) == len(files) and (intents, done) == (len(files), 0)
    elif step == STEP_BEFORE_XML:
        assert done == len(files) and not notifications(settings)


def all_notified(settings, count: int):
    return lambda: (
        len(notifications(settings)) == count
        and Delivery.select().where(Delivery.notification.is_null(False)).count() == count
    )


def paused_agent(settings, agents: list, step: str):
    """An agent process that stopped at ``step`` (the test seam) and waits there."""
    marker = settings.source.parent / "paused"
    agent = start_agent_process(
        settings, "crashing", env={PAUSE_AT: step, PAUSE_MARKER: str(marker)}
    )
    agents.append(agent)
    wait_for(marker.exists, timeout=20)
    return agent


def finish_with_new_agent(settings, agents: list, files: list):
    """Start another agent, let it deliver and notify everything, stop it; each file once."""
    agent = start_agent_process(settings, "restarted")
    agents.append(agent)
    wait_for(all_notified(settings, len(files)), timeout=30)
    assert agent.terminate() == 0, agent.log
    assert_delivered_exactly_once(settings, files)
    return agent


@pytest.mark.parametrize(
    "step",
    [STEP_COPY_STARTED, STEP_TEMP_COMPLETE, STEP_LINKED, STEP_BEFORE_RECORD, STEP_BEFORE_XML],
)
def test_kill_at_any_step_and_restart_finishes_the_job(plant, step):
    settings, files, agents = plant
    crashing = paused_agent(settings, agents, step)
    crashing.kill()
    assert_killed_at(step, settings, files)
    assert_nothing_half_written(settings, files)

    restarted = finish_with_new_agent(settings, agents, files)
    assert "Traceback" not in crashing.log + restarted.log


@pytest.mark.parametrize("step", [STEP_TEMP_COMPLETE, STEP_LINKED, STEP_BEFORE_RECORD])
def test_a_kill_in_the_middle_of_a_large_batch_loses_and_doubles_nothing(plant, step):
    settings, files, agents = plant
    first, second = OrderFile.get_by_id(files[0].id).order, OrderFile.get_by_id(files[2].id).order
    files += [
        clean_upload(settings, (first, second)[n % 2], f"Seite {n}.pdf", os.urandom(30_000 + n))
        for n in range(40)
    ]
    crashing = paused_agent(settings, agents, step)
    workers = crashing.children()
    assert workers, "the copies are made in worker processes"
    crashing.kill()
    wait_for(lambda: not any(is_running(pid) for pid in workers), timeout=10)
    assert_killed_at(step, settings, files)
    assert_nothing_half_written(settings, files)

    finish_with_new_agent(settings, agents, files)
    assert Delivery.select().where(Delivery.state == Delivery.STATE_DONE).count() == len(files)


@pytest.mark.parametrize("to_workers", [False, True], ids=["agent", "like-systemd"])
def test_sigterm_finishes_the_file_in_hand_and_exits_zero(plant, to_workers):
    settings, files, agents = plant
    marker = settings.source.parent / "paused"
    agent = start_agent_process(
        settings,
        env={PAUSE_AT: STEP_COPY_STARTED, PAUSE_MARKER: str(marker), PAUSE_SECONDS: "1"},
    )
    agents.append(agent)
    wait_for(marker.exists, timeout=20)
    if to_workers:
        # systemd signals every process of the service: the workers leave it to the agent.
        for pid in agent.children():
            os.kill(pid, signal.SIGTERM)
    assert agent.terminate() == 0, agent.log
    assert "action=stop" in agent.log
    done = list(Delivery.select().where(Delivery.state == Delivery.STATE_DONE))
    assert len(done) >= 1, "the file in hand was finished"
    assert Delivery.select().where(Delivery.state == Delivery.STATE_INTENT).count() == 0
    assert len(notifications(settings)) == len(done), "and its notification written"
    assert_nothing_half_written(settings, files)


def test_sigusr1_writes_every_threads_stack_to_the_log_and_the_agent_goes_on(plant):
    settings, files, agents = plant
    agent = start_agent_process(settings)
    agents.append(agent)
    wait_for(all_notified(settings, len(files)), timeout=30)
    agent.process.send_signal(signal.SIGUSR1)
    wait_for(lambda: "hotfolder_agent/notifier.py" in agent.log, timeout=10)
    stacks = agent.log
    assert stacks.count("(most recent call first)") >= 3  # the loop, notifier, heartbeat…
    assert "hotfolder_agent/agent.py" in stacks and "hotfolder_agent/heartbeat.py" in stacks
    assert agent.terminate() == 0, agent.log


def test_two_agents_on_one_tree_never_deliver_a_file_twice(plant):
    settings, files, agents = plant
    order = OrderFile.get_by_id(files[0].id).order
    files += [
        clean_upload(settings, order, f"Seite {n}.pdf", os.urandom(20_000)) for n in range(12)
    ]
    agents += [start_agent_process(settings, "one"), start_agent_process(settings, "two")]
    wait_for(all_notified(settings, len(files)), timeout=40)
    assert [agent.terminate() for agent in agents] == [0, 0]
    assert_delivered_exactly_once(settings, files)


def test_unreadable_file_and_unwritable_hotfolder_are_shown_and_others_still_served(plant):
    settings, files, agents = plant
    unreadable = settings.storage.order_root / "K1" / "A1" / "Eingehend" / files[0].stored_name
    unreadable.chmod(0o000)
    blocked = hotfolder_of(settings, "K2", "B7")
    blocked.mkdir(parents=True)
    blocked.chmod(0o555)
    served = make_order(settings, "C1", "K3")
    files.append(clean_upload(settings, served, "fine.pdf", b"fine"))
    agent = start_agent_process(settings, obey_permissions=True)
    agents.append(agent)
    try:
        wait_for(lambda: visible_files(hotfolder_of(settings, "K3", "C1")) == ["fine.pdf"])
        wait_for(lambda: AgentError.select().where(AgentError.action == "deliver").count() == 2)
        reasons = {error.path: error.reason for error in AgentError.select()}
        assert "Permission denied" in reasons[str(unreadable)]
        assert "Permission denied" in reasons[str(blocked)]
        assert unreadable.exists(), "the file stays where it is"
        assert visible_files(blocked) == []
        assert f"failed: Permission denied (errno 13) ({unreadable})" in agent.log
    finally:
        unreadable.chmod(0o644)
        blocked.chmod(0o755)
    wait_for(all_notified(settings, len(files)), timeout=30)
    assert agent.terminate() == 0
    assert_delivered_exactly_once(settings, files)
    assert not AgentError.select().where(AgentError.resolved_at.is_null()).exists()


def test_without_the_database_nothing_is_delivered_until_it_is_back(plant):
    settings, files, agents = plant
    database.close()
    db_file = settings.database.url.removeprefix("sqlite:///")
    aside = db_file + ".aside"
    shutil.move(db_file, aside)
    with open(db_file, "wb") as garbage:
        garbage.write(b"this is not a database" * 100)
    agent = start_agent_process(settings)
    agents.append(agent)
    try:
        wait_for(lambda: "database unreachable" in agent.log, timeout=20)
        time.sleep(1.5)
        for folder in expected_hotfolders(settings, files):
            assert all_names(folder) == [], "nothing copied without a recorded intent"
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db_file + suffix):
                os.remove(db_file + suffix)
        shutil.move(aside, db_file)
    wait_for(all_notified(settings, len(files)), timeout=40)
    assert agent.terminate() == 0
    assert_delivered_exactly_once(settings, files)


def test_the_agent_imports_shared_but_never_portal():
    code = (
        "import sys, hotfolder_agent.agent, hotfolder_agent.cli\n"
        "bad = [m for m in ('portal', 'flask', 'flask_babel') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_client_ini_stops_the_agent_with_one_line(tmp_path):
    ini = write_ini(tmp_path, base_sections(2525, agent={"watch_mode": "sometimes"}))
    result = subprocess.run(
        [sys.executable, "-m", "hotfolder_agent", "--config", str(ini)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "[agent] watch_mode = 'sometimes' is not allowed" in result.stderr
