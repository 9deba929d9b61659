"""Delivery logic called directly: claim, copy, verify, link, record — and every recovery path."""

from __future__ import annotations

import hashlib
import os
import pickle
from types import SimpleNamespace

import pytest
from agent_helpers import (
    agent_world_fixture,  # noqa: F401 (fixture "agent_world")
    all_names,
    clean_upload,
    hotfolder_of,
    make_order,
    visible_files,
)
from conftest import tasks_for

from hotfolder_agent import notification
from hotfolder_agent.context import make_context
from hotfolder_agent.copying import (
    ContentMismatch,
    CopyJob,
    HotfolderUnwritable,
    SourceUnreadable,
    copy_all,
)
from hotfolder_agent.delivery import (
    ALREADY_DELIVERED,
    BATCH_BYTES,
    BATCH_FILES,
    CLAIMED_ELSEWHERE,
    DELIVERED,
    FAILED,
    Batch,
    batches,
    deliver,
    deliver_batch,
)
from hotfolder_agent.heartbeat import beat
from hotfolder_agent.records import claim_deliveries
from hotfolder_agent.workers import FileWorkers
from shared.db import write_transaction
from shared.events import FILES_DELIVERED
from shared.files.intake import folder_path
from shared.models import Customer, Delivery, Notification, Order, OrderFile


def context(settings):
    return make_context(settings, tasks_for(settings))


def test_clean_upload_is_copied_verified_and_recorded_once(agent_world):
    settings, order = agent_world
    data = os.urandom(3 * 1024 * 1024 + 17)
    file = clean_upload(settings, order, "Broschüre Umschlag.pdf", data)
    ctx = context(settings)

    outcome = deliver(ctx, file)

    target = hotfolder_of(settings, "K1", "A1") / file.stored_name
    assert outcome.status == DELIVERED and outcome.path == target
    assert target.read_bytes() == data
    assert all_names(target.parent) == [file.stored_name], "no temporary file left"
    assert (folder_path(settings, file) / file.stored_name).exists(), "the portal keeps its copy"
    row = Delivery.get(Delivery.file == file.id)
    assert row.state == Delivery.STATE_DONE and row.hotfolder_path == str(target)
    assert row.done_at is not None and OrderFile.get_by_id(file.id).delivered_at is not None

    again = deliver(context(settings), file)
    assert again.status == ALREADY_DELIVERED
    assert visible_files(target.parent) == [file.stored_name]


def test_an_existing_name_in_the_hotfolder_is_never_overwritten(agent_world):
    settings, order = agent_world
    file = clean_upload(settings, order, "proof.pdf", b"customer data")
    hotfolder = hotfolder_of(settings, "K1", "A1")
    hotfolder.mkdir(parents=True)
    (hotfolder / "proof.pdf").write_bytes(b"staff's own file")
    (hotfolder / "Proof (2).PDF").write_bytes(b"another one")

    outcome = deliver(context(settings), file)

    assert outcome.path == hotfolder / "proof (3).pdf"
    assert (hotfolder / "proof.pdf").read_bytes() == b"staff's own file"
    assert outcome.path.read_bytes() == b"customer data"


def test_bytes_that_differ_from_the_upload_record_are_not_delivered(agent_world):
    settings, order = agent_world
    file = clean_upload(settings, order, "flyer.pdf", b"original bytes")
    (folder_path(settings, file) / file.stored_name).write_bytes(b"changed bytes!")

    try:
        deliver(context(settings), file)
        raise AssertionError("a changed file was delivered")
    except ContentMismatch as failure:
        assert "differ from the upload record" in failure.reason
    hotfolder = hotfolder_of(settings, "K1", "A1")
    assert all_names(hotfolder) == [], "neither the file nor a temporary copy"
    assert Delivery.get(Delivery.file == file.id).state == Delivery.STATE_INTENT


def test_a_second_agent_does_not_take_a_claim_of_a_live_agent(agent_world):
    settings, order = agent_world
    file = clean_upload(settings, order, "a.pdf", b"x" * 1000)
    first, second = context(settings), context(settings)
    beat(first)
    claimed, _first_claims = claim_deliveries(first, [file])
    assert file.id in claimed
    assert deliver(second, file).status == CLAIMED_ELSEWHERE
    assert deliver(first, file).status == DELIVERED


