"""List a ZIP from its central directory, without extracting, and refuse ZIP bombs.

Nothing is decompressed: the listing reads the end-of-central-directory record, then the
central directory record by record, then the 30-byte local header of every entry, all in
small reads, so memory grows with the number of entries (which ``ZipLimits`` caps), never
with the size of the file or of what it would unpack to.

A ZIP is refused (``ZipListing.refusal``) when:

- it unpacks to more than ``max_total_size`` bytes, or has more than ``max_entries``
  entries, or holds more than ``max_nested_archives`` archives (an archive inside is a
  bomb's usual vehicle and cannot be listed here);
- an entry, or the whole archive, claims a compression ratio above ``max_ratio``. Entries
  below ``ratio_floor`` bytes are exempt: small files of one colour compress far beyond
  any sensible limit and harm nobody. Deflate cannot exceed about 1032:1 and a stored
  entry has no ratio, so sizes beyond those are lies and refused as such;
- the central directory lies in a way that is cheap to see: fewer or more records than the
  end record counts, records outside the file, entries whose data overlap (the
  "overlapping files" bomb) or whose local header disagrees with the central directory.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared.files.findings import ERROR, Finding

logger = logging.getLogger(__name__)

_GiB = 1024**3
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_DEFLATE_MAX_RATIO = 1032
_STORED, _DEFLATED = 0, 8
_ENCRYPTED, _DATA_DESCRIPTOR, _UTF8 = 0x1, 0x8, 0x800
_NESTED_SUFFIXES = (".zip", ".rar", ".7z", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".jar")


@dataclass(frozen=True)
class ZipLimits:
    """What a ZIP may unpack to before it counts as a bomb."""

    max_total_size: int = 20 * _GiB
    max_entries: int = 10_000
    max_ratio: float = 250.0
    ratio_floor: int = 16 * 1024 * 1024
    max_nested_archives: int = 10


@dataclass(frozen=True)
class ZipEntry:
    """One member as the central directory describes it; sizes in bytes."""

    name: str
    size: int
    compressed_size: int
    is_dir: bool
    encrypted: bool


@dataclass(frozen=True)
class ZipListing:
    """The members of a ZIP, or the reason (``refusal``) to refuse it."""

    entries: tuple[ZipEntry, ...]
    total_size: int
    total_compressed: int
    nested_archives: int
    refusal: Finding | None

    @property
    def indesign_package(self) -> bool:
        """True when the ZIP holds an InDesign document (a packaged InDesign job)."""
        return any(entry.name.lower().endswith(".indd") for entry in self.entries)


class _Refused(Exception):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.finding = Finding(code, ERROR, params)


@dataclass(frozen=True)
class _Directory:
    entries: int
    size: int
    offset: int  # where the central directory really starts in the file
    shift: int  # bytes in front of the archive (self-extracting stub): add to offsets


def list_zip(path: Path, limits: ZipLimits = ZipLimits()) -> ZipListing:
    """List ``path``'s members without extracting; never raises for a bad ZIP."""
    try:
        with open(path, "rb") as handle:
            directory = _find_directory(handle, limits)
            entries, offsets = _read_directory(handle, directory, limits)
            _check_local_headers(handle, offsets, directory.offset)
    except _Refused as refused:
        logger.debug("ZIP %s refused: %s", path, refused.finding)
        return _listing([], refused.finding)
    except (OSError, struct.error) as exc:
        return _listing([], Finding("zip_damaged", ERROR, {"detail": str(exc)[:200]}))
    listing = _listing(entries, None)
    return _listing(entries, _size_refusal(listing, limits))


def _listing(entries: list[ZipEntry], refusal: Finding | None) -> ZipListing:
    nested = sum(
        1 for entry in entries if PurePosixPath(entry.name).suffix.lower() in _NESTED_SUFFIXES
    )
    return ZipListing(
        tuple(entries),
        sum(entry.size for entry in entries),
        sum(entry.compressed_size for entry in entries),
        nested,
        refusal,
    )


def _find_directory(handle, limits: ZipLimits) -> _Directory:
    """The end-of-central-directory record (ZIP64 where needed), checked against the file."""
    file_size = handle.seek(0, 2)
    tail_size = min(file_size, _EOCD.size + 0xFFFF)
    handle.seek(file_size - tail_size)
    tail = handle.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    while position >= 0 and len(tail) - position < _EOCD.size:
        position = tail.rfind(b"PK\x05\x06", 0, position)
    if position < 0:
        raise _Refused("zip_damaged", detail="no end of central directory")
    eocd_at = file_size - tail_size + position
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, position)
    record_end = eocd_at
    if 0xFFFF in (disk, cd_disk, entries) or 0xFFFFFFFF in (cd_size, cd_offset):
        entries, cd_size, cd_offset, disk, cd_disk, record_end = _zip64_directory(handle, eocd_at)
    if disk != 0 or cd_disk != 0:
        raise _Refused("zip_damaged", detail="split archive")
    if entries > limits.max_entries:
        raise _Refused("zip_too_many_entries", entries=entries, max_entries=limits.max_entries)
    directory_at = record_end - cd_size
    shift = directory_at - cd_offset
    if directory_at < 0 or shift < 0:
        raise _Refused("zip_inconsistent", detail="central directory outside the file")
    return _Directory(entries, cd_size, directory_at, shift)


