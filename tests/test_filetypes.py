"""File types from content and name, the accepted-types ini value, ZIP listing and bombs."""

from __future__ import annotations

import struct
import zipfile

import pytest

from shared.files.filetypes import (
    ACCEPTABLE_TYPES,
    HEAD_BYTES,
    detect_type,
    parse_accepted_types,
    refusal,
    type_from_name,
)
from shared.files.findings import ERROR
from shared.files.messages import describe
from shared.files.zips import ZipLimits, list_zip

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "flyer.pdf", "pdf"),
        (b"garbage before the header\r\n%PDF-1.4\n", "x.bin", "pdf"),
        (b"%PDF-1.6\n", "logo.AI", "ai"),
        (
            b"%PDF-1.5\n1 0 obj<</Metadata 2 0 R>>\n<xmp:CreatorTool>Adobe Illustrator 27.0",
            "a",
            "ai",
        ),
        (b"%PDF-1.5\n4 0 obj<</AIPrivateData1 5 0 R>>", "logo.pdf", "ai"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "logo.eps", "eps"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%Creator: Adobe Illustrator(R) 8.0\n", "logo.eps", "ai"),
        (b"%!PS-Adobe-2.0 EPSF-1.2\n%AI5_FileFormat 3\n", "old.eps", "ai"),
        (b"%!PS-Adobe-3.0\n%%Pages: 2\n", "old.ai", "ai"),
        (b"%!PS-Adobe-3.0\n%%Pages: 2\n", "print.ps", "ps"),
        (bytes.fromhex("c5d0d3c6") + bytes(28), "logo.eps", "eps"),
        (b"II*\x00\x08\x00\x00\x00", "scan.tif", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "scan.tif", "tiff"),
        (b"II+\x00\x08\x00\x00\x00", "big.tif", "tiff"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "photo.jpg", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "logo.png", "png"),
        (b"PK\x03\x04\x14\x00\x00\x00\x00\x00", "package.zip", "zip"),
        (b"PK\x05\x06" + bytes(18), "empty.zip", "zip"),
        # A ZIP that stores a PDF near its start is still a ZIP.
        (b"PK\x03\x04" + bytes(26) + b"a.pdf%PDF-1.7\n", "job.zip", "zip"),
        # Content wins over the name.
        (b"\xff\xd8\xff\xdb", "flyer.pdf", "jpeg"),
        (b"GIF89a\x01\x00", "anim.gif", "gif"),
        (b"8BPS\x00\x01", "layers.psd", "psd"),
        (bytes.fromhex("0606edf5d81d46e5bd31efe7fe74b71d"), "book.indd", "indd"),
        (b"MZ\x90\x00", "invoice.pdf", "program"),
        (b"Rar!\x1a\x07\x01\x00", "job.rar", "archive"),
        (b"just some text", "notes.txt", None),
        (b"", "empty.pdf", None),
    ],
)
def test_detect_type_reads_the_content(head, name, expected):
    assert detect_type(head, name) == expected


def test_detect_type_looks_only_at_the_first_bytes():
    """An Illustrator mark beyond HEAD_BYTES is not seen: the caller has only the head."""
    head = b"%PDF-1.5\n" + b" " * HEAD_BYTES + b"Adobe Illustrator"
    assert detect_type(head, "x.pdf") == "pdf"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Flyer.PDF", "pdf"),
        ("scan.tif", "tiff"),
        ("photo.JPG", "jpeg"),
        ("C:\\Users\\anna\\logo.ai", "ai"),
        ("job.zip", "zip"),
        ("letter.docx", "office"),
        ("setup.exe", "program"),
        ("book.indd", "indd"),
        ("no_extension", None),
        ("strange.xyz", None),
    ],
)
def test_type_from_name(name, expected):
    assert type_from_name(name) == expected


def test_parse_accepted_types_default_and_synonyms():
    assert parse_accepted_types("pdf, tiff, jpeg, png, eps, ai, zip") == ACCEPTABLE_TYPES
    assert parse_accepted_types(" PDF ,jpg, tif,pdf") == ("pdf", "jpeg", "tiff")


