"""Upload names: what is refused, what is stored on disk, and how clashes are numbered."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import unicodedata

import pytest

from shared.errors import Invalid
from shared.files import names as filenames
from shared.files.names import NameRefused, check_upload_name, free_name, stored_name_for

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

SAFE = re.compile(r"[\x20-\x7e]+")
WINDOWS_FORBIDDEN = set('<>:"|?*/\\')

# check_upload_name


@pytest.mark.parametrize(
    "name",
    [
        "Flyer A5.pdf",
        "Müller & Söhne – Katalog 2026.pdf",
        "請求書.pdf",
        "CON.pdf",  # refused by Windows, but renamed on disk rather than refused
        "trailing dot.",
        "trailing space ",
        "..hidden..pdf",
        "a..b.pdf",
        ".pdf",
        "🖨️ Druck.tif",
        "x" * 251 + ".pdf",
        "ü" * 127,  # 254 bytes
    ],
)
def test_acceptable_names_are_kept(name):
    assert check_upload_name(name) == name


def test_names_are_normalised_to_nfc():
    decomposed = unicodedata.normalize("NFD", "Grüße.pdf")
    assert decomposed != "Grüße.pdf"

    assert check_upload_name(decomposed) == "Grüße.pdf"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", filenames.REASON_EMPTY),
        ("   ", filenames.REASON_EMPTY),
        ("\u3000", filenames.REASON_EMPTY),
        ("a/b.pdf", filenames.REASON_SEPARATOR),
        ("a\\b.pdf", filenames.REASON_SEPARATOR),
        ("/etc/passwd", filenames.REASON_SEPARATOR),
        ("../../etc/passwd", filenames.REASON_SEPARATOR),
        ("..\\boot.ini", filenames.REASON_SEPARATOR),
        ("C:\\temp\\x.pdf", filenames.REASON_SEPARATOR),
        (".", filenames.REASON_DOTS),
        ("..", filenames.REASON_DOTS),
        ("a\x00.pdf", filenames.REASON_CONTROL),
        ("a\nb.pdf", filenames.REASON_CONTROL),
        ("a\rb.pdf", filenames.REASON_CONTROL),
        ("tab\t.pdf", filenames.REASON_CONTROL),
        ("esc\x1b[31m.pdf", filenames.REASON_CONTROL),
        ("del\x7f.pdf", filenames.REASON_CONTROL),
        ("c1\x85.pdf", filenames.REASON_CONTROL),
        ("line\u2028sep.pdf", filenames.REASON_CONTROL),
        ("invoice\u202efdp.exe", filenames.REASON_CONTROL),
        ("x" * 252 + ".pdf", filenames.REASON_TOO_LONG),
        ("ü" * 128, filenames.REASON_TOO_LONG),  # 128 characters, 256 bytes
    ],
)
def test_unacceptable_names_are_refused_with_a_reason(name, reason):
    with pytest.raises(NameRefused) as caught:
        check_upload_name(name)

    assert caught.value.reason == reason
    assert isinstance(caught.value, Invalid)
    assert caught.value.field == "filename"
    assert caught.value.message  # an English sentence for logs and the API


def test_every_reason_has_its_own_message():
    messages = {NameRefused(reason).message for reason in filenames._MESSAGES}
    assert len(messages) == len(filenames._MESSAGES)


# stored_name_for


@pytest.mark.parametrize(
    ("display", "stored"),
    [
        ("Flyer A5.pdf", "Flyer A5.pdf"),
        ("Müller Straße.pdf", "Mueller Strasse.pdf"),
        ("ÄÖÜ äöü ß.pdf", "AeOeUe aeoeue ss.pdf"),
        ("résumé café.PDF", "resume cafe.PDF"),
        ("Ærøskøbing.jpg", "AEroskobing.jpg"),
        ("Łódź.tif", "Lodz.tif"),
        ("ＡＢＣ１２３.pdf", "ABC123.pdf"),
        ("ﬁnal.pdf", "final.pdf"),
        ('a<b>c:d"e|f?g*h.tif', "a_b_c_d_e_f_g_h.tif"),
        ("a<<<>>>b.pdf", "a_b.pdf"),
        ("a___b.pdf", "a_b.pdf"),
        ("trailing dot.", "trailing dot"),
        ("trailing space ", "trailing space"),
        ("dots and spaces. . .", "dots and spaces"),
        ("name .pdf", "name.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("archive.tar.gz", "archive.tar.gz"),
        ("Datei (1).pdf", "Datei (1).pdf"),
        ("doc.日本", "doc"),
        ("請求書2024年3月.pdf", "2024_3.pdf"),
    ],
)
def test_stored_names(display, stored):
    assert stored_name_for(display) == stored


@pytest.mark.parametrize(
    ("display", "stored"),
    [
        ("CON", "_CON"),
        ("con", "_con"),
        ("CON.pdf", "_CON.pdf"),
        ("con.tar.gz", "_con.tar.gz"),
        ("Prn.txt", "_Prn.txt"),
        ("AUX .txt", "_AUX.txt"),
        ("nul.", "_nul"),
        ("NUL.PDF", "_NUL.PDF"),
        ("COM1.pdf", "_COM1.pdf"),
        ("com9", "_com9"),
        ("LPT1.tif", "_LPT1.tif"),
        ("lpt9.eps", "_lpt9.eps"),
        ("CON. .pdf", "_CON.pdf"),
    ],
)
def test_windows_device_names_are_prefixed(display, stored):
    assert stored_name_for(display) == stored


@pytest.mark.parametrize(
    "display",
    [
        "CONSOLE.pdf",
        "COM10.txt",
        "LPT10",
        "icon.pdf",
        "Contract.pdf",
        "AUXILIARY.pdf",
        "my CON.pdf",
    ],
)
def test_names_that_only_look_like_devices_are_kept(display):
    assert stored_name_for(display) == display


def _fallback(display: str) -> str:
    return "file-" + hashlib.sha1(display.encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("display", "extension"),
    [
        ("請求書.pdf", ".pdf"),
        ("見積書.pdf", ".pdf"),
        ("Ωμέγα.pdf", ".pdf"),
        ("Привет мир.indd", ".indd"),
        ("🖨️.tif", ".tif"),
        (".pdf", ".pdf"),
        ("..pdf", ".pdf"),
        ("...", ""),
        ("<>|.pdf", ".pdf"),
        ("カタログ", ""),
    ],
)
def test_little_left_of_the_name_falls_back_to_a_hash(display, extension):
    assert stored_name_for(display) == _fallback(display) + extension


def test_fallbacks_of_different_names_differ():
    assert stored_name_for("請求書.pdf") != stored_name_for("見積書.pdf")


@pytest.mark.parametrize(
    "display",
    [
        "x" * 255,
        "x" * 251 + ".pdf",
        "ü" * 127,
        "ü" * 120 + ".pdf",
        "a" * 250 + ".longextension",
    ],
)
def test_stored_names_fit_in_255_bytes(display):
    stored = stored_name_for(display)

    assert len(stored.encode()) <= 255
    assert stored.startswith(("x", "ue", "a"))
    assert not stored.endswith((" ", "."))


def test_long_names_keep_their_extension():
    assert stored_name_for("x" * 255 + ".pdf").endswith("x.pdf")


@pytest.mark.parametrize(
    "display",
    [
        "Müller Straße.pdf",
        "請求書.pdf",
        'a<b>c:d"e|f?g*h.tif',
        "CON.pdf",
        "trailing. ",
        "mixed 日本 text ü.pdf",
        "\u00a0nbsp\u00a0.pdf",
        "zero\u200bwidth.pdf",
        "emoji 🖨️ druck.pdf",
        "x" * 300,
    ],
)
def test_stored_names_are_printable_ascii_without_windows_specials(display):
    stored = stored_name_for(display)

    assert SAFE.fullmatch(stored)
    assert not WINDOWS_FORBIDDEN & set(stored)
    assert not stored.endswith((" ", "."))
    assert not stored.startswith((" ", "."))
    assert stored_name_for(stored) == stored  # stable: a stored name stays as it is


def test_decomposed_and_composed_names_store_the_same():
    composed = "Grüße.pdf"
    assert stored_name_for(unicodedata.normalize("NFD", composed)) == stored_name_for(composed)


# free_name


def test_free_name_is_the_name_when_nothing_is_there(tmp_path):
    assert free_name(tmp_path, "Flyer.pdf") == "Flyer.pdf"
    assert free_name(tmp_path / "not-yet-created", "Flyer.pdf") == "Flyer.pdf"


@pytest.mark.parametrize(
    ("existing", "name", "expected"),
    [
        (["Flyer.pdf"], "Flyer.pdf", "Flyer (2).pdf"),
        (["Flyer.pdf", "Flyer (2).pdf"], "Flyer.pdf", "Flyer (3).pdf"),
        (["Flyer.pdf", "Flyer (3).pdf"], "Flyer.pdf", "Flyer (2).pdf"),
        (["archive.tar.gz"], "archive.tar.gz", "archive.tar (2).gz"),
        (["README"], "README", "README (2)"),
        (["Datei (2).pdf"], "Datei (2).pdf", "Datei (2) (2).pdf"),
        (["Other.pdf"], "Flyer.pdf", "Flyer.pdf"),
    ],
)
def test_existing_names_get_a_number(tmp_path, existing, name, expected):
    for other in existing:
        (tmp_path / other).write_bytes(b"x")

    assert free_name(tmp_path, name) == expected


def test_names_differing_only_in_case_clash_as_on_smb(tmp_path):
    (tmp_path / "flyer.PDF").write_bytes(b"x")

    assert free_name(tmp_path, "Flyer.pdf") == "Flyer (2).pdf"


def test_directories_count_as_taken(tmp_path):
    (tmp_path / "Flyer.pdf").mkdir()

    assert free_name(tmp_path, "Flyer.pdf") == "Flyer (2).pdf"


def test_names_reserved_elsewhere_count_as_taken(tmp_path):
    assert free_name(tmp_path, "Flyer.pdf", also_taken=["FLYER.pdf"]) == "Flyer (2).pdf"


def test_numbered_names_stay_within_255_bytes(tmp_path):
    name = "x" * 251 + ".pdf"
    (tmp_path / name).write_bytes(b"x")

    numbered = free_name(tmp_path, name)

    assert numbered.endswith(" (2).pdf")
    assert len(numbered.encode()) == 255
    (tmp_path / numbered).write_bytes(b"x")  # the file system takes it


def test_numbering_never_overwrites_many_existing(tmp_path):
    (tmp_path / "Flyer.pdf").write_bytes(b"x")
    for number in range(2, 30):
        (tmp_path / f"Flyer ({number}).pdf").write_bytes(b"x")

    assert free_name(tmp_path, "Flyer.pdf") == "Flyer (30).pdf"


@pytest.mark.parametrize("module", ["shared.files.names", "shared.files.receiving"])
def test_shared_modules_import_no_flask(module):
    # A fresh interpreter: other tests in this process import Flask anyway.
    code = (
        f"import sys, {module}; assert 'flask' not in sys.modules and 'werkzeug' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
