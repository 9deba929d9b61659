"""Resumable uploads (tus 1.0): protocol, resume, hashing while streaming, limits and access."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import os
import random
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import csrf_from
from huey.signals import SIGNAL_EXECUTING
from portal_helpers import SignedIn, customer_with_order, signed_in_customer

from shared.accounts.logins import set_login_state
from shared.db import write_transaction
from shared.files.access import NotAllowed
from shared.files.folders import FOLDER_FINAL, FOLDER_INCOMING, ORDER_FOLDERS, order_dir
from shared.files.receiving import append_chunk, hash_cache, staging_path, start_upload
from shared.models import Order, OrderFile, PortalLogin

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK_TYPE = "application/offset+octet-stream"
# English answers whatever translations exist; the default language of the test app is German.
TUS = {"Tus-Resumable": "1.0.0", "Accept-Language": "en"}


@pytest.fixture
def ini_overrides(request) -> dict[str, dict[str, object]]:
    """Chunks up to 128 MiB (the memory test sends 100 MB in one PATCH); no clamd to reach."""
    overrides: dict[str, dict[str, object]] = {
        "portal": {"upload_chunk_bytes": "128M"},
        # Nothing listens there: a finished upload waits for its scan and stays in staging.
        "clamav": {"address": "127.0.0.1:9"},
    }
    for section, values in getattr(request, "param", {}).items():
        overrides.setdefault(section, {}).update(values)
    return overrides


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


# Test data: deterministic, generated piece by piece, never held whole in memory.


def pdf_bytes(count: int, start: int = 0) -> bytes:
    """Bytes ``start`` to ``count`` of a body that starts like a PDF (an accepted type)."""
    return (b"%PDF-1.7\n" + b"x" * 1000)[start:count]


class SeededData:
    """``size`` pseudo-random bytes from ``seed``; any range can be produced on its own.

    They start like a PDF, so that the portal accepts them as one of the shop's types.
    """

    BLOCK = MiB
    HEADER = b"%PDF-1.7\n"

    def __init__(self, size: int, seed: int = 1) -> None:
        self.size = size
        self.seed = seed

    def _block(self, index: int) -> bytes:
        data = random.Random(self.seed * 1_000_003 + index).randbytes(self.BLOCK)
        if index == 0:
            data = self.HEADER + data[len(self.HEADER) :]
        return data[: self.size - index * self.BLOCK]

    def pieces(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else end
        position = start
        while position < end:
            index, skip = divmod(position, self.BLOCK)
            piece = self._block(index)[skip : skip + end - position]
            yield piece
            position += len(piece)

    def bytes(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.pieces(start, end))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()

    def stream(
        self, start: int, end: int, fail_at: int | None = None, announced: int | None = None
    ) -> GeneratedStream:
        """A body with ``data[start:end]``; ``announced`` is the Content-Length it claims."""
        fail_after = None if fail_at is None else fail_at - start
        return GeneratedStream(self.pieces(start, end), announced or end - start, fail_after)


class GeneratedStream(io.RawIOBase):
    """A request body made on the fly; raises like a dropped connection after ``fail_after``."""

    def __init__(self, pieces: Iterator[bytes], length: int, fail_after: int | None = None) -> None:
        self._pieces = pieces
        self._length = length
        self._position = 0
        self._current = b""
        self._sent = 0
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Werkzeug's test client takes Content-Length from seeking to the end and back.
        if self._sent:
            raise io.UnsupportedOperation("a request body is read once")
        self._position = (0, self._position, self._length)[whence] + offset
        return self._position

    def readinto(self, buffer) -> int:
        if self._fail_after is not None and self._sent >= self._fail_after:
            raise ConnectionResetError("client went away")
        if not self._current:
            self._current = next(self._pieces, b"")
        wanted = len(buffer)
        if self._fail_after is not None:
            wanted = min(wanted, self._fail_after - self._sent)
        piece, self._current = self._current[:wanted], self._current[wanted:]
        buffer[: len(piece)] = piece
        self._sent += len(piece)
        return len(piece)


# The protocol, spoken the way tus-js-client speaks it.


def metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(v.encode()).decode()}" for key, v in values.items())


def create(client, customer: SignedIn, size: int, name: str = "Flyer.pdf", **more):
    project_no = more.pop("project_no", customer.project_no)
    headers = TUS | customer.headers | {"Upload-Length": str(size)}
    headers["Upload-Metadata"] = metadata(filename=name, **more)
    return client.post(f"/orders/{project_no}/uploads", headers=headers)


def created(client, customer: SignedIn, size: int, name: str = "Flyer.pdf") -> str:
    response = create(client, customer, size, name)
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def head(client, location: str):
    return client.head(location, headers=TUS)


def offset_of(client, location: str) -> int:
    response = head(client, location)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def patch(client, customer: SignedIn, location: str, offset: int, body: bytes | GeneratedStream):
    headers = TUS | customer.headers | {"Upload-Offset": str(offset)}
    if isinstance(body, bytes):
        return client.patch(location, data=body, headers=headers, content_type=CHUNK_TYPE)
    return client.patch(location, input_stream=body, headers=headers, content_type=CHUNK_TYPE)


def send(client, customer: SignedIn, location: str, data: SeededData, start: int, end: int) -> int:
    """PATCH ``data[start:end]`` streamed; returns the server's new offset."""
    response = patch(client, customer, location, start, data.stream(start, end))
    assert response.status_code == 204, response.text
    return int(response.headers["Upload-Offset"])


