"""Print files as bytes for the tests that upload them through the portal (built from scratch
with preflight_helpers: pikepdf, Pillow, hand-written bytes), and a signed-in staff user."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from conftest import csrf_from
from flask.testing import FlaskClient
from PIL import Image
from preflight_helpers import (
    dejavu_embedded,
    huge_image_xobject,
    image_xobject,
    many_pages,
    mm,
    new_page,
    raw_pdf,
    stream,
    text,
    tiff_with_declared_size,
)

from shared.accounts.staff import create_staff
from shared.models import StaffUser

STAFF_PASSWORD = "Kaffee-Druckmaschine-Montag-42"


def _resources(**entries) -> pikepdf.Dictionary:
    return pikepdf.Dictionary({f"/{key}": value for key, value in entries.items()})


def _bytes(pdf: pikepdf.Pdf, **options) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, **options)
    return buffer.getvalue()


def print_pdf(
    pages: int = 1,
    trim_mm: tuple[float, float] = (210.0, 297.0),
    bleed_mm: float | None = 3.0,
    **options,
) -> bytes:
    """A CMYK PDF with an embedded font and a 300 ppi image on every page; ``bleed_mm``
    None: no bleed (and no BleedBox)."""
    pdf = pikepdf.new()
    font = dejavu_embedded(pdf)
    image = image_xobject(pdf, 600, 600)
    for _ in range(pages):
        # A process-colour panel with the trim size's proportions, text, a placed image.
        panel = f"0 0.55 0.9 0 k {mm(10):.3f} {mm(60):.3f} {mm(190):.3f} {mm(220):.3f} re f "
        content = (
            panel.encode()
            + b"0 0 0 1 k "
            + text("/F1", "Sommerfest 2027")
            + f" q {mm(50):.3f} 0 0 {mm(50):.3f} 80 80 cm /Im1 Do Q".encode()
        )
        page_resources = _resources(Font=_resources(F1=font), XObject=_resources(Im1=image))
        new_page(pdf, trim_mm, bleed_mm, content, page_resources)
    return _bytes(pdf, **options)


def encrypted_pdf() -> bytes:
    return print_pdf(encryption=pikepdf.Encryption(user="geheim", owner="owner"))


def javascript_pdf() -> bytes:
    pdf = pikepdf.open(io.BytesIO(print_pdf()))
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)")
    return _bytes(pdf)


def huge_image_pdf() -> bytes:
    """Page 1 places an image declared 50,000 × 50,000 pixels (a few bytes of data)."""
    pdf = pikepdf.new()
    image = huge_image_xobject(pdf, 50_000, 50_000)
    content = f"q {mm(210):.3f} 0 0 {mm(297):.3f} 0 0 cm /Im1 Do Q".encode()
    new_page(pdf, content=content, resources=_resources(XObject=_resources(Im1=image)))
    return _bytes(pdf)


def broken_xref_pdf() -> bytes:
    """A print PDF whose cross-reference table points 7 bytes past every object."""
    data = print_pdf()
    table = data.rindex(b"\nxref")
    shifted = re.sub(
        rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m.group(1)) + 7), data[table:]
    )
    return data[:table] + shifted


def deeply_nested_pdf(tmp_path: Path) -> bytes:
    """100,000 nested arrays in the page content and in an object the checks read."""
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
    return path.read_bytes()


def ten_thousand_pages(tmp_path: Path) -> bytes:
    return many_pages(tmp_path / "10k.pdf", 10_000).read_bytes()


def huge_tiff(tmp_path: Path) -> bytes:
    """A TIFF whose header declares 50,000 × 50,000 pixels, with 16 bytes of data."""
    return tiff_with_declared_size(tmp_path / "huge.tif", 50_000, 50_000).read_bytes()


def image_bytes(fmt: str, mode: str = "CMYK", size=(600, 400), dpi: int | None = 300) -> bytes:
    """An image file of one colour (``fmt``: TIFF, JPEG, PNG)."""
    image = Image.new(mode, size, "white" if mode != "CMYK" else (0, 0, 0, 0))
    options = {"dpi": (dpi, dpi)} if dpi else {}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def eps_bytes() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n"
        b"newpath 0 0 moveto 100 100 lineto stroke\n%%EOF\n"
    )


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(unpacked: int = 32 * 1024 * 1024) -> bytes:
    """One entry that unpacks to ``unpacked`` bytes at about 1:450 (zeros with a byte every
    3,000): beyond the default 1:250, still a ratio deflate can reach."""
    data = bytearray(unpacked)
    for position in range(0, unpacked, 3000):
        data[position] = (position // 3000) % 251 + 1
    return zip_bytes({"nullen.tif": bytes(data)})


@dataclass(frozen=True)
class StaffSession:
    """A staff user signed in on their own test client."""

    client: FlaskClient
    user: StaffUser
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf_token}

    def post(self, path: str, **form: str):
        return self.client.post(path, data={"csrf_token": self.csrf_token} | form)


def signed_in_staff(app, settings, username: str = "anna") -> StaffSession:
    """A staff user (owner of mails) signed in on a fresh test client."""
    user = create_staff(
        settings, username, "Anna Muster", f"{username}@testdruck.example", False, STAFF_PASSWORD
    )
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"username": username, "password": STAFF_PASSWORD, "csrf_token": token}
    response = browser.post("/staff/login", data=form)
    assert response.status_code == 302, response.text
    return StaffSession(browser, user, csrf_from(browser.get("/staff/").text))
