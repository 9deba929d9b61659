"""Received files go through real clamd: clean ones into Eingehend, nothing else handed on."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from clamd_helpers import EICAR
from file_helpers import received, world_fixture  # noqa: F401 (fixture "world")

from shared.files.folders import FOLDER_INCOMING
from shared.files.intake import (
    discard_held,
    file_path,
    files_to_scan,
    folder_path,
    quarantine_path,
    release_held,
    scan_received,
)
from shared.files.receiving import TooLarge, staging_path, start_upload, upload_limit
from shared.files.scanning import ScanLimits, Scanner
from shared.models import FileEvent, OrderFile


def scanner_for(settings, clamd) -> Scanner:
    return Scanner(clamd.address, 10, clamd.limits)


def test_clean_file_moves_into_eingehend_under_a_safe_name(world, clamd):
    settings, order, _ = world
    data = os.urandom(300_000)
    file = received(settings, order, "Broschüre: Umschlag.pdf", data)
    assert file.state == OrderFile.STATE_SCANNING
    assert not any(folder_path(settings, file).iterdir()), "nothing visible before the scan"

    file = scan_received(settings, scanner_for(settings, clamd), file.id)

    assert file.state == OrderFile.STATE_CLEAN
    assert file.folder == FOLDER_INCOMING
    assert file.display_name == "Broschüre: Umschlag.pdf"
    assert file.stored_name == "Broschuere_ Umschlag.pdf"
    target = folder_path(settings, file) / file.stored_name
    assert target.read_bytes() == data
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert not staging_path(settings, file).exists()


def test_same_name_gets_a_numbered_suffix_never_overwrites(world, clamd):
    settings, order, _ = world
    scanner = scanner_for(settings, clamd)
    first = scan_received(settings, scanner, received(settings, order, "a.pdf", b"one").id)
    second = scan_received(settings, scanner, received(settings, order, "a.pdf", b"two").id)
    assert (first.stored_name, second.stored_name) == ("a.pdf", "a (2).pdf")
    folder = folder_path(settings, first)
    assert (folder / "a.pdf").read_bytes() == b"one"
    assert (folder / "a (2).pdf").read_bytes() == b"two"


def test_infected_file_goes_to_quarantine_and_is_recorded(world, clamd):
    settings, order, _ = world
    file = received(settings, order, "rechnung.pdf", b"%PDF-1.4\n" + EICAR)
    file = scan_received(settings, scanner_for(settings, clamd), file.id)
    assert file.state == OrderFile.STATE_REJECTED
    assert "EICAR" in file.signature.upper()
    assert file.stored_name is None
    assert not any(folder_path(settings, file).iterdir())
    assert quarantine_path(settings, file).is_file()
    event = FileEvent.get(FileEvent.file == file)
    assert (event.kind, event.detail) == ("rejected", file.signature)


def test_file_over_clamd_limits_is_held_and_staff_decide(world, clamd):
    settings, order, staff = world
    big = received(settings, order, "riesig.tif", b"\0" * (clamd.limits.largest_scannable + 1))
    big = scan_received(settings, scanner_for(settings, clamd), big.id)
    assert big.state == OrderFile.STATE_TOO_LARGE
    assert not any(folder_path(settings, big).iterdir())

    released = release_held(settings, big, staff)
    assert released.state == OrderFile.STATE_CLEAN
    assert released.released_by == staff and released.released_at is not None
    assert (folder_path(settings, big) / "riesig.tif").is_file()
    assert FileEvent.get((FileEvent.file == big) & (FileEvent.kind == "released")).staff == staff

    other = received(
        settings, order, "noch-groesser.tif", b"\0" * (clamd.limits.largest_scannable + 1)
    )
    other = scan_received(settings, scanner_for(settings, clamd), other.id)
    discarded = discard_held(settings, other, staff)
    assert discarded.state == OrderFile.STATE_DELETED
    assert file_path(settings, discarded) is None or not file_path(settings, discarded).exists()


def test_portal_and_clamd_disagreeing_on_limits_still_never_passes_the_file(world, clamd):
    settings, order, _ = world
    lenient = Scanner(clamd.address, 10, ScanLimits(10**9, 10**9, 10**9))
    data = EICAR + b"\0" * (clamd.limits.largest_scannable + 10)
    file = scan_received(settings, lenient, received(settings, order, "x.bin", data).id)
    assert file.state in (OrderFile.STATE_TOO_LARGE, OrderFile.STATE_REJECTED)
    assert file.stored_name is None


def test_clamd_down_means_waiting_then_clean_once_it_is_back(world, clamd):
    settings, order, _ = world
    file = received(settings, order, "flyer.pdf", b"%PDF-1.7 clean")
    with clamd.stopped():
        file = scan_received(settings, scanner_for(settings, clamd), file.id)
        assert file.state == OrderFile.STATE_WAITING
        assert not any(folder_path(settings, file).iterdir())
        assert files_to_scan() == [file.id]
    for file_id in files_to_scan():
        scan_received(settings, scanner_for(settings, clamd), file_id)
    file = OrderFile.get_by_id(file.id)
    assert file.state == OrderFile.STATE_CLEAN
    assert file.scan_attempts == 2
    assert files_to_scan() == []


def test_scanning_twice_is_harmless(world, clamd):
    settings, order, _ = world
    file = received(settings, order, "b.pdf", b"data")
    scanner = scanner_for(settings, clamd)
    scan_received(settings, scanner, file.id)
    again = scan_received(settings, scanner, file.id)
    assert again.state == OrderFile.STATE_CLEAN
    assert [p.name for p in folder_path(settings, file).iterdir()] == ["b.pdf"]


def test_reject_policy_refuses_unscannable_files_before_upload(world, clamd):
    settings, order, _ = world
    rejecting = replace(settings, clamav=replace(settings.clamav, oversize_policy="reject"))
    limit = clamd.limits.largest_scannable
    assert upload_limit(rejecting) == limit
    with pytest.raises(TooLarge) as refused:
        start_upload(rejecting, order, "riesig.tif", limit + 1)
    assert refused.value.limit == limit
    assert OrderFile.select().count() == 0
    assert start_upload(rejecting, order, "passt.tif", limit).state == OrderFile.STATE_UPLOADING