def file_at(location: str) -> OrderFile:
    return OrderFile.get(OrderFile.upload_key == location.rsplit("/", 1)[1])


def files_in(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def order_folder_files(settings, customer_no: str = "K1", project_no: str = "A1") -> list[Path]:
    return files_in(order_dir(settings.storage.order_root, customer_no, project_no))


def assert_nothing_written(settings) -> None:
    assert OrderFile.select().count() == 0
    assert files_in(settings.storage.staging_root) == []
    assert order_folder_files(settings) == []


# OPTIONS and creation


def test_options_tells_what_the_server_supports(client, customer, settings):
    for path in ("/orders/A1/uploads", "/uploads/anything"):
        response = client.options(path)

        assert response.status_code == 204
        assert response.headers["Tus-Version"] == "1.0.0"
        assert response.headers["Tus-Extension"] == "creation,termination"
        assert response.headers["Tus-Max-Size"] == str(20 * GiB)
        assert response.headers["Tus-Resumable"] == "1.0.0"


def test_create_registers_the_file_and_an_empty_staging_file(client, customer, settings):
    response = create(client, customer, 1234, "Flyer A5.pdf")

    assert response.status_code == 201
    assert response.headers["Tus-Resumable"] == "1.0.0"
    location = response.headers["Location"]
    assert re.fullmatch(r"/uploads/[A-Za-z0-9_-]{40,}", location)
    file = file_at(location)
    assert file.state == OrderFile.STATE_UPLOADING
    assert file.folder == FOLDER_INCOMING
    assert file.order.project_no == "A1"
    assert (file.display_name, file.size, file.received_bytes) == ("Flyer A5.pdf", 1234, 0)
    assert file.uploaded_by_login.username == "k1"
    assert file.stored_name is None and file.sha256 is None
    path = staging_path(settings, file)
    assert path.parent == settings.storage.staging_root
    assert path.stat().st_size == 0
    assert order_folder_files(settings) == []


def test_head_reports_offset_and_length_uncached(client, customer):
    location = created(client, customer, 1234)

    response = head(client, location)

    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == "0"
    assert response.headers["Upload-Length"] == "1234"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_unicode_names_are_kept_for_display_in_nfc(client, customer):
    decomposed = "Gru\u0308ße 請求書.pdf"
    file = file_at(created(client, customer, 10, decomposed))

    assert file.display_name == "Grüße 請求書.pdf"


# PATCH


def test_upload_in_several_chunks_with_head_in_between(client, customer, settings):
    data = SeededData(5 * MiB + 123)
    location = created(client, customer, data.size)
    offset = 0
    for end in (2 * MiB, 4 * MiB, data.size):
        assert offset_of(client, location) == offset
        response = patch(client, customer, location, offset, data.bytes(offset, end))
        assert response.status_code == 204
        assert response.headers["Tus-Resumable"] == "1.0.0"
        offset = int(response.headers["Upload-Offset"])
        assert offset == end
        assert file_at(location).received_bytes == end

    file = file_at(location)
    assert file.state in (OrderFile.STATE_SCANNING, OrderFile.STATE_WAITING)
    assert file.sha256 == data.sha256()
    assert file.received_at is not None
    assert offset_of(client, location) == data.size
    staged = staging_path(settings, file)
    assert staged.read_bytes() == data.bytes()
    assert staged.is_relative_to(settings.storage.staging_root)
    assert order_folder_files(settings) == []


def test_a_lost_answer_to_the_last_patch_can_be_repeated(client, customer):
    location = created(client, customer, 100)
    assert patch(client, customer, location, 0, pdf_bytes(100)).status_code == 204

    again = patch(client, customer, location, 100, b"")

    assert again.status_code == 204
    assert again.headers["Upload-Offset"] == "100"


def test_offset_mismatch_is_409_with_the_right_offset(client, customer, settings):
    location = created(client, customer, 1000)
    assert patch(client, customer, location, 0, b"a" * 100).status_code == 204

    for wrong in (0, 50, 101, 999):
        response = patch(client, customer, location, wrong, b"b" * 10)

        assert response.status_code == 409
        assert response.headers["Upload-Offset"] == "100"
        assert response.json["error"]
    assert staging_path(settings, file_at(location)).read_bytes() == b"a" * 100


def test_more_data_than_announced_is_refused(client, customer, settings):
    location = created(client, customer, 100)

    response = patch(client, customer, location, 0, pdf_bytes(101))

    assert response.status_code == 400
    assert staging_path(settings, file_at(location)).stat().st_size == 0


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "multipart/form-data; boundary=x", "text/plain"]
)
def test_wrong_content_type_is_415(client, customer, settings, content_type):
    location = created(client, customer, 100)
    headers = TUS | customer.headers | {"Upload-Offset": "0"}

    response = client.patch(location, data=b"x" * 10, headers=headers, content_type=content_type)

    assert response.status_code == 415
    assert CHUNK_TYPE in response.json["error"]
    assert staging_path(settings, file_at(location)).stat().st_size == 0


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", "2.0.0"])
@pytest.mark.parametrize("method", ["POST", "HEAD", "PATCH", "DELETE"])
def test_missing_or_unsupported_tus_resumable_is_412(client, customer, settings, method, version):
    location = created(client, customer, 100)
    headers = customer.headers | {"Upload-Offset": "0", "Upload-Length": "10"}
    if version:
        headers["Tus-Resumable"] = version
    path = "/orders/A1/uploads" if method == "POST" else location

    response = client.open(path, method=method, headers=headers, data=b"x", content_type=CHUNK_TYPE)

    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    assert OrderFile.select().count() == 1
    assert staging_path(settings, file_at(location)).stat().st_size == 0