def test_a_claim_of_a_stopped_agent_is_taken_over(agent_world):
    settings, order = agent_world
    file = clean_upload(settings, order, "a.pdf", b"x" * 1000)
    first, second = context(settings), context(settings)
    beat(first)
    claim_deliveries(first, [file])
    beat(first, stopped=True)
    assert deliver(second, file).status == DELIVERED
    assert Delivery.get(Delivery.file == file.id).claimed_by == second.agent_id


def _interrupted(settings, file, ctx):
    """A delivery row as a killed agent left it (its heartbeat says it is gone)."""
    beat(ctx, stopped=True)
    with write_transaction():
        return Delivery.create(file=file, claimed_by=ctx.agent_id)


def test_restart_after_kill_with_a_half_written_temporary_copy(agent_world):
    settings, order = agent_world
    data = os.urandom(200_000)
    file = clean_upload(settings, order, "a.pdf", data)
    _interrupted(settings, file, context(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    hotfolder.mkdir(parents=True)
    (hotfolder / f".ptportal-{file.id}.part").write_bytes(data[:1000])

    outcome = deliver(context(settings), file)

    assert outcome.status == DELIVERED
    assert all_names(hotfolder) == ["a.pdf"] and (hotfolder / "a.pdf").read_bytes() == data


def test_restart_after_kill_between_link_and_unlink(agent_world):
    settings, order = agent_world
    data = b"linked already"
    file = clean_upload(settings, order, "a.pdf", data)
    row = _interrupted(settings, file, context(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    hotfolder.mkdir(parents=True)
    temp = hotfolder / f".ptportal-{file.id}.part"
    temp.write_bytes(data)
    os.link(temp, hotfolder / "a.pdf")
    with write_transaction():
        Delivery.update(hotfolder_path=str(hotfolder / "a.pdf")).where(
            Delivery.id == row.id
        ).execute()

    outcome = deliver(context(settings), file)

    assert outcome.path == hotfolder / "a.pdf"
    assert all_names(hotfolder) == ["a.pdf"], "not delivered twice, temporary name gone"


def test_restart_after_kill_before_the_record(agent_world):
    settings, order = agent_world
    data = b"in place, not recorded"
    file = clean_upload(settings, order, "a.pdf", data)
    row = _interrupted(settings, file, context(settings))
    hotfolder = hotfolder_of(settings, "K1", "A1")
    hotfolder.mkdir(parents=True)
    (hotfolder / "a (2).pdf").write_bytes(data)
    (hotfolder / "a.pdf").write_bytes(b"someone else's")
    with write_transaction():
        Delivery.update(hotfolder_path=str(hotfolder / "a (2).pdf")).where(
            Delivery.id == row.id
        ).execute()

    outcome = deliver(context(settings), file)

    assert outcome.path == hotfolder / "a (2).pdf"
    assert all_names(hotfolder) == ["a (2).pdf", "a.pdf"]
    assert hashlib.sha256(outcome.path.read_bytes()).hexdigest() == file.sha256


# --- batches ---------------------------------------------------------------------------


def _reloaded(files):
    """The files as the agent sees them: with order and customer joined."""
    return [
        OrderFile.select(OrderFile, Order, Customer)
        .join(Order)
        .join(Customer)
        .where(OrderFile.id == file.id)
        .get()
        for file in files
    ]


@pytest.mark.parametrize("in_worker_processes", [False, True])
def test_a_batch_of_many_files_is_delivered_with_each_one_recorded(
    agent_world, in_worker_processes
):
    settings, order = agent_world
    other = make_order(settings, "B2", "K2")
    contents = {f"Seite {n}.pdf": os.urandom(5_000 + n) for n in range(70)}
    files = _reloaded(
        [
            clean_upload(settings, (order, other)[n % 2], name, data)
            for n, (name, data) in enumerate(contents.items())
        ]
    )
    ctx = context(settings)
    workers = FileWorkers(2) if in_worker_processes else None
    try:
        outcomes = []
        for batch in batches(files):
            started = Batch.start(ctx, batch, workers)
            outcomes += started.finish(ctx)
    finally:
        if workers is not None:
            workers.shutdown()

    assert [outcome.status for outcome in outcomes] == [DELIVERED] * len(files)
    for file, outcome in zip(files, outcomes, strict=True):
        row = Delivery.get(Delivery.file == file.id)
        assert row.state == Delivery.STATE_DONE and row.hotfolder_path == str(outcome.path)
        assert outcome.path.read_bytes() == contents[file.display_name]
        assert OrderFile.get_by_id(file.id).delivered_at is not None
    events = Notification.select().where(Notification.kind == FILES_DELIVERED)
    assert sorted(event.file_id for event in events) == sorted(file.id for file in files)
    for hotfolder in (hotfolder_of(settings, "K1", "A1"), hotfolder_of(settings, "K2", "B2")):
        assert len(visible_files(hotfolder)) == 35
        assert all_names(hotfolder) == visible_files(hotfolder), "no temporary copies left"
    written = notification.flush(ctx)
    assert len(written) == len(files), "window 0: one XML per file, written together"


def test_one_bad_file_in_a_batch_does_not_stop_the_others(agent_world):
    settings, order = agent_world
    blocked_order = make_order(settings, "C3", "K3")
    good = [clean_upload(settings, order, f"gut {n}.pdf", b"good %d" % n) for n in range(4)]
    unreadable = clean_upload(settings, order, "kaputt.pdf", b"cannot be read")
    changed = clean_upload(settings, order, "anders.pdf", b"original bytes")
    blocked = clean_upload(settings, blocked_order, "gesperrt.pdf", b"no hotfolder")
    unreadable_path = folder_path(settings, unreadable) / unreadable.stored_name
    unreadable_path.unlink()
    unreadable_path.mkdir()  # reading a directory fails like an unreadable file
    changed_path = folder_path(settings, changed) / changed.stored_name
    changed_path.write_bytes(b"changed bytes!")
    blocked_hotfolder = hotfolder_of(settings, "K3", "C3")
    blocked_hotfolder.parent.mkdir(parents=True)
    blocked_hotfolder.write_bytes(b"a file where the hotfolder should be")
    batch = _reloaded([good[0], unreadable, good[1], changed, blocked, good[2], good[3]])

    results = deliver_batch(context(settings), batch)
    outcomes = dict(zip([file.id for file in batch], results, strict=True))

    for file in good:
        assert outcomes[file.id].status == DELIVERED
        assert Delivery.get(Delivery.file == file.id).state == Delivery.STATE_DONE
    failures = {file.id: outcomes[file.id].failure for file in (unreadable, changed, blocked)}
    assert isinstance(failures[unreadable.id], SourceUnreadable)
    assert failures[unreadable.id].path == unreadable_path
    assert isinstance(failures[changed.id], ContentMismatch)
    assert isinstance(failures[blocked.id], HotfolderUnwritable)
    assert failures[blocked.id].path == blocked_hotfolder
    for file in (unreadable, changed, blocked):
        assert outcomes[file.id].status == FAILED
        assert Delivery.get(Delivery.file == file.id).state == Delivery.STATE_INTENT
    hotfolder = hotfolder_of(settings, "K1", "A1")
    assert visible_files(hotfolder) == sorted(file.stored_name for file in good)
    assert all_names(hotfolder) == visible_files(hotfolder), "no copy of a bad file left"

    # Once the problems are fixed, the next try delivers the rest, and nothing twice.
    unreadable_path.rmdir()
    unreadable_path.write_bytes(b"cannot be read")
    changed_path.write_bytes(b"original bytes")
    blocked_hotfolder.unlink()
    again = deliver_batch(context(settings), batch)
    assert sorted(outcome.status for outcome in again) == sorted(
        [ALREADY_DELIVERED] * 4 + [DELIVERED] * 3
    )
    assert len(visible_files(hotfolder)) == 6
    assert visible_files(blocked_hotfolder) == [blocked.stored_name]


def test_batches_are_bounded_by_files_and_bytes():
    small = [SimpleNamespace(size=1) for _ in range(BATCH_FILES + 5)]
    assert [len(batch) for batch in batches(small)] == [BATCH_FILES, 5]
    large = [SimpleNamespace(size=BATCH_BYTES // 2 + 1) for _ in range(3)]
    assert [len(batch) for batch in batches(large)] == [1, 1, 1]
    huge = [SimpleNamespace(size=BATCH_BYTES * 2), SimpleNamespace(size=1)]
    assert [len(batch) for batch in batches(huge)] == [1, 1], (
        "a file larger than a batch goes alone"
    )


def test_a_failure_crosses_from_a_worker_process_intact(tmp_path):
    source = tmp_path / "missing.pdf"
    job = CopyJob(1, 10, "0" * 64, source, tmp_path / "hotfolder", fresh=True)
    workers = FileWorkers(1)
    try:
        [result] = workers.submit(copy_all, [job]).result(timeout=60)
    finally:
        workers.shutdown()
    assert isinstance(result.failure, SourceUnreadable)
    assert result.failure.path == source and "No such file" in result.failure.reason
    assert pickle.loads(pickle.dumps(ContentMismatch(source, "why"))).reason == "why"
