"""The preflight checks on PDFs and images built in the tests, run through the sandbox."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zlib

import pikepdf
import pytest
from PIL import Image
from preflight_helpers import (
    dejavu_embedded,
    helvetica,
    huge_image_xobject,
    image_xobject,
    many_pages,
    mm,
    new_page,
    raster,
    raw_pdf,
    save,
    stream,
    text,
    tiff_with_declared_size,
)

from shared.files.findings import ERROR, INFO, WARNING, Finding
from shared.files.messages import CATALOGUE, LANGUAGES, describe
from shared.files.preflight import (
    Expectations,
    PageGroup,
    PreflightLimits,
    PreflightReport,
    PreflightSettings,
    render_page_preview,
    run_preflight,
)
from shared.files.preflight.report import page_ranges

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

A4_PT = (mm(210), mm(297))


def preflight(path, file_type="pdf", **options):
    return run_preflight(path, file_type, **options)


def resources(**entries) -> pikepdf.Dictionary:
    return pikepdf.Dictionary({f"/{key}": value for key, value in entries.items()})


def place(name: str, width_pt: float, height_pt: float, x: float = 0, y: float = 0) -> bytes:
    return f"q {width_pt:.4f} 0 0 {height_pt:.4f} {x} {y} cm /{name} Do Q ".encode()


@pytest.fixture
def print_ready(tmp_path):
    """A4 with 3 mm bleed, an embedded font, a CMYK image at 305 ppi: nothing to complain of."""
    pdf = pikepdf.new()
    page_resources = resources(
        Font=resources(F1=dejavu_embedded(pdf)),
        XObject=resources(Im1=image_xobject(pdf, 600, 600)),
    )
    content = text("/F1") + place("Im1", mm(50), mm(50), 100, 100)
    new_page(pdf, content=content, resources=page_resources)
    return save(pdf, tmp_path / "print.pdf")


# --- a file with nothing to complain of -----------------------------------------------------


def test_print_ready_pdf_is_ok_with_sizes_and_thumbnail(print_ready, tmp_path):
    previews = tmp_path / "previews"
    previews.mkdir()
    report = preflight(print_ready, preview_dir=previews)
    assert report.status == "ok"
    assert report.codes() == ["no_output_intent"]
    assert report.page_count == 1
    assert report.page_sizes == (
        PageGroup(
            "1",
            1,
            (210.0, 297.0),
            (3.0, 3.0, 3.0, 3.0),
            {"MediaBox": (216.0, 303.0), "BleedBox": (216.0, 303.0), "TrimBox": (210.0, 297.0)},
        ),
    )
    assert report.thumbnail == "thumbnail.png"
    with Image.open(previews / "thumbnail.png") as thumbnail:
        assert max(thumbnail.size) == 300
        assert thumbnail.format == "PNG"
    assert [path.name for path in previews.iterdir()] == ["thumbnail.png"]  # no temp files


def test_report_round_trips_through_json(print_ready):
    report = preflight(print_ready, expectations=Expectations(100, 100, page_count=3))
    assert PreflightReport.from_json(report.to_json()) == report
    assert report.to_json().startswith('{"format":1,"status":"warnings"')


# --- boxes and bleed ----------------------------------------------------------------------


def test_bleed_too_small(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf, bleed_mm=1.0)
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.status == "warnings"
    assert report.finding("bleed_too_small") == Finding(
        "bleed_too_small", WARNING, {"pages": "1", "bleed_mm": 1.0, "min_bleed_mm": 3.0}
    )
    assert report.page_sizes[0].bleed_mm == (1.0, 1.0, 1.0, 1.0)


def test_bleed_on_one_side_only_is_too_small(tmp_path):
    pdf = pikepdf.new()
    page = new_page(pdf, bleed_mm=3.0)
    page.obj.TrimBox = [mm(3), mm(3), mm(213), mm(300)]  # nothing beyond the right edge
    page.obj.MediaBox = page.obj.BleedBox = [0, 0, mm(213), mm(303)]
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.page_sizes[0].bleed_mm == (3.0, 3.0, 0.0, 3.0)
    assert report.finding("bleed_too_small").params["bleed_mm"] == 0.0


def test_no_bleed_and_no_trim_box(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf, bleed_mm=None, trim_box=False)
    new_page(pdf, bleed_mm=None, trim_box=False)
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.codes() == ["trim_box_missing", "bleed_missing", "no_output_intent"]
    assert report.finding("bleed_missing").params == {"pages": "1–2", "min_bleed_mm": 3.0}
    assert report.page_sizes[0].count == 2
    assert describe(report.finding("bleed_missing"), "de") == (
        "Kein Beschnitt auf Seiten 1–2. Bitte legen Sie an jeder Seite mindestens 3,0 mm "
        "Beschnitt an."
    )
    assert "at least 3.0 mm" in describe(report.finding("bleed_missing"), "en")


def test_settings_choose_the_bleed(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf, bleed_mm=3.0)
    path = save(pdf, tmp_path / "a.pdf")
    report = preflight(path, settings=PreflightSettings(min_bleed_mm=5.0))
    assert report.finding("bleed_too_small").params == {
        "pages": "1",
        "bleed_mm": 3.0,
        "min_bleed_mm": 5.0,
    }


def test_pages_group_by_size_and_crop_and_art_boxes_are_shown(tmp_path):
    pdf = pikepdf.new()
    for _ in range(3):
        new_page(pdf)
    odd = new_page(pdf, trim_mm=(148, 210))
    odd.obj.CropBox = odd.obj.MediaBox
    odd.obj.ArtBox = [mm(10), mm(10), mm(100), mm(100)]
    new_page(pdf)
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert [(group.pages, group.count, group.trim_mm) for group in report.page_sizes] == [
        ("1–3, 5", 4, (210.0, 297.0)),
        ("4", 1, (148.0, 210.0)),
    ]
    assert report.page_sizes[1].boxes_mm["ArtBox"] == (90.0, 90.0)
    assert report.page_sizes[1].boxes_mm["CropBox"] == (154.0, 216.0)


def test_rotated_page_is_measured_as_viewed(tmp_path):
    pdf = pikepdf.new()
    page = new_page(pdf)
    page.obj.Rotate = 90
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.page_sizes[0].trim_mm == (297.0, 210.0)
    assert report.page_sizes[0].rotate == 90


def test_invalid_media_box(tmp_path):
    pdf = pikepdf.new()
    page = new_page(pdf)
    page.obj.MediaBox = [0, 0, 0, 0]
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("page_box_invalid") == Finding("page_box_invalid", ERROR, {"pages": "1"})
    assert report.status == "errors"


# --- order expectations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trim", "expected"),
    [
        ((210.4, 297.0), []),  # within the 1 mm tolerance
        ((297.0, 210.0), []),  # either orientation
        ((148.0, 210.0), ["trim_size_mismatch"]),
    ],
)
def test_trim_size_against_the_order(tmp_path, trim, expected):
    pdf = pikepdf.new()
    new_page(pdf, trim_mm=trim)
    report = preflight(save(pdf, tmp_path / "a.pdf"), expectations=Expectations(210, 297))
    assert [code for code in report.codes() if code.endswith("mismatch")] == expected
    if expected:
        assert report.finding("trim_size_mismatch") == Finding(
            "trim_size_mismatch",
            WARNING,
            {"pages": "1", "expected_mm": [210, 297], "found_mm": [148.0, 210.0]},
        )
        assert describe(report.finding("trim_size_mismatch"), "de") == (
            "Das Endformat 148,0 × 210,0 mm auf Seite 1 weicht vom bestellten Format "
            "210,0 × 297,0 mm ab."
        )


def test_page_count_against_the_order(print_ready):
    report = preflight(print_ready, expectations=Expectations(page_count=4))
    assert report.finding("page_count_mismatch") == Finding(
        "page_count_mismatch", WARNING, {"expected": 4, "found": 1}
    )
    assert report.status == "warnings"


# --- fonts --------------------------------------------------------------------------------


def test_standard_font_not_embedded_is_an_error(tmp_path):
    pdf = pikepdf.new()
    fonts = resources(F1=helvetica(pdf), F2=dejavu_embedded(pdf))
    new_page(pdf, content=text("/F1") + text("/F2"), resources=resources(Font=fonts))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("font_not_embedded") == Finding(
        "font_not_embedded", ERROR, {"pages": "1", "fonts": ["Helvetica"]}
    )
    assert report.status == "errors"


def test_fonts_only_listed_but_never_used_do_not_count(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf, content=b"", resources=resources(Font=resources(F1=helvetica(pdf))))
    assert preflight(save(pdf, tmp_path / "a.pdf")).finding("font_not_embedded") is None


def test_font_used_inside_a_form_xobject(tmp_path):
    pdf = pikepdf.new()
    form = pdf.make_stream(
        text("/F9"),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Form,
        BBox=[0, 0, 500, 500],
        Resources=resources(Font=resources(F9=helvetica(pdf))),
    )
    new_page(pdf, content=b"/Fm1 Do", resources=resources(XObject=resources(Fm1=form)))
    new_page(pdf, content=b"/Fm1 Do", resources=resources(XObject=resources(Fm1=form)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("font_not_embedded").params == {"pages": "1–2", "fonts": ["Helvetica"]}


def test_type3_font_counts_as_embedded(tmp_path):
    pdf = pikepdf.new()
    glyph = pdf.make_stream(b"1000 0 0 0 750 750 d1 0 0 750 750 re f")
    type3 = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type3,
            FontBBox=[0, 0, 750, 750],
            FontMatrix=[0.001, 0, 0, 0.001, 0, 0],
            CharProcs=resources(square=glyph),
            Encoding=pikepdf.Dictionary(Differences=[65, pikepdf.Name.square]),
            FirstChar=65,
            LastChar=65,
            Widths=[1000],
            Resources=pikepdf.Dictionary(),
        )
    )
    new_page(pdf, content=text("/T3", "AAA"), resources=resources(Font=resources(T3=type3)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("font_not_embedded") is None
    assert report.status == "ok"


# --- images ------------------------------------------------------------------------------


def test_72_ppi_rgb_image_at_a4(tmp_path):
    pdf = pikepdf.new()
    image = image_xobject(pdf, 595, 842, pikepdf.Name.DeviceRGB, components=3)
    new_page(pdf, content=place("Im1", *A4_PT), resources=resources(XObject=resources(Im1=image)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("image_low_resolution") == Finding(
        "image_low_resolution", WARNING, {"pages": "1", "images": 1, "ppi": 72, "min_ppi": 250}
    )
    assert report.finding("rgb_colour") == Finding("rgb_colour", WARNING, {"pages": "1"})
    assert report.status == "warnings"
    assert "72 ppi" in describe(report.finding("image_low_resolution"), "de")


def test_image_resolution_threshold_is_a_setting(tmp_path):
    pdf = pikepdf.new()
    image = image_xobject(pdf, 200, 200)  # CMYK, 200 ppi at one inch
    new_page(pdf, content=place("Im1", 72, 72), resources=resources(XObject=resources(Im1=image)))
    path = save(pdf, tmp_path / "a.pdf")
    assert preflight(path).finding("image_low_resolution").params["ppi"] == 200
    assert preflight(path, settings=PreflightSettings(min_image_ppi=150)).codes() == [
        "no_output_intent"
    ]


def test_rotated_placement_measures_along_the_image_axes(tmp_path):
    """100 × 200 px rotated 90°: 1 inch wide and 2 inches high along its own axes → 100 ppi."""
    pdf = pikepdf.new()
    image = image_xobject(pdf, 100, 200)
    content = b"q 0 72 -144 0 300 300 cm /Im1 Do Q"
    new_page(pdf, content=content, resources=resources(XObject=resources(Im1=image)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("image_low_resolution").params["ppi"] == 100


def test_image_in_a_scaled_form_on_several_pages_counts_once(tmp_path):
    """A form drawn at twice its size: a 150 px image 1 inch in the form is 2 inches → 75 ppi."""
    pdf = pikepdf.new()
    image = image_xobject(pdf, 150, 150)
    form = pdf.make_stream(
        place("Im1", 72, 72),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Form,
        BBox=[0, 0, 72, 72],
        Matrix=[2, 0, 0, 2, 0, 0],
        Resources=resources(XObject=resources(Im1=image)),
    )
    for _ in range(3):
        new_page(pdf, content=b"/Fm1 Do", resources=resources(XObject=resources(Fm1=form)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("image_low_resolution").params == {
        "pages": "1–3",
        "images": 1,
        "ppi": 75,
        "min_ppi": 250,
    }


def test_inline_image_counts_like_an_xobject(tmp_path):
    pdf = pikepdf.new()
    content = b"q 72 0 0 72 100 100 cm BI /W 10 /H 10 /CS /RGB /BPC 8 ID " + bytes(300) + b" EI Q"
    new_page(pdf, content=content)
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("image_low_resolution").params["ppi"] == 10
    assert report.finding("rgb_colour") is not None


def test_image_of_50000_by_50000_pixels(tmp_path):
    """Declared huge, a few bytes of data: an error, and page 1 is not rendered."""
    pdf = pikepdf.new()
    image = huge_image_xobject(pdf, 50_000, 50_000)
    new_page(pdf, content=place("Im1", *A4_PT), resources=resources(XObject=resources(Im1=image)))
    new_page(pdf)
    path = save(pdf, tmp_path / "huge.pdf")
    previews = tmp_path / "previews"
    previews.mkdir()
    started = time.monotonic()
    report = preflight(path, preview_dir=previews)
    assert time.monotonic() - started < PreflightLimits().wall_seconds
    assert report.status == "errors"
    assert report.finding("image_too_large") == Finding(
        "image_too_large", ERROR, {"pages": "1", "width": 50_000, "height": 50_000}
    )
    assert report.thumbnail is None
    assert report.finding("preview_skipped").params == {"reason": "image_too_large"}
    assert render_page_preview(path, "pdf", 1, previews) is None
    assert render_page_preview(path, "pdf", 2, previews).exists()


# --- colour ------------------------------------------------------------------------------


def _separation(pdf: pikepdf.Pdf, name: str) -> pikepdf.Array:
    tint = pikepdf.Dictionary(FunctionType=2, Domain=[0, 1], C0=[0, 0, 0, 0], C1=[0, 1, 1, 0], N=1)
    return pikepdf.Array(
        [pikepdf.Name.Separation, pikepdf.Name("/" + name), pikepdf.Name.DeviceCMYK, tint]
    )


def test_spot_colours_are_listed_and_cmyk_is_fine(tmp_path):
    pdf = pikepdf.new()
    gold = pikepdf.Array(
        [
            pikepdf.Name.DeviceN,
            [pikepdf.Name.Cyan, pikepdf.Name.Gold],
            pikepdf.Name.DeviceCMYK,
            pikepdf.Dictionary(FunctionType=2, Domain=[0, 1], C0=[0], C1=[1], N=1),
        ]
    )
    spaces = resources(CS0=_separation(pdf, "PANTONE 123 C"), CS1=gold)
    content = b"/CS0 cs 1 scn 0 0 100 100 re f /CS1 CS 0.5 1 SCN 0 0 m 9 9 l S 0 0 0 1 k"
    new_page(pdf, content=content, resources=resources(ColorSpace=spaces))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    assert report.finding("spot_colour") == Finding(
        "spot_colour", INFO, {"names": ["Gold", "PANTONE 123 C"]}
    )
    assert report.finding("rgb_colour") is None
    assert report.status == "ok"
    assert describe(report.finding("spot_colour"), "fr").startswith(
        "Tons directs : Gold, PANTONE 123 C."
    )


def test_rgb_vector_colour_and_icc_based_rgb_image(tmp_path):
    pdf = pikepdf.new()
    profile = pdf.make_stream(b"not parsed by the preflight", N=3)
    image = image_xobject(
        pdf, 300, 300, pikepdf.Array([pikepdf.Name.ICCBased, profile]), components=3
    )
    new_page(pdf, content=place("Im1", 72, 72), resources=resources(XObject=resources(Im1=image)))
    new_page(pdf, content=b"1 0 0 rg 0 0 10 10 re f")
    new_page(pdf, content=b"0 0 0 1 k 0 0 10 10 re f")
    path = save(pdf, tmp_path / "a.pdf")
    assert preflight(path).finding("rgb_colour").params == {"pages": "1–2"}
    assert (
        preflight(path, settings=PreflightSettings(colour_mode="any")).finding("rgb_colour") is None
    )


# --- document ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "version"),
    [("info", "PDF/X-1a:2001"), ("xmp", "PDF/X-4")],
)
def test_pdfx_output_intent_is_reported(tmp_path, where, version):
    pdf = pikepdf.new()
    new_page(pdf)
    pdf.Root.OutputIntents = [
        pikepdf.Dictionary(
            Type=pikepdf.Name.OutputIntent,
            S=pikepdf.Name.GTS_PDFX,
            OutputConditionIdentifier="FOGRA39",
        )
    ]
    if where == "info":
        pdf.docinfo["/GTS_PDFXVersion"] = version
    else:
        xmp = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
            '02/22-rdf-syntax-ns#"><rdf:Description xmlns:pdfxid="http://www.npes.org/pdfx/ns/'
            f'id/"><pdfxid:GTS_PDFXVersion>{version}</pdfxid:GTS_PDFXVersion>'
            "</rdf:Description></rdf:RDF></x:xmpmeta>"
        )
        pdf.Root.Metadata = pdf.make_stream(xmp.encode(), Type=pikepdf.Name.Metadata)
    report = preflight(save(pdf, tmp_path / "x.pdf"))
    assert report.finding("pdfx_output_intent") == Finding(
        "pdfx_output_intent", INFO, {"version": version, "condition": "FOGRA39"}
    )
    assert describe(report.finding("pdfx_output_intent"), "de") == (
        f"Die Datei ist als {version} angelegt, Ausgabebedingung: FOGRA39."
    )


def test_missing_output_intent_is_a_warning_when_pdfx_is_required(print_ready):
    report = preflight(print_ready, settings=PreflightSettings(require_pdfx=True))
    assert report.finding("no_output_intent").severity == WARNING


def test_encrypted_pdf_with_a_password_cannot_be_checked(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf)
    path = save(pdf, tmp_path / "locked.pdf", encryption=pikepdf.Encryption(user="u", owner="o"))
    previews = tmp_path / "previews"
    previews.mkdir()
    report = preflight(path, preview_dir=previews)
    assert report.status == "errors"
    assert report.findings == (Finding("encrypted", ERROR, {"kind": "password"}),)
    assert report.page_count is None
    assert not list(previews.iterdir())


@pytest.mark.parametrize(
    ("print_highres", "severity", "kind"),
    [(True, WARNING, "restrictions"), (False, ERROR, "no_printing")],
)
def test_owner_password_only(tmp_path, print_highres, severity, kind):
    pdf = pikepdf.new()
    new_page(pdf)
    permissions = pikepdf.Permissions(modify_other=False, print_highres=print_highres)
    encryption = pikepdf.Encryption(user="", owner="owner", allow=permissions)
    report = preflight(save(pdf, tmp_path / "x.pdf", encryption=encryption))
    assert report.finding("encrypted") == Finding("encrypted", severity, {"kind": kind})
    assert report.page_count == 1


def test_broken_xref_table_is_repaired_with_a_warning(print_ready, tmp_path):
    data = print_ready.read_bytes()
    table = data.rindex(b"\nxref")
    shifted = re.sub(
        rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m.group(1)) + 7), data[table:]
    )
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(data[:table] + shifted)
    report = preflight(broken)
    damaged = report.finding("damaged")
    assert (damaged.severity, damaged.params["kind"]) == (WARNING, "repaired")
    assert any("reconstruct" in problem for problem in damaged.params["problems"])
    assert str(tmp_path) not in report.to_json()
    assert report.page_count == 1
    assert report.status == "warnings"


def test_unreadable_pdf_is_an_error(tmp_path):
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    report = preflight(path)
    assert report.status == "errors"
    assert report.findings[0].code == "damaged"
    assert report.findings[0].params["kind"] == "unreadable"


def test_font_data_that_cannot_be_decoded_is_an_error(tmp_path):
    """Like qpdf --check, every stream but images is decoded once; the bad one is named."""
    pdf = pikepdf.new()
    font = dejavu_embedded(pdf)
    program = font.FontDescriptor.FontFile2
    program.write(b"x\x9c not deflate data at all", filter=pikepdf.Name.FlateDecode)
    new_page(pdf, content=text("/F1"), resources=resources(Font=resources(F1=font)))
    report = preflight(save(pdf, tmp_path / "a.pdf"))
    damaged = report.finding("damaged")
    assert (damaged.severity, damaged.params["kind"]) == (ERROR, "stream_data")
    assert re.fullmatch(
        r"a\.pdf \(object \d+,0, offset \d+\): stream inflate: .*", damaged.params["problems"][0]
    )
    assert describe(damaged, "en").startswith(
        "Parts of the file (such as fonts or colour profiles)"
    )


def test_deeply_nested_arrays(tmp_path):
    """100,000 nested arrays in an object the checks read and in the page content."""
    deep = b"[" * 100_000 + b"]" * 100_000
    path = raw_pdf(
        tmp_path / "deep.pdf",
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots 5 0 R "
            b"/Contents 4 0 R /Resources << >> >>",
            stream(b"q " + deep + b" pop Q"),
            deep,
        ],
    )
    report = preflight(path)
    assert report.status == "errors"
    damaged = report.finding("damaged")
    assert damaged.params["kind"] == "page_content"
    assert damaged.params["pages"] == "1"
    assert "nested" in damaged.params["problems"][0]


def test_ten_thousand_pages_give_one_size_group(tmp_path):
    path = many_pages(tmp_path / "10k.pdf", 10_000)
    started = time.monotonic()
    report = preflight(path)
    assert time.monotonic() - started < PreflightLimits().wall_seconds
    assert report.page_count == 10_000
    assert report.page_sizes == (
        PageGroup(
            "1–10000",
            10_000,
            (210.0, 297.0),
            (3.0, 3.0, 3.0, 3.0),
            {"MediaBox": (216.0, 303.0), "BleedBox": (216.0, 303.0), "TrimBox": (210.0, 297.0)},
        ),
    )
    assert report.status == "ok"


def test_more_pages_than_the_limit_is_failed(tmp_path):
    path = many_pages(tmp_path / "many.pdf", 50)
    report = preflight(path, limits=PreflightLimits(max_pages=20))
    assert report.status == "failed"
    assert report.findings == (
        Finding(
            "preflight_failed", ERROR, {"kind": "too_many_pages", "pages": 50, "max_pages": 20}
        ),
    )
    assert describe(report.findings[0], "en").startswith("The file has 50 pages; at most 20")


def test_javascript_open_action_and_link(tmp_path):
    pdf = pikepdf.new()
    new_page(pdf)
    page = new_page(pdf)
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)")
    link = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=[0, 0, 10, 10],
        A=pikepdf.Dictionary(
            S=pikepdf.Name.URI,
            URI="https://example.com",
            Next=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="this.print()"),
        ),
    )
    page.obj.Annots = pdf.make_indirect([link])
    report = preflight(save(pdf, tmp_path / "js.pdf"))
    assert report.finding("javascript") == Finding(
        "javascript", WARNING, {"document": True, "pages": "2"}
    )


def test_illustrator_pdf_is_checked_as_pdf_and_other_types_are_not(print_ready, tmp_path):
    assert preflight(print_ready, "ai").codes() == ["no_output_intent"]
    eps = tmp_path / "logo.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    report = preflight(eps, "eps", preview_dir=tmp_path)
    assert report.findings == (Finding("not_checked", INFO, {"type": "eps"}),)
    assert report.thumbnail is None


# --- previews ----------------------------------------------------------------------------


def test_page_preview_on_demand(print_ready, tmp_path):
    pdf = pikepdf.open(print_ready)
    new_page(pdf, trim_mm=(297, 210))
    path = save(pdf, tmp_path / "two.pdf")
    previews = tmp_path / "previews"
    previews.mkdir()
    preview = render_page_preview(path, "pdf", 2, previews)
    assert preview == previews / "page-00002-1200px.png"
    with Image.open(preview) as image:
        assert image.size == (1200, 856)  # 303 × 216 mm with the bleed
    modified = preview.stat().st_mtime_ns
    assert render_page_preview(path, "pdf", 2, previews) == preview
    assert preview.stat().st_mtime_ns == modified  # not rendered twice
    assert render_page_preview(path, "pdf", 3, previews) is None


# --- raster files ----------------------------------------------------------------------


def test_cmyk_jpeg_at_300_dpi_is_ok(tmp_path):
    path = raster(tmp_path / "photo.jpg", "CMYK", (600, 900), 300)
    report = preflight(path, "jpeg", preview_dir=tmp_path)
    assert report.status == "ok"
    assert report.findings == ()
    assert report.page_sizes[0].trim_mm == (50.8, 76.2)
    with Image.open(tmp_path / "thumbnail.png") as thumbnail:
        assert thumbnail.size == (200, 300)


def test_rgb_png_at_72_dpi(tmp_path):
    path = raster(tmp_path / "logo.png", "RGB", (720, 360), 72)
    report = preflight(path, "png", expectations=Expectations(254, 127))
    assert report.codes() == ["image_low_resolution", "rgb_colour"]
    assert report.finding("image_low_resolution").params["ppi"] == 72


def test_image_without_resolution(tmp_path):
    path = raster(tmp_path / "scan.tif", "L", (100, 100), None)
    report = preflight(path, "tiff", expectations=Expectations(page_count=2))
    assert report.codes() == ["image_resolution_unknown", "page_count_mismatch"]
    assert report.page_sizes == ()


def test_tiff_with_a_huge_declared_size_is_not_decoded(tmp_path):
    path = tiff_with_declared_size(tmp_path / "huge.tif", 50_000, 50_000)
    started = time.monotonic()
    report = preflight(path, "tiff", preview_dir=tmp_path)
    assert time.monotonic() - started < 10
    assert report.status == "errors"
    assert report.finding("image_too_large").params == {
        "pages": "1",
        "width": 50_000,
        "height": 50_000,
    }
    assert report.thumbnail is None
    assert not (tmp_path / "thumbnail.png").exists()


def test_large_png_is_refused_for_previews_only(tmp_path):
    path = raster(tmp_path / "wide.png", "L", (4000, 3000), 300, compress_level=1)
    report = preflight(
        path, "png", preview_dir=tmp_path, limits=PreflightLimits(max_preview_pixels=1_000_000)
    )
    assert report.status == "ok"
    assert report.thumbnail is None
    assert report.finding("preview_skipped").params["reason"].endswith("pixels to decode")


def test_damaged_image_is_an_error(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + zlib.compress(b"nothing"))
    report = preflight(path, "png", preview_dir=tmp_path)
    assert report.findings[0].code == "damaged"
    assert report.status == "errors"


# --- report and words ------------------------------------------------------------------------


def test_page_ranges():
    assert page_ranges([5, 1, 2, 3, 7, 8, 2]) == "1–3, 5, 7–8"
    assert page_ranges(range(1, 60, 2)).endswith(", 39, …")


ENGINE_CODES = [
    "preflight_failed",
    "not_checked",
    "preview_skipped",
    "no_pages",
    "damaged",
    "damaged.repaired",
    "damaged.unreadable",
    "damaged.page_content",
    "damaged.stream_data",
    "encrypted.password",
    "encrypted.restrictions",
    "encrypted.no_printing",
    "javascript",
    "pdfx_output_intent",
    "no_output_intent",
    "page_box_invalid",
    "trim_box_missing",
    "bleed_missing",
    "bleed_too_small",
    "trim_size_mismatch",
    "page_count_mismatch",
    "font_not_embedded",
    "image_low_resolution",
    "image_too_large",
    "image_resolution_unknown",
    "rgb_colour",
    "spot_colour",
]


def test_every_code_has_words_in_every_language():
    for code in ENGINE_CODES:
        assert code in CATALOGUE, code
    for code, texts in CATALOGUE.items():
        assert set(texts) == set(LANGUAGES), code


def test_describe_formats_numbers_per_language_and_never_raises():
    finding = Finding(
        "bleed_too_small", WARNING, {"pages": "2", "bleed_mm": 1.25, "min_bleed_mm": 3}
    )
    assert describe(finding, "de") == (
        "Zu wenig Beschnitt auf Seite 2: 1,2 mm, nötig sind an jeder Seite mindestens 3,0 mm."
    )
    assert "1.2 mm" in describe(finding, "en")
    assert "1,2 mm" in describe(finding, "fr")
    assert describe(finding, "es") == describe(finding, "de")
    assert describe(finding, "en-GB") == describe(finding, "en")
    assert describe(Finding("bleed_too_small", WARNING, {}), "de") == (
        "Prüfhinweis: bleed_too_small"
    )
    assert describe(Finding("something_new", INFO, {}), "fr") == (
        "Résultat du contrôle : something_new"
    )


def test_callers_import_no_flask_and_no_pdf_libraries():
    """shared/ stays free of Flask; pikepdf, PDFium and Pillow load only in the sandbox."""
    code = (
        "import sys, shared.files.preflight, shared.files.filetypes, shared.files.zips, "
        "shared.files.messages; "
        "print(sorted(m for m in ('flask', 'pikepdf', 'pypdfium2', 'PIL') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