def test_a_chunk_over_the_configured_size_is_413_before_reading(client, customer, settings):
    location = created(client, customer, 200 * MiB)
    body = GeneratedStream(iter([b"never read"]), length=129 * MiB)

    response = patch(client, customer, location, 0, body)

    assert response.status_code == 413
    assert "128 MiB" in response.json["error"]
    assert staging_path(settings, file_at(location)).stat().st_size == 0


def test_a_patch_while_another_writes_is_423(client, customer, settings):
    location = created(client, customer, 100)
    path = staging_path(settings, file_at(location))
    with path.open("ab") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running PATCH holds

        response = patch(client, customer, location, 0, pdf_bytes(10))

    assert response.status_code == 423
    assert path.stat().st_size == 0
    assert patch(client, customer, location, 0, pdf_bytes(10)).status_code == 204


# Termination


def test_termination_removes_row_and_staging_file(client, customer, settings):
    location = created(client, customer, 100)
    assert patch(client, customer, location, 0, pdf_bytes(40)).status_code == 204
    path = staging_path(settings, file_at(location))

    response = client.delete(location, headers=TUS | customer.headers)

    assert response.status_code == 204
    assert OrderFile.select().count() == 0
    assert not path.exists()
    assert head(client, location).status_code == 404
    assert patch(client, customer, location, 40, b"x").status_code == 404


