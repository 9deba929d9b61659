"""Opening a PDF with pikepdf (qpdf) and what the document as a whole says.

Encryption (decided here):
- a PDF that needs a password to open is an error: nobody in prepress can read it;
- a PDF that opens without one but is encrypted (an owner password with permissions) is a
  warning, because qpdf and every RIP read it, yet prepress tools that honour the
  permissions refuse to change it (imposition, trapping); when its permissions forbid
  printing in high quality it is an error, since a RIP honouring them will not print it.

Damage: qpdf repairs what it can (a broken cross-reference table is rebuilt by scanning the
file) and says so in warnings; a repaired file is a warning, as qpdf's repair need not be
what the author meant; a file qpdf cannot open at all, a page whose content cannot be
parsed, or a stream whose data cannot be decoded is an error. Like ``qpdf --check``, every
stream except images is decoded once and thrown away (fonts, ICC profiles, forms,
metadata). Image data is left to the renderer, which decodes what the thumbnail shows:
decoding every image is most of the work of checking a print PDF, and would put the
preflight of a Flate-image PDF beyond its time target (figures in bench/README.md, section 7).
"""

from __future__ import annotations

import re
from pathlib import Path

import pikepdf

from shared.files.findings import ERROR, INFO, WARNING, Finding
from shared.files.preflight.report import page_ranges

MAX_PROBLEMS = 5
_PDFX_VERSION = re.compile(rb"GTS_PDFXVersion(?:>|=\")\s*([^<\"]{1,40})")
_XMP_READ_LIMIT = 1024 * 1024


def open_pdf(path: Path) -> tuple[pikepdf.Pdf | None, list[Finding]]:
    """The opened PDF (None when it cannot be read) and what opening it found."""
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError:
        return None, [Finding("encrypted", ERROR, {"kind": "password"})]
    except (pikepdf.PdfError, RuntimeError, ValueError) as exc:
        return None, [Finding("damaged", ERROR, {"kind": "unreadable", "detail": _short(exc)})]
    findings = []
    if pdf.is_encrypted:
        if pdf.allow.print_highres:
            findings.append(Finding("encrypted", WARNING, {"kind": "restrictions"}))
        else:
            findings.append(Finding("encrypted", ERROR, {"kind": "no_printing"}))
    return pdf, findings


def undecodable_streams(pdf: pikepdf.Pdf) -> list[str]:
    """Decode every stream but images (Flate, LZW, ASCII, RunLength); what went wrong."""
    problems = []
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get("/Subtype") == pikepdf.Name.Image:
            continue
        try:
            obj.read_bytes(pikepdf.StreamDecodeLevel.generalized)
        except pikepdf.PdfError as exc:
            problems.append(_short(exc))  # qpdf's message names the object and offset
        problems += pdf.get_warnings()
    return problems


def repair_finding(
    warnings: list[str], unreadable_pages: list[int], bad_streams: list[str]
) -> Finding | None:
    """``damaged``: an error for pages or streams that cannot be read, a warning when qpdf
    repaired the file."""
    if unreadable_pages:
        params = {"kind": "page_content", "pages": page_ranges(unreadable_pages)}
        return Finding("damaged", ERROR, params | {"problems": warnings[:MAX_PROBLEMS]})
    if bad_streams:
        params = {"kind": "stream_data", "problems": bad_streams[:MAX_PROBLEMS]}
        return Finding("damaged", ERROR, params)
    if warnings:
        return Finding(
            "damaged", WARNING, {"kind": "repaired", "problems": warnings[:MAX_PROBLEMS]}
        )
    return None


def output_intent_finding(pdf: pikepdf.Pdf, required: bool) -> Finding:
    """The PDF/X output intent (version, output condition), or a note that there is none."""
    intents = pdf.Root.get("/OutputIntents")
    condition = None
    if isinstance(intents, pikepdf.Array):
        for intent in list(intents)[:16]:
            if isinstance(intent, pikepdf.Dictionary) and intent.get("/S") == "/GTS_PDFX":
                identifier = intent.get("/OutputConditionIdentifier") or intent.get("/Info")
                condition = str(identifier) if identifier is not None else ""
                break
    if condition is None:
        return Finding("no_output_intent", WARNING if required else INFO, {})
    return Finding(
        "pdfx_output_intent", INFO, {"version": _pdfx_version(pdf), "condition": condition}
    )


def _pdfx_version(pdf: pikepdf.Pdf) -> str:
    """GTS_PDFXVersion from the document info, else from the XMP metadata; "" if neither."""
    version = pdf.trailer.get("/Info", pikepdf.Dictionary()).get("/GTS_PDFXVersion")
    if version is not None:
        return str(version)
    metadata = pdf.Root.get("/Metadata")
    if isinstance(metadata, pikepdf.Stream):
        try:
            found = _PDFX_VERSION.search(metadata.read_bytes()[:_XMP_READ_LIMIT])
        except pikepdf.PdfError:
            return ""
        if found:
            return found.group(1).decode("utf-8", "replace").strip()
    return ""


def document_javascript(pdf: pikepdf.Pdf) -> bool:
    """JavaScript that runs for the document: /OpenAction, /AA, or the /Names JavaScript tree."""
    root = pdf.Root
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
        return True
    return _is_javascript(root.get("/OpenAction")) or _additional_actions(root.get("/AA"))


def page_javascript(page: pikepdf.Page) -> bool:
    """JavaScript run by the page (/AA) or by one of its annotations (/A, /AA)."""
    if _additional_actions(page.obj.get("/AA")):
        return True
    annotations = page.obj.get("/Annots")
    if not isinstance(annotations, pikepdf.Array):
        return False
    for annotation in list(annotations)[:1000]:
        if isinstance(annotation, pikepdf.Dictionary) and (
            _is_javascript(annotation.get("/A")) or _additional_actions(annotation.get("/AA"))
        ):
            return True
    return False


def _additional_actions(actions: object) -> bool:
    if not isinstance(actions, pikepdf.Dictionary):
        return False
    return any(_is_javascript(actions.get(key)) for key in list(actions.keys())[:32])


def _is_javascript(action: object, depth: int = 0) -> bool:
    """An action dictionary that is, or chains (/Next) to, a JavaScript action."""
    if depth > 8 or not isinstance(action, pikepdf.Dictionary):
        return False
    if action.get("/S") == "/JavaScript":
        return True
    follow = action.get("/Next")
    if isinstance(follow, pikepdf.Array):
        return any(_is_javascript(item, depth + 1) for item in list(follow)[:16])
    return _is_javascript(follow, depth + 1)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
