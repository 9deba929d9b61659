"""Delivery logic called directly: claim, copy, verify, link, record — and every recovery path."""

from __future__ import annotations

import hashlib
import os

from agent_helpers import (
    agent_world_fixture,  # noqa: F401 (fixture "agent_world")
    all_names,
    clean_upload,
    hotfolder_of,
    visible_files,
)

from hotfolder_agent.context import make_context
from hotfolder_agent.delivery import (
    ALREADY_DELIVERED,
    CLAIMED_ELSEWHERE,
    DELIVERED,
    ContentMismatch,
    claim,
    deliver,
)
from hotfolder_agent.heartbeat import beat
from shared.db import write_transaction
from shared.intake import folder_path
from shared.models import Delivery, OrderFile
from shared.worker import BackgroundTasks


def context(settings):
    return make_context(settings, BackgroundTasks(settings, immediate=True))


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
    assert claim(first, file) is not None
    assert deliver(second, file).status == CLAIMED_ELSEWHERE
    assert deliver(first, file).status == DELIVERED


def test_a_claim_of_a_stopped_agent_is_taken_over(agent_world):
    settings, order = agent_world
    file = clean_upload(settings, order, "a.pdf", b"x" * 1000)
    first, second = context(settings), context(settings)
    beat(first)
    claim(first, file)
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