def test_a_finished_upload_cannot_be_terminated(client, customer, settings):
    location = created(client, customer, 10)
    assert patch(client, customer, location, 0, pdf_bytes(10)).status_code == 204

    response = client.delete(location, headers=TUS | customer.headers)

    assert response.status_code == 409
    assert file_at(location).sha256 == hashlib.sha256(pdf_bytes(10)).hexdigest()


# Resuming


def test_a_body_that_breaks_off_keeps_its_bytes_and_resumes(client, customer, settings):
    data = SeededData(5 * MiB)
    location = created(client, customer, data.size)
    broken_at = 3 * MiB + 1000

    response = patch(client, customer, location, 0, data.stream(0, data.size, broken_at))

    assert response.status_code == 204
    assert int(response.headers["Upload-Offset"]) == broken_at
    assert offset_of(client, location) == broken_at
    assert file_at(location).received_bytes == broken_at
    assert send(client, customer, location, data, broken_at, data.size) == data.size
    assert file_at(location).sha256 == data.sha256()


def test_a_body_shorter_than_its_content_length_resumes(client, customer):
    data = SeededData(3 * MiB)
    location = created(client, customer, data.size)
    short = data.stream(0, 2 * MiB, announced=data.size)  # the connection closes early

    response = patch(client, customer, location, 0, short)

    assert response.status_code == 204
    assert offset_of(client, location) == 2 * MiB
    assert send(client, customer, location, data, 2 * MiB, data.size) == data.size
    assert file_at(location).sha256 == data.sha256()


def test_a_patch_reads_no_more_than_its_declared_length(customer, settings):
    # The portal hands over the server's own input stream, where the next request on the
    # same connection may follow right after the body.
    order = Order.get(Order.project_no == "A1")
    file = start_upload(settings, order, "Flyer.pdf", 10, folder=FOLDER_FINAL)
    stream = io.BytesIO(b"0123456789PATCH /uploads/next HTTP/1.1\r\n")

    assert append_chunk(settings, file, 0, stream, 6) == 6
    assert stream.tell() == 6
    assert append_chunk(settings, file, 6, stream, 4) == 10
    assert stream.read() == b"PATCH /uploads/next HTTP/1.1\r\n"
    assert file.sha256 == hashlib.sha256(b"0123456789").hexdigest()


def test_the_hash_is_rebuilt_when_this_process_lost_it(client, customer):
    data = SeededData(4 * MiB + 17, seed=7)
    location = created(client, customer, data.size)
    key = location.rsplit("/", 1)[1]
    offset = 0
    for end in (MiB + 5, 3 * MiB, data.size):
        hash_cache.clear()  # as if another gunicorn worker, or a restarted one, took over
        offset = send(client, customer, location, data, offset, end)
        assert (key in hash_cache) == (end < data.size)

    assert file_at(location).sha256 == data.sha256()


def test_a_300_mb_file_survives_an_interruption_and_a_worker_switch(client, customer, settings):
    data = SeededData(300 * 1000 * 1000 + 7, seed=300)
    chunk = 64 * MiB
    location = created(client, customer, data.size)

    offset = send(client, customer, location, data, 0, chunk)
    broken = data.stream(offset, offset + chunk, fail_at=offset + 10 * MiB + 3)
    patch(client, customer, location, offset, broken)
    offset = offset_of(client, location)
    assert offset == chunk + 10 * MiB + 3
    hash_cache.clear()
    while offset < data.size:
        offset = send(client, customer, location, data, offset, min(offset + chunk, data.size))

    file = file_at(location)
    assert file.size == file.received_bytes == data.size
    assert file.sha256 == data.sha256()
    assert staging_path(settings, file).stat().st_size == data.size
    assert order_folder_files(settings) == []


def test_memory_stays_flat_during_a_100_mb_patch(client, customer):
    data = SeededData(100 * 1000 * 1000, seed=100)
    location = created(client, customer, data.size)
    body = data.stream(0, data.size)

    tracemalloc.start()
    try:
        response = patch(client, customer, location, 0, body)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 204
    assert peak < 10 * 1000 * 1000, f"peak {peak / MiB:.1f} MiB"
    assert file_at(location).sha256 == data.sha256()


