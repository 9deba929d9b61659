"""Benchmark: preflight plus first-page thumbnail of a 100-page print PDF against qpdf/pdftoppm.

The bench writes a print PDF: A4 pages with 3 mm bleed (TrimBox, BleedBox), each with its
own CMYK JPEG of smoothed random noise at 300 ppi (sized so that the file reaches
``--size``; noise does not compress away), text in an embedded TrueType font (DejaVu Sans)
and CMYK vector shapes. ``--images flate`` puts Flate-compressed random CMYK pixels in
their place instead (fewer pixels for the same bytes, so below 300 ppi), which the
preflight decodes to check them, as ``qpdf --check`` does. Then, on the same file in the same
run, with the file in the page
cache:

- ``run_preflight`` exactly as production calls it: a sandboxed process per call, every
  check, the first-page thumbnail written into a preview directory;
- the baseline: ``qpdf --check FILE`` plus ``pdftoppm -png -r 72 -f 1 -l 1 FILE out``.

Each is run ``--runs`` times, alternating; the medians are compared (target ≤ 1.5 ×). The
peak RSS of the sandboxed process comes from ``getrusage(RUSAGE_CHILDREN)`` read after a
first preflight, before any baseline process has run (target ≤ 300 MiB). The measuring is
done by a fresh process (``--measure``) that has not built the PDF: a child's peak RSS
counts the parent's pages it shares between fork and exec, so the bench's own memory
(the whole PDF, while building it) would otherwise show up as the child's.

    .venv/bin/python bench/preflight.py [--size 200M] [--pages 100] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

from common import MiB, heading, median, report, size_option, size_text, workdir

BENCH = "preflight"
TARGET_RATIO = 1.5
TARGET_RSS_MIB = 300
PT_PER_MM = 72 / 25.4
PPI = 300
TRIM_MM = (210.0, 297.0)
BLEED_MM = 3.0
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_option(parser, "size", "200M", "32M", "size of the generated PDF")
    parser.add_argument("--pages", type=int, default=100, help="pages in the PDF")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side")
    parser.add_argument(
        "--images", choices=("jpeg", "flate"), default="jpeg", help="how the photos are stored"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the inner process
    options = parser.parse_args()
    if options.measure:
        run(options.measure.parent, options.measure, options.runs)
        return
    heading(
        f"Preflight + thumbnail, {options.pages} pages, {size_text(options.size)} PDF, "
        f"{options.images} images"
    )
    for tool in ("qpdf", "pdftoppm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (Debian: qpdf, poppler-utils)")
    with workdir(options.keep) as directory:
        path = directory / "print.pdf"
        started = time.perf_counter()
        generate(path, options.pages, options.size, options.images)
        print(
            f"  generated {path.stat().st_size / MiB:.0f} MiB in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        measure = [sys.executable, __file__, "--measure", str(path), "--runs", str(options.runs)]
        subprocess.run(measure, check=True)


# --- the file ---------------------------------------------------------------------------


def generate(path: Path, pages: int, size: int, images: str = "jpeg") -> None:
    """Write the print PDF: one noise photo per page, sized so the file reaches ``size``."""
    import pikepdf

    pdf = pikepdf.new()
    font = _embedded_font(pdf)
    bytes_per_pixel = _jpeg_bytes_per_pixel() if images == "jpeg" else 4
    media_w = (TRIM_MM[0] + 2 * BLEED_MM) * PT_PER_MM
    media_h = (TRIM_MM[1] + 2 * BLEED_MM) * PT_PER_MM
    bleed = BLEED_MM * PT_PER_MM
    # Pixels per page to reach the size, as a photo of the page's proportions at 300 ppi,
    # no larger than the bleed box.
    pixels = min(size / pages / bytes_per_pixel, (media_w / 72 * PPI) * (media_h / 72 * PPI))
    height_px = int((pixels * media_h / media_w) ** 0.5)
    width_px = int(pixels / height_px)
    placed_w, placed_h = width_px / PPI * 72, height_px / PPI * 72
    x, y = (media_w - placed_w) / 2, (media_h - placed_h) / 2
    for number in range(1, pages + 1):
        if images == "jpeg":
            data = _noise_jpeg(width_px, height_px, seed=number)
            # Adobe CMYK JPEGs store inverted values.
            coding = {"Filter": pikepdf.Name.DCTDecode, "Decode": [1, 0, 1, 0, 1, 0, 1, 0]}
        else:
            noise = random.Random(number).randbytes(width_px * height_px * 4)
            data, coding = zlib.compress(noise, 1), {"Filter": pikepdf.Name.FlateDecode}
        image = pdf.make_stream(
            data,
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=width_px,
            Height=height_px,
            ColorSpace=pikepdf.Name.DeviceCMYK,
            BitsPerComponent=8,
            **coding,
        )
        content = (
            f"q 0 0.2 0.9 0 k 0 0 {media_w:.2f} {media_h:.2f} re f Q "
            f"q {placed_w:.3f} 0 0 {placed_h:.3f} {x:.3f} {y:.3f} cm /Im1 Do Q "
            f"BT 0 0 0 1 k /F1 18 Tf {bleed + 30:.2f} {bleed + 30:.2f} Td "
            f"(Page {number} of the preflight bench) Tj ET"
        ).encode()
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, media_w, media_h],
            BleedBox=[0, 0, media_w, media_h],
            TrimBox=[bleed, bleed, media_w - bleed, media_h - bleed],
            Resources=pikepdf.Dictionary(
                Font=pikepdf.Dictionary(F1=font), XObject=pikepdf.Dictionary(Im1=image)
            ),
            Contents=pdf.make_stream(content),
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)


def _noise_jpeg(width: int, height: int, seed: int) -> bytes:
    """Random noise, enlarged 16 times (so that it is a photo-like texture), as CMYK JPEG."""
    from PIL import Image

    generator = random.Random(seed)
    small = (max(1, width // 16), max(1, height // 16))
    noise = Image.frombytes("CMYK", small, generator.randbytes(small[0] * small[1] * 4))
    output = io.BytesIO()
    noise.resize((width, height), Image.BICUBIC).save(output, "JPEG", quality=75)
    return output.getvalue()


def _jpeg_bytes_per_pixel() -> float:
    sample = _noise_jpeg(1024, 1024, seed=0)
    return len(sample) / (1024 * 1024)


def _embedded_font(pdf):
    import pikepdf

    program = FONT.read_bytes()
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name.DejaVuSans,
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
            BaseFont=pikepdf.Name.DejaVuSans,
            FirstChar=32,
            LastChar=126,
            Widths=[600] * 95,
            Encoding=pikepdf.Name.WinAnsiEncoding,
            FontDescriptor=descriptor,
        )
    )


# --- the measurements --------------------------------------------------------------------


def run(directory: Path, path: Path, runs: int) -> None:
    """Preflight and baseline alternately, ``runs`` times each; report medians and RSS."""
    from shared.files.preflight import run_preflight

    _read_whole(path)  # into the page cache: neither side pays for the disk
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    first = _preflight(directory / "previews-0", path)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if before / 1024 >= peak_rss_mib:
        raise SystemExit("an earlier child process was larger: the RSS figure would be wrong")
    report_ = first[1]
    print(f"  report: {report_.status}, {report_.page_count} pages, {report_.codes()}", flush=True)
    preflight_seconds, check_seconds, qpdf_seconds, render_seconds = [], [], [], []
    for number in range(1, runs + 1):
        preflight_seconds.append(_preflight(directory / f"previews-{number}", path)[0])
        qpdf_seconds.append(_timed(["qpdf", "--check", str(path)], ok=(0, 3)))
        render_seconds.append(
            _timed(
                [
                    "pdftoppm",
                    "-png",
                    "-r",
                    "72",
                    "-f",
                    "1",
                    "-l",
                    "1",
                    str(path),
                    str(directory / f"baseline-{number}"),
                ],
                ok=(0,),
            )
        )
        started = time.perf_counter()
        run_preflight(path, "pdf")  # the checks alone, no thumbnail
        check_seconds.append(time.perf_counter() - started)
    baseline = [qpdf + render for qpdf, render in zip(qpdf_seconds, render_seconds, strict=True)]
    ours, theirs = median(preflight_seconds), median(baseline)
    report(BENCH, "qpdf --check", median(qpdf_seconds), "s")
    report(BENCH, "pdftoppm -r 72 page 1", median(render_seconds), "s")
    report(BENCH, "preflight checks only (sandboxed)", median(check_seconds), "s")
    report(
        BENCH,
        "preflight + thumbnail (sandboxed)",
        ours,
        "s",
        baseline="qpdf --check + pdftoppm",
        baseline_value=theirs,
        target=f"≤ {TARGET_RATIO}",
        met=ours <= TARGET_RATIO * theirs,
    )
    report(
        BENCH,
        "peak RSS of the preflight process",
        peak_rss_mib,
        "MiB",
        target=f"≤ {TARGET_RSS_MIB} MiB",
        met=peak_rss_mib <= TARGET_RSS_MIB,
    )


def _preflight(previews: Path, path: Path):
    from shared.files.preflight import run_preflight

    previews.mkdir()
    started = time.perf_counter()
    result = run_preflight(path, "pdf", preview_dir=previews)
    seconds = time.perf_counter() - started
    if result.thumbnail is None or result.status == "failed":
        raise SystemExit(f"the preflight did not finish: {result.to_json()}")
    return seconds, result


def _timed(command: list[str], ok: tuple[int, ...]) -> float:
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode not in ok:
        raise SystemExit(f"{command[0]} failed: {finished.stderr.decode()[:300]}")
    return seconds


def _read_whole(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(16 * MiB):
            pass
    os.sync()


if __name__ == "__main__":
    main()
