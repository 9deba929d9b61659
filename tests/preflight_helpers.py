"""Print PDFs and images built from scratch for the preflight tests (pikepdf and Pillow only)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pikepdf
from PIL import Image

PT_PER_MM = 72 / 25.4
A4_MM = (210.0, 297.0)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def mm(value: float) -> float:
    return value * PT_PER_MM


def new_page(
    pdf: pikepdf.Pdf,
    trim_mm: tuple[float, float] = A4_MM,
    bleed_mm: float | None = 3.0,
    content: bytes = b"",
    resources: pikepdf.Dictionary | None = None,
    trim_box: bool = True,
) -> pikepdf.Page:
    """A page of ``trim_mm`` with ``bleed_mm`` all round (MediaBox = BleedBox)."""
    bleed = bleed_mm or 0.0
    width, height = mm(trim_mm[0] + 2 * bleed), mm(trim_mm[1] + 2 * bleed)
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, width, height],
        Resources=resources if resources is not None else pikepdf.Dictionary(),
        Contents=pdf.make_stream(content),
    )
    if trim_box:
        page.TrimBox = [mm(bleed), mm(bleed), width - mm(bleed), height - mm(bleed)]
    if bleed_mm:
        page.BleedBox = [0, 0, width, height]
    pdf.pages.append(pikepdf.Page(page))
    return pdf.pages[-1]


def image_xobject(
    pdf: pikepdf.Pdf,
    width: int,
    height: int,
    colour_space: object = pikepdf.Name.DeviceCMYK,
    data: bytes | None = None,
    components: int = 4,
) -> pikepdf.Stream:
    """An image XObject; without ``data`` a flat colour, Flate-compressed (tiny)."""
    if data is None:
        data = zlib.compress(bytes(width * height * components))
    return pdf.make_stream(
        data,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=width,
        Height=height,
        ColorSpace=colour_space,
        BitsPerComponent=8,
        Filter=pikepdf.Name.FlateDecode,
    )


def huge_image_xobject(pdf: pikepdf.Pdf, width: int, height: int) -> pikepdf.Stream:
    """An image that declares ``width`` × ``height`` but holds a few compressed bytes."""
    return pdf.make_stream(
        zlib.compress(bytes(1024)),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=width,
        Height=height,
        ColorSpace=pikepdf.Name.DeviceGray,
        BitsPerComponent=8,
        Filter=pikepdf.Name.FlateDecode,
    )


def helvetica(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    """Helvetica by reference only: one of the standard 14, not embedded."""
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )


def dejavu_embedded(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    """DejaVu Sans (Debian's fonts-dejavu-core) embedded as a TrueType FontFile2."""
    program = DEJAVU.read_bytes()
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name("/ABCDEF+DejaVuSans"),
        Flags=32,
        FontBBox=[-1021, -463, 1793, 1232],
        ItalicAngle=0,
        Ascent=928,
        Descent=-236,
        CapHeight=729,
        StemV=80,
        FontFile2=pdf.make_stream(program, Length1=len(program)),
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.TrueType,
            BaseFont=pikepdf.Name("/ABCDEF+DejaVuSans"),
            FirstChar=32,
            LastChar=126,
            Widths=[600] * 95,
            Encoding=pikepdf.Name.WinAnsiEncoding,
            FontDescriptor=descriptor,
        )
    )


def text(font_name: str = "/F1", words: str = "Hello") -> bytes:
    return f"BT {font_name} 24 Tf 72 400 Td ({words}) Tj ET".encode()


def save(pdf: pikepdf.Pdf, path: Path, **options) -> Path:
    pdf.save(path, **options)
    return path


def tiff_with_declared_size(path: Path, width: int, height: int) -> Path:
    """A little-endian TIFF whose header declares ``width`` × ``height`` 8-bit RGB pixels,
    written by hand: one strip of a few bytes, as a hostile file would have it."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample (one value for all samples)
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, 0),  # StripOffsets: filled in below
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = ifd_offset + ifd_size
    body = io.BytesIO()
    body.write(b"II*\x00" + struct.pack("<L", ifd_offset))
    body.write(struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        if kind == 3:
            body.write(struct.pack("<HHLHH", tag, kind, count, value, 0))
        else:
            body.write(struct.pack("<HHLL", tag, kind, count, value))
    body.write(struct.pack("<L", 0))
    body.write(bytes(16))
    path.write_bytes(body.getvalue())
    return path


def raster(path: Path, mode: str, size: tuple[int, int], dpi: int | None, **options) -> Path:
    """An image file of one colour; ``dpi`` None writes no resolution."""
    image = Image.new(mode, size, "white" if mode != "CMYK" else (0, 0, 0, 0))
    if dpi is not None:
        options["dpi"] = (dpi, dpi)
    image.save(path, **options)
    return path


def raw_pdf(path: Path, objects: list[bytes], trailer: bytes = b"") -> Path:
    """A PDF written byte by byte: object n is ``objects[n - 1]``, object 1 the catalog."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\n" % (len(objects) + 1, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))
    return path


def stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), entries, data)


def many_pages(path: Path, count: int) -> Path:
    """``count`` A4 pages with 3 mm bleed sharing one content stream, written by hand."""
    width, height = mm(216), mm(303)
    boxes = (
        b"/MediaBox [0 0 %.3f %.3f] /TrimBox [%.3f %.3f %.3f %.3f] /BleedBox [0 0 %.3f %.3f]"
        % (
            width,
            height,
            mm(3),
            mm(3),
            width - mm(3),
            height - mm(3),
            width,
            height,
        )
    )
    first_page = 4
    kids = b" ".join(b"%d 0 R" % (first_page + n) for n in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        stream(b"0 0 1 1 re f"),
    ]
    page = b"<< /Type /Page /Parent 2 0 R %s /Contents 3 0 R /Resources << >> >>" % boxes
    objects += [page] * count
    return raw_pdf(path, objects)