# Refused before anything is written


def test_a_file_over_the_limit_is_413_naming_the_limit(client, customer, settings):
    response = create(client, customer, 20 * GiB + 1, "huge.tif")

    assert response.status_code == 413
    assert "20 GiB" in response.json["error"]
    assert_nothing_written(settings)


@pytest.mark.parametrize("ini_overrides", [{"portal": {"max_upload_bytes": "1G"}}], indirect=True)
def test_the_limit_comes_from_client_ini_and_is_inclusive(client, customer, settings):
    over = create(client, customer, GiB + 1, "big.tif")
    exactly = create(client, customer, GiB, "big.tif")

    assert over.status_code == 413
    assert "1 GiB" in over.json["error"]
    assert exactly.status_code == 201
    assert client.options("/orders/A1/uploads").headers["Tus-Max-Size"] == str(GiB)


def test_an_empty_file_is_refused(client, customer, settings):
    response = create(client, customer, 0, "empty.pdf")

    assert response.status_code == 400
    assert "empty" in response.json["error"]
    assert_nothing_written(settings)


@pytest.mark.parametrize("length", ["", "-1", "12.5", "1e9", "١٢", "abc"])
def test_a_missing_or_bad_upload_length_is_refused(client, customer, settings, length):
    headers = TUS | customer.headers | {"Upload-Metadata": metadata(filename="a.pdf")}
    if length:
        headers["Upload-Length"] = length

    response = client.post("/orders/A1/uploads", headers=headers)

    assert response.status_code == 400
    assert_nothing_written(settings)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "no name"),
        ("   ", "no name"),
        ("a/b.pdf", "/"),
        ("..\\windows.pdf", "/"),
        ("..", ".."),
        ("nul\x00.pdf", "control"),
        ("line\nbreak.pdf", "control"),
        ("x" * 252 + ".pdf", "255"),
    ],
)
def test_bad_names_are_refused_with_a_message(client, customer, settings, name, words):
    response = create(client, customer, 100, name)

    assert response.status_code == 400
    assert words in response.json["error"]
    assert_nothing_written(settings)


def test_unreadable_metadata_is_refused(client, customer, settings):
    headers = TUS | customer.headers | {"Upload-Length": "10", "Upload-Metadata": "filename !!!"}

    response = client.post("/orders/A1/uploads", headers=headers)

    assert response.status_code == 400
    assert_nothing_written(settings)


@pytest.mark.parametrize(
    "ini_overrides", [{"portal": {"max_upload_bytes": "1000T"}}], indirect=True
)
def test_a_file_the_disk_cannot_hold_is_refused_up_front(client, customer, settings):
    response = create(client, customer, 900 * 1024 * GiB, "planet.tif")

    assert response.status_code == 507
    assert_nothing_written(settings)


# Who may upload where


def test_without_csrf_token_nothing_is_created(client, customer, settings):
    headers = TUS | {"Upload-Length": "10", "Upload-Metadata": metadata(filename="a.pdf")}

    response = client.post("/orders/A1/uploads", headers=headers)

    assert response.status_code == 400
    assert response.json["error"]
    assert_nothing_written(settings)


def test_signed_out_gets_401_not_a_redirect(app, settings, customer):
    stranger = app.test_client()
    token = csrf_from(stranger.get("/login").text)
    as_stranger = SignedIn("K1", "A1", "nobody", token)

    response = create(stranger, as_stranger, 10)

    assert response.status_code == 401
    assert response.json["error"]
    assert_nothing_written(settings)


def test_a_foreign_order_answers_like_a_missing_one(client, api, customer, settings):
    customer_with_order(api, "K2", "B1")

    foreign = create(client, customer, 10, project_no="B1")
    missing = create(client, customer, 10, project_no="NOPE")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json == missing.json
    assert_nothing_written(settings)
    assert order_folder_files(settings, "K2", "B1") == []