@pytest.mark.parametrize("value", ["", " , ", "pdf, docx", "gif"])
def test_parse_accepted_types_says_what_is_allowed(value):
    with pytest.raises(ValueError, match=r"comma-separated list of pdf, tiff, jpeg, png, eps"):
        parse_accepted_types(value)


def test_refusal_by_name_before_the_upload_and_by_content_after():
    accepted = ("pdf", "zip")
    assert refusal(type_from_name("flyer.pdf"), accepted) is None
    early = refusal(type_from_name("letter.docx"), accepted)
    assert early.code == "file_type_not_accepted"
    assert early.severity == ERROR
    assert early.params == {"type": "office", "allowed": ["pdf", "zip"]}
    unknown = refusal(detect_type(b"hello", "x.dat"), accepted)
    assert (unknown.code, unknown.params) == ("file_type_unknown", {"allowed": ["pdf", "zip"]})


def test_refusals_in_the_customers_language():
    finding = refusal("gif", ("pdf", "ai", "zip"))
    assert describe(finding, "de") == (
        "Dateien vom Typ GIF werden nicht angenommen. Erlaubt sind: PDF, Illustrator (AI), ZIP."
    )
    assert describe(finding, "en") == (
        "GIF files are not accepted. Accepted are: PDF, Illustrator (AI), ZIP."
    )
    assert describe(finding, "fr").startswith("Les fichiers de type GIF ne sont pas acceptés.")
    indesign = describe(refusal("indd", ("pdf", "zip")), "de")
    assert indesign.startswith("InDesign-Dokumente bitte verpackt als ZIP senden")


# --- ZIP ---------------------------------------------------------------------------------


def _zip(path, members, compression=zipfile.ZIP_DEFLATED, **options):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data, **options)
    return path


def test_list_zip_names_and_sizes_without_extracting(tmp_path):
    path = _zip(
        tmp_path / "job.zip",
        {
            "Job/Job.indd": b"x" * 1000,
            "Job/Links/photo.tif": bytes(5000),
            "Job/Document fonts/": b"",
        },
    )
    listing = list_zip(path)
    assert listing.refusal is None
    assert [(e.name, e.size) for e in listing.entries] == [
        ("Job/Job.indd", 1000),
        ("Job/Links/photo.tif", 5000),
        ("Job/Document fonts/", 0),
    ]
    assert listing.entries[2].is_dir
    assert listing.total_size == 6000
    assert listing.indesign_package
    assert not list(tmp_path.glob("Job*"))


def test_list_zip_zip64_and_prefixed_archives(tmp_path):
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as archive, archive.open("a.pdf", "w", force_zip64=True) as out:
        out.write(b"%PDF-1.7 tiny")
    assert [e.name for e in list_zip(path).entries] == ["a.pdf"]
    prefixed = tmp_path / "sfx.zip"
    prefixed.write_bytes(b"#!self-extracting stub\n" * 10 + path.read_bytes())
    listing = list_zip(prefixed)
    assert listing.refusal is None
    assert [e.size for e in listing.entries] == [13]


def test_zip_bomb_by_ratio(tmp_path):
    path = _zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(20 * MiB)})
    listing = list_zip(path)
    assert listing.refusal.code == "zip_ratio"
    assert listing.refusal.params["name"] == "zeros.bin"
    assert listing.refusal.params["ratio"] > 250
    assert "ZIP-Bombe" in describe(listing.refusal, "de")


def test_small_files_of_one_colour_are_not_a_bomb(tmp_path):
    path = _zip(tmp_path / "white.zip", {f"white{n}.tif": bytes(MiB) for n in range(5)})
    assert list_zip(path).refusal is None


def test_zip_bomb_by_total_size(tmp_path):
    path = _zip(
        tmp_path / "big.zip", {"a.bin": bytes(MiB), "b.bin": bytes(MiB)}, zipfile.ZIP_STORED
    )
    listing = list_zip(path, ZipLimits(max_total_size=MiB))
    assert listing.refusal.code == "zip_too_large"
    assert listing.refusal.params == {"size": 2 * MiB, "max_size": MiB}
    assert describe(listing.refusal, "de") == (
        "Das ZIP-Archiv wäre entpackt 2,0 MB groß; erlaubt sind höchstens 1,0 MB."
    )