def _zip64_directory(handle, eocd_at: int) -> tuple[int, int, int, int, int, int]:
    if eocd_at < _ZIP64_LOCATOR.size:
        raise _Refused("zip_damaged", detail="ZIP64 locator missing")
    handle.seek(eocd_at - _ZIP64_LOCATOR.size)
    signature = _ZIP64_LOCATOR.unpack(handle.read(_ZIP64_LOCATOR.size))[0]
    # Where the record must be (no extensible data sector), whatever the locator says: an
    # offset taken from the file could point anywhere.
    record_at = eocd_at - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
    if signature != b"PK\x06\x07" or record_at < 0:
        raise _Refused("zip_damaged", detail="ZIP64 locator missing")
    handle.seek(record_at)
    fields = _ZIP64_EOCD.unpack(handle.read(_ZIP64_EOCD.size))
    signature, _, _, _, disk, cd_disk, _, entries, cd_size, cd_offset = fields
    if signature != b"PK\x06\x06":
        raise _Refused("zip_damaged", detail="ZIP64 end record missing")
    return entries, cd_size, cd_offset, disk, cd_disk, record_at


def _read_directory(
    handle, directory: _Directory, limits: ZipLimits
) -> tuple[list[ZipEntry], list[tuple[int, int, int, int]]]:
    """Every central directory record, read in order; (entries, local header spans)."""
    handle.seek(directory.offset)
    remaining = directory.size
    entries: list[ZipEntry] = []
    spans: list[tuple[int, int, int, int]] = []  # (offset, name length, compressed, flags)
    while remaining > 0:
        if len(entries) >= directory.entries:
            raise _Refused("zip_inconsistent", detail="more records than the end record counts")
        fixed = handle.read(_CENTRAL.size)
        if len(fixed) < _CENTRAL.size:
            raise _Refused("zip_inconsistent", detail="central directory cut short")
        fields = _CENTRAL.unpack(fixed)
        if fields[0] != b"PK\x01\x02":
            raise _Refused("zip_inconsistent", detail="bad central directory record")
        flags, method = fields[3], fields[4]
        compressed, size = fields[8], fields[9]
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        offset = fields[16]
        variable = handle.read(name_length + extra_length + comment_length)
        remaining -= _CENTRAL.size + len(variable)
        raw_name = variable[:name_length]
        size, compressed, offset = _zip64_sizes(
            variable[name_length : name_length + extra_length], size, compressed, offset
        )
        name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437", errors="replace")
        _check_entry(name, method, size, compressed, limits)
        entries.append(
            ZipEntry(name, size, compressed, name.endswith("/"), bool(flags & _ENCRYPTED))
        )
        spans.append((offset + directory.shift, name_length, compressed, flags))
    if len(entries) != directory.entries:
        raise _Refused("zip_inconsistent", detail="fewer records than the end record counts")
    return entries, spans


def _zip64_sizes(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """Sizes and offset from the ZIP64 extra field where the 32-bit fields say 0xFFFFFFFF."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        position += 4 + length
    return size, compressed, offset


def _check_entry(name: str, method: int, size: int, compressed: int, limits: ZipLimits) -> None:
    if method == _STORED and size != compressed:
        raise _Refused("zip_inconsistent", detail=f"stored entry with two sizes: {name}")
    if method == _DEFLATED and size > max(compressed, 1) * _DEFLATE_MAX_RATIO + 1024:
        raise _Refused("zip_inconsistent", detail=f"impossible compression: {name}")
    if size >= limits.ratio_floor and size > limits.max_ratio * max(compressed, 1):
        ratio = round(size / max(compressed, 1))
        raise _Refused("zip_ratio", name=name, ratio=ratio, max_ratio=limits.max_ratio)


def _check_local_headers(handle, spans: list[tuple[int, int, int, int]], end: int) -> None:
    """Each local header where the central directory says, and no two entries overlapping."""
    previous_end = 0
    for offset, name_length, compressed, flags in sorted(spans):
        if offset < previous_end:
            raise _Refused("zip_inconsistent", detail="overlapping entries")
        handle.seek(offset)
        fixed = handle.read(_LOCAL.size)
        if len(fixed) < _LOCAL.size:
            raise _Refused("zip_inconsistent", detail="local header outside the file")
        fields = _LOCAL.unpack(fixed)
        local_compressed, local_name_length, local_extra = fields[7], fields[9], fields[10]
        if fields[0] != b"PK\x03\x04" or local_name_length != name_length:
            raise _Refused("zip_inconsistent", detail="local header does not match")
        known = not flags & _DATA_DESCRIPTOR and local_compressed != 0xFFFFFFFF
        if known and local_compressed != compressed:
            raise _Refused("zip_inconsistent", detail="local header does not match")
        previous_end = offset + _LOCAL.size + name_length + local_extra + compressed
        if previous_end > end:
            raise _Refused("zip_inconsistent", detail="entry runs into the central directory")


def _size_refusal(listing: ZipListing, limits: ZipLimits) -> Finding | None:
    """Too large unpacked, compressed too well as a whole, or too many archives inside."""
    if listing.total_size > limits.max_total_size:
        params = {"size": listing.total_size, "max_size": limits.max_total_size}
        return Finding("zip_too_large", ERROR, params)
    whole_ratio = listing.total_size / max(listing.total_compressed, 1)
    if listing.total_size >= limits.ratio_floor and whole_ratio > limits.max_ratio:
        params = {"name": "", "ratio": round(whole_ratio), "max_ratio": limits.max_ratio}
        return Finding("zip_ratio", ERROR, params)
    if listing.nested_archives > limits.max_nested_archives:
        params = {"count": listing.nested_archives, "max_count": limits.max_nested_archives}
        return Finding("zip_nested", ERROR, params)
    return None
