"""shared.files.scanning against a real clamd (Debian's clamav-daemon, offline test database)."""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from clamd_helpers import EICAR, clamd_fixture, running_clamd  # noqa: F401

from shared.files.scanning import (
    CLAMAV_HARD_LIMIT,
    ScanLimits,
    Scanner,
    ScannerUnavailable,
    ScanResult,
    ScanVerdict,
    read_clamd_limits,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

MB = 1024 * 1024
SHIPPED_CONF = Path(__file__).parent.parent / "shared" / "clamav" / "clamd.conf"
TRANSPORTS = [
    pytest.param("stream", False, id="stream-unix"),
    pytest.param("stream", True, id="stream-tcp"),
    pytest.param("path", False, id="path-unix"),
    pytest.param("path", True, id="path-tcp"),
]


ENCRYPTED_ZIP = (
    "UEsDBAoACQAAADlog13UKdlBGwAAAA8AAAAJAAAAY292ZXIucGRm5V6e2UZHxhdwHRKXx+SBaTXAqjN173Z/rBRi"
    "UEsHCNQp2UEbAAAADwAAAFBLAQIeAwoACQAAADlog13UKdlBGwAAAA8AAAAJAAAAAAAAAAEAAACkgQAAAABjb3Zl"
    "ci5wZGZQSwUGAAAAAAEAAQA3AAAAUgAAAAAA"
)


def write(path: Path, *parts: bytes) -> Path:
    """Write ``parts`` to ``path`` (creating folders) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts))
    return path


# --- real clamd: verdicts -------------------------------------------------------------


@pytest.mark.parametrize(("mode", "tcp"), TRANSPORTS)
def test_clean_file_is_clean(clamd, tmp_path, mode, tcp):
    result = clamd.scanner(mode, tcp).scan_file(write(tmp_path / "job.pdf", os.urandom(50_000)))
    assert result.verdict is ScanVerdict.CLEAN, result


@pytest.mark.parametrize(("mode", "tcp"), TRANSPORTS)
def test_eicar_is_infected_with_signature_name(clamd, tmp_path, mode, tcp):
    result = clamd.scanner(mode, tcp).scan_file(write(tmp_path / "eicar.com", EICAR))
    assert result.verdict is ScanVerdict.INFECTED, result
    assert re.fullmatch(r"Test\.EICAR\.(HDB|NDB)\.UNOFFICIAL", result.signature)


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_eicar_inside_larger_file_is_found(clamd, tmp_path, mode):
    file = write(tmp_path / "job.pdf", os.urandom(500_000), EICAR, os.urandom(500_000))
    result = clamd.scanner(mode).scan_file(file)
    assert result == ScanResult(ScanVerdict.INFECTED, "Test.EICAR.NDB.UNOFFICIAL")


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_eicar_inside_zip_is_found(clamd, tmp_path, mode):
    file = tmp_path / "job.zip"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Druckdaten/cover.pdf", os.urandom(10_000))
        archive.writestr("Druckdaten/eicar.com", EICAR)
    assert clamd.scanner(mode).scan_file(file).verdict is ScanVerdict.INFECTED


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_an_encrypted_archive_is_not_clean(clamd, tmp_path, mode):
    # `zip -P secret job.zip cover.pdf` (zipfile cannot encrypt): clamd cannot look inside.
    file = write(tmp_path / "job.zip", base64.b64decode(ENCRYPTED_ZIP))

    result = clamd.scanner(mode).scan_file(file)

    assert result.verdict is ScanVerdict.INFECTED
    assert result.signature.startswith("Heuristics.Encrypted.Zip")


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_a_damaged_archive_is_scanned_as_plain_bytes(clamd, tmp_path, mode):
    file = tmp_path / "job.zip"
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("Druckdaten/eicar.com", EICAR)
    damaged = file.read_bytes()[:-30]  # the central directory cut off

    assert clamd.scanner(mode).scan_file(write(file, damaged)).verdict is ScanVerdict.INFECTED
    harmless = write(tmp_path / "other.zip", file.read_bytes().replace(EICAR, b"x" * len(EICAR)))
    assert clamd.scanner(mode).scan_file(harmless).verdict is ScanVerdict.CLEAN


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_folder_names_with_spaces_and_umlauts(clamd, tmp_path, mode):
    folder = tmp_path / "Müller Druck" / "In Bearbeitung"
    scanner = clamd.scanner(mode)
    assert scanner.scan_file(write(folder / "Flyer A5.pdf", b"%PDF-1.7")).verdict is (
        ScanVerdict.CLEAN
    )
    assert scanner.scan_file(write(folder / "Ärger: x.pdf", EICAR)).verdict is (
        ScanVerdict.INFECTED
    )


def test_symlink_to_eicar_is_scanned_through_in_path_mode(clamd, tmp_path):
    # clamd answers OK for a symlink it does not follow; the scanner resolves it first.
    link = tmp_path / "harmless.pdf"
    link.symlink_to(write(tmp_path / "hidden" / "eicar.com", EICAR))
    assert clamd.scanner("path").scan_file(link).verdict is ScanVerdict.INFECTED


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_directory_or_missing_file_is_never_clean(clamd, tmp_path, mode):
    # clamd answers OK for SCAN of an empty directory.
    scanner = clamd.scanner(mode)
    (tmp_path / "folder").mkdir()
    for path in (tmp_path / "folder", tmp_path / "gone.pdf"):
        result = scanner.scan_file(path)
        assert result.verdict is ScanVerdict.UNAVAILABLE, result
        assert str(path) in result.detail


def test_path_mode_file_clamd_cannot_read_is_unavailable(clamd, tmp_path):
    file = write(tmp_path / "job.pdf", os.urandom(1000))
    if os.geteuid() == 0:
        # Root reads everything: run a second clamd as nobody, which cannot enter tmp_path.
        with running_clamd(user="nobody") as other:
            result = other.scanner("path").scan_file(file)
    else:
        file.chmod(0)
        result = clamd.scanner("path").scan_file(file)
    assert result.verdict is ScanVerdict.UNAVAILABLE, result
    assert "ERROR" in result.detail


def test_auto_mode_scans_by_path_and_streams_what_clamd_cannot_read(clamd, tmp_path, caplog):
    file = write(tmp_path / "Druckdaten mit Virus.pdf", EICAR)
    assert clamd.scanner("auto").scan_file(file).verdict is ScanVerdict.INFECTED
    # clamd logs a path it scanned by name, a stream as "stream(…)".
    assert str(file) in (clamd.directory / "clamd.log").read_text(errors="replace")
    if os.geteuid() != 0:
        pytest.skip("a clamd that cannot read the file needs another user: run as root")
    with running_clamd(user="nobody") as other:
        assert other.scanner("path").scan_file(file).verdict is ScanVerdict.UNAVAILABLE
        result = other.scanner("auto").scan_file(file)
        clean = other.scanner("auto").scan_file(write(tmp_path / "sauber.pdf", b"%PDF-1.4"))
    assert result.verdict is ScanVerdict.INFECTED, result
    assert clean.verdict is ScanVerdict.CLEAN, clean
    assert caplog.text.count("cannot scan files by path") == 1  # warned once, not per file


# --- size limits ------------------------------------------------------------------------


def test_test_clamd_limits_come_from_its_conf(clamd):
    assert clamd.limits == ScanLimits(5 * MB, 5 * MB, 5 * MB)
    assert clamd.limits.largest_scannable == 5 * MB


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_file_exactly_at_the_limit_is_scanned(clamd, tmp_path, mode):
    file = write(tmp_path / "edge.tif", os.urandom(5 * MB))
    assert clamd.scanner(mode).scan_file(file).verdict is ScanVerdict.CLEAN


@pytest.mark.parametrize("content", [b"", EICAR], ids=["random", "eicar-first"])
def test_file_beyond_limits_is_too_large_without_asking_clamd(tmp_path, content):
    file = write(tmp_path / "big.tif", content, b"\0" * (5 * MB + 1 - len(content)))
    # Nothing listens at this address: a connection attempt would make it UNAVAILABLE.
    scanner = Scanner(str(tmp_path / "no-clamd.sock"), 10, ScanLimits(5 * MB, 5 * MB, 5 * MB))
    started = time.monotonic()
    result = scanner.scan_file(file)
    assert result.verdict is ScanVerdict.TOO_LARGE, result
    assert "5242881 bytes" in result.detail
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("mode", "tcp", "answer"),
    [
        ("stream", False, "INSTREAM size limit exceeded"),
        ("stream", True, "INSTREAM size limit exceeded"),
        ("path", False, "Heuristics.Limits.Exceeded.MaxFileSize"),
    ],
)
@pytest.mark.parametrize("content", [b"", EICAR], ids=["random", "eicar-first"])
def test_clamd_limits_win_when_portal_limits_are_set_too_large(
    clamd, tmp_path, mode, tcp, answer, content
):
    # The portal believes clamd takes 100 MB; clamd (5M) must still not report OK.
    file = write(tmp_path / "big.tif", content, os.urandom(6 * MB))
    scanner = clamd.scanner(
        mode, tcp, max_file_size=100 * MB, max_scan_size=100 * MB, stream_max_length=100 * MB
    )
    result = scanner.scan_file(file)
    assert result.verdict is ScanVerdict.TOO_LARGE, result
    assert answer in result.detail


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_small_archive_with_too_much_content_is_too_large(clamd, tmp_path, mode):
    # 6 KB on disk, 6 MB extracted: only clamd can tell, and it must not say OK.
    file = tmp_path / "job.zip"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("poster.tif", b"\0" * (6 * MB))
    assert file.stat().st_size < clamd.limits.largest_scannable
    result = clamd.scanner(mode).scan_file(file)
    assert result.verdict is ScanVerdict.TOO_LARGE, result
    assert "Heuristics.Limits.Exceeded" in result.detail


def test_stream_memory_stays_flat_for_a_200_mb_file(tmp_path):
    # EICAR at the very end shows that all 200 MB reached clamd.
    file = tmp_path / "poster.tif"
    with file.open("wb") as handle:
        handle.truncate(200 * MB - len(EICAR))
        handle.seek(0, os.SEEK_END)
        handle.write(EICAR)
    with running_clamd(size_limit="300M") as big_clamd:
        scanner = big_clamd.scanner("stream")
        tracemalloc.start()
        try:
            result = scanner.scan_file(file)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.verdict is ScanVerdict.INFECTED, result
    assert peak < 8 * MB


def test_shipped_limits_are_what_clamd_applies():
    # clamd started with the shipped settings logs the limits it uses; the portal reads the same.
    with running_clamd(first_lines=SHIPPED_CONF.read_text()) as shipped:
        limits = shipped.limits
        log = shipped.log
    assert f"File size limit set to {limits.max_file_size} bytes" in log
    assert f"Global size limit set to {limits.max_scan_size} bytes" in log
    assert "Heuristic alerting enabled for scans that exceed set maximums" in log


def test_shipped_conf_has_alert_exceeds_max_and_limits_below_2_gib():
    limits = read_clamd_limits(SHIPPED_CONF)
    assert re.search(r"^AlertExceedsMax yes$", SHIPPED_CONF.read_text(), re.MULTILINE)
    assert limits == ScanLimits(2000 * MB, 2000 * MB, 2000 * MB)
    assert limits.largest_scannable < 2**31 - 1


# --- clamd away ---------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
@pytest.mark.parametrize("mode", ["stream", "path"])
def test_clamd_stopped_is_unavailable_then_clean_once_back(clamd, tmp_path, mode, tcp):
    file = write(tmp_path / "job.pdf", os.urandom(10_000))
    scanner = clamd.scanner(mode, tcp)
    with clamd.stopped():
        started = time.monotonic()
        result = scanner.scan_file(file)
        assert time.monotonic() - started < 1
        assert result.verdict is ScanVerdict.UNAVAILABLE
        assert scanner.address in result.detail
        with pytest.raises(ScannerUnavailable):
            scanner.version()
    assert scanner.scan_file(file).verdict is ScanVerdict.CLEAN
    assert scanner.version().startswith("ClamAV 1.")


@contextmanager
def fake_clamd(behaviour: str) -> Iterator[str]:
    """A TCP server that accepts and then stays "silent" or "close"s without an answer."""
    server = socket.create_server(("127.0.0.1", 0))
    connections = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            if behaviour == "close":
                connection.recv(65536)
                connection.close()
            else:
                connections.append(connection)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        for connection in connections:
            connection.close()


def test_clamd_timing_out_is_unavailable(tmp_path):
    file = write(tmp_path / "job.pdf", b"%PDF")
    with fake_clamd("silent") as address:
        scanner = Scanner(address, 1, ScanLimits(5 * MB, 5 * MB, 5 * MB))
        started = time.monotonic()
        result = scanner.scan_file(file)
        assert result.verdict is ScanVerdict.UNAVAILABLE
        assert "timed out" in result.detail
        with pytest.raises(ScannerUnavailable):
            scanner.version()
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("mode", ["stream", "path"])
def test_connection_closed_without_answer_is_unavailable(tmp_path, mode):
    # pyclamd's own scan_file reports this as "no virus found".
    file = write(tmp_path / "job.pdf", b"%PDF")
    with fake_clamd("close") as address:
        scanner = Scanner(address, 5, ScanLimits(5 * MB, 5 * MB, 5 * MB), mode=mode)
        result = scanner.scan_file(file)
    assert result.verdict is ScanVerdict.UNAVAILABLE, result


def test_unknown_mode_or_address_is_refused():
    limits = ScanLimits(MB, MB, MB)
    with pytest.raises(ValueError, match="scan mode"):
        Scanner("/run/clamav/clamd.ctl", 5, limits, mode="multiscan")
    with pytest.raises(ValueError, match="HOST:PORT"):
        Scanner("clamav.example", 5, limits)


# --- read_clamd_limits --------------------------------------------------------------------


def conf(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "clamd.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1048576", MB),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("100M", 100 * MB),
        ("2000m", 2000 * MB),
        ("1G", 1024 * MB),
        ('"25M"', 25 * MB),
    ],
)
def test_sizes_are_read_like_clamd_reads_them(tmp_path, value, expected):
    path = conf(tmp_path, f"MaxFileSize {value}", "AlertExceedsMax yes")
    assert read_clamd_limits(path).max_file_size == expected


def test_missing_limits_take_clamav_defaults_and_first_occurrence_wins(tmp_path):
    path = conf(
        tmp_path,
        "# MaxFileSize 1M",
        "LocalSocket /run/clamav/clamd.ctl",
        "  StreamMaxLength\t25M  ",
        "StreamMaxLength 50M",
        "AlertExceedsMax true",
    )
    limits = read_clamd_limits(path)
    assert limits == ScanLimits(100 * MB, 400 * MB, 25 * MB)
    assert limits.largest_scannable == 25 * MB


def test_disabled_limits_fall_back_to_clamavs_hard_limit(tmp_path):
    path = conf(
        tmp_path, "MaxFileSize 0", "MaxScanSize 0", "StreamMaxLength 4000M", "AlertExceedsMax 1"
    )
    assert read_clamd_limits(path).largest_scannable == CLAMAV_HARD_LIMIT == 2**31 - 3


@pytest.mark.parametrize("setting", [None, "AlertExceedsMax no", "AlertExceedsMax on"])
def test_alert_exceeds_max_is_required(tmp_path, setting):
    path = conf(tmp_path, "MaxFileSize 10M", *([setting] if setting else []))
    with pytest.raises(ValueError, match="AlertExceedsMax") as error:
        read_clamd_limits(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "line", ["MaxFileSize 2000MB", "MaxFileSize 1.5G", "MaxFileSize 10M # ten", "MaxFileSize"]
)
def test_bad_size_names_file_and_key(tmp_path, line):
    path = conf(tmp_path, line, "AlertExceedsMax yes")
    with pytest.raises(ValueError, match="MaxFileSize") as error:
        read_clamd_limits(path)
    assert str(path) in str(error.value)


def test_missing_conf_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        read_clamd_limits(tmp_path / "clamd.conf")