def test_zip_with_too_many_entries_is_refused_from_the_end_record(tmp_path):
    path = _zip(tmp_path / "many.zip", {f"{n}.txt": b"x" for n in range(6)})
    listing = list_zip(path, ZipLimits(max_entries=5))
    assert listing.refusal.code == "zip_too_many_entries"
    assert listing.refusal.params == {"entries": 6, "max_entries": 5}


def test_nested_archives_are_counted(tmp_path):
    inner = _zip(tmp_path / "inner.zip", {"a.txt": b"a"}).read_bytes()
    path = _zip(tmp_path / "outer.zip", {"one.zip": inner, "two.zip": inner, "a.pdf": b"%PDF"})
    assert list_zip(path).nested_archives == 2
    listing = list_zip(path, ZipLimits(max_nested_archives=1))
    assert listing.refusal.code == "zip_nested"
    assert listing.refusal.params == {"count": 2, "max_count": 1}


def _central_directory(data: bytes) -> tuple[int, int, int]:
    """(offset of the end record, offset of the central directory, its size)."""
    end = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack_from("<LL", data, end + 12)
    return end, offset, size


def test_overlapping_entries_are_refused(tmp_path):
    """Two central directory records pointing at one local header (the overlap bomb)."""
    data = _zip(tmp_path / "a.zip", {"a.txt": b"hello" * 100}).read_bytes()
    end, offset, size = _central_directory(data)
    record = data[offset : offset + size]
    twin = record.replace(b"a.txt", b"b.txt")
    eocd = bytearray(data[end:])
    struct.pack_into("<HHL", eocd, 8, 2, 2, 2 * size)
    path = tmp_path / "overlap.zip"
    path.write_bytes(data[:offset] + record + twin + bytes(eocd))
    listing = list_zip(path)
    assert listing.refusal.code == "zip_inconsistent"
    assert listing.refusal.params == {"detail": "overlapping entries"}


def test_end_record_counting_more_entries_than_there_are(tmp_path):
    data = bytearray(_zip(tmp_path / "a.zip", {"a.txt": b"a", "b.txt": b"b"}).read_bytes())
    end, _, _ = _central_directory(bytes(data))
    struct.pack_into("<HH", data, end + 8, 3, 3)
    path = tmp_path / "lie.zip"
    path.write_bytes(bytes(data))
    listing = list_zip(path)
    assert listing.refusal.code == "zip_inconsistent"
    assert "fewer records" in listing.refusal.params["detail"]


def test_sizes_deflate_cannot_produce_are_refused(tmp_path):
    data = bytearray(_zip(tmp_path / "a.zip", {"a.txt": b"abc"}).read_bytes())
    _, offset, _ = _central_directory(bytes(data))
    struct.pack_into("<L", data, offset + 24, 0xFFFFFFF0)  # uncompressed size: 4 GiB
    path = tmp_path / "lie.zip"
    path.write_bytes(bytes(data))
    listing = list_zip(path)
    assert listing.refusal.code == "zip_inconsistent"
    assert "impossible compression" in listing.refusal.params["detail"]


def test_stored_entry_with_two_sizes_is_refused(tmp_path):
    data = bytearray(_zip(tmp_path / "a.zip", {"a.txt": b"abc"}, zipfile.ZIP_STORED).read_bytes())
    _, offset, _ = _central_directory(bytes(data))
    struct.pack_into("<L", data, offset + 24, 10_000)
    path = tmp_path / "lie.zip"
    path.write_bytes(bytes(data))
    assert list_zip(path).refusal.code == "zip_inconsistent"


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 not really a zip", b"", b"PK\x05\x06" + b"\xff" * 18],
)
def test_damaged_zip_is_refused_not_raised(tmp_path, data):
    path = tmp_path / "broken.zip"
    path.write_bytes(data)
    listing = list_zip(path)
    assert listing.refusal is not None
    assert listing.refusal.code in ("zip_damaged", "zip_inconsistent", "zip_too_many_entries")
    assert listing.entries == ()