def test_a_foreign_upload_answers_like_a_missing_one(client, api, customer, settings):
    customer_with_order(api, "K2", "B1")
    other_order = Order.get(Order.project_no == "B1")
    other_login = PortalLogin.get(PortalLogin.username == "k2")
    theirs = start_upload(settings, other_order, "theirs.pdf", 10, login=other_login)
    location = f"/uploads/{theirs.upload_key}"
    headers = TUS | customer.headers

    answers = [
        head(client, location),
        patch(client, customer, location, 0, pdf_bytes(10)),
        client.delete(location, headers=headers),
        head(client, "/uploads/no-such-key"),
        client.delete("/uploads/no-such-key", headers=headers),
    ]

    assert [answer.status_code for answer in answers] == [404] * 5
    assert answers[1].json == answers[4].json
    theirs = OrderFile.get_by_id(theirs.id)
    assert theirs.state == OrderFile.STATE_UPLOADING
    assert staging_path(settings, theirs).stat().st_size == 0


@pytest.mark.parametrize("folder", [FOLDER_FINAL, "In Bearbeitung", "../Final", "Hotfolder"])
def test_uploads_go_into_eingehend_only(client, customer, settings, folder):
    response = create(client, customer, 10, folder=folder)

    assert response.status_code == 403
    assert_nothing_written(settings)


@pytest.mark.parametrize("path", ["/orders/A1/Final/uploads", "/orders/A1/uploads/Final"])
def test_there_is_no_url_for_other_folders(client, customer, settings, path):
    headers = TUS | customer.headers | {"Upload-Length": "10"}

    assert client.post(path, headers=headers).status_code in (404, 405)
    assert_nothing_written(settings)


def test_explicit_eingehend_is_fine(client, customer):
    assert create(client, customer, 10, folder=FOLDER_INCOMING).status_code == 201


def test_a_portal_login_cannot_stage_into_other_folders(client, customer, settings):
    order = Order.get(Order.project_no == "A1")
    login = PortalLogin.get(PortalLogin.username == "k1")

    for folder in ORDER_FOLDERS[1:]:
        with pytest.raises(NotAllowed):
            start_upload(settings, order, "a.pdf", 10, login=login, folder=folder)
    assert_nothing_written(settings)


def test_an_inactive_login_cannot_upload(client, customer, settings):
    location = created(client, customer, 100)
    login = PortalLogin.get(PortalLogin.username == "k1")
    with write_transaction():
        set_login_state(settings, login, PortalLogin.STATE_INACTIVE)

    assert create(client, customer, 10).status_code == 401
    assert patch(client, customer, location, 0, pdf_bytes(10)).status_code == 401
    assert OrderFile.select().count() == 1
    assert staging_path(settings, file_at(location)).stat().st_size == 0
    with pytest.raises(NotAllowed):
        start_upload(settings, Order.get(Order.project_no == "A1"), "a.pdf", 10, login=login)
    assert OrderFile.select().count() == 1


def test_a_login_of_another_customer_cannot_stage_into_this_order(client, api, customer, settings):
    customer_with_order(api, "K2", "B1")
    order = Order.get(Order.project_no == "A1")
    other_login = PortalLogin.get(PortalLogin.username == "k2")

    with pytest.raises(NotAllowed):
        start_upload(settings, order, "a.pdf", 10, login=other_login)
    assert_nothing_written(settings)


def test_the_scan_is_asked_for_once_the_last_byte_is_in(app, client, customer, settings):
    started = []
    huey = app.extensions["ptportal.tasks"].huey  # runs tasks at once in the test app

    @huey.signal(SIGNAL_EXECUTING)
    def record(_signal, task):
        started.append((task.name, task.args))

    location = created(client, customer, 10)
    assert patch(client, customer, location, 0, pdf_bytes(5)).status_code == 204
    assert started == []

    assert patch(client, customer, location, 5, pdf_bytes(10, 5)).status_code == 204
    assert started == [("scan_file", (file_at(location).id,))]

    assert patch(client, customer, location, 10, b"").status_code == 204  # a repeated last PATCH
    assert len(started) == 1


def test_staging_files_are_private_to_the_portal(client, customer, settings):
    file = file_at(created(client, customer, 10))

    assert os.stat(staging_path(settings, file)).st_mode & 0o007 == 0
