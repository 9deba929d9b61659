"""The preflight in the product: after the scan in the worker, stored on the file, shown on
the customer's row and the staff pages in the viewer's language, previews served only to
those who may download the file, and hostile files through the real upload → scan →
preflight path."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from order_helpers import HTMX, PDF, foreign_file, row_of, upload
from portal_helpers import SignedIn, customer_with_order, signed_in_customer
from print_data_helpers import (
    broken_xref_pdf,
    deeply_nested_pdf,
    encrypted_pdf,
    eps_bytes,
    huge_image_pdf,
    huge_tiff,
    image_bytes,
    javascript_pdf,
    print_pdf,
    signed_in_staff,
    ten_thousand_pages,
)

from shared.clock import utcnow
from shared.db import write_transaction
from shared.files.folders import FOLDER_IN_PROGRESS
from shared.files.preflighting import (
    TASK_GRACE,
    files_to_preflight,
    preflight_file,
    preflight_record,
    preview_dir,
    stored_preflight,
)
from shared.files.retention import delete_expired
from shared.models import Customer, OrderFile

GERMAN = {"Accept-Language": "de"}


@pytest.fixture
def ini_overrides(request, clamd) -> dict[str, dict[str, object]]:
    """The test clamd, plus what a test asks for with ``indirect`` parametrisation."""
    clamav = {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}
    return {"clamav": clamav} | getattr(request, "param", {})


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


def fresh(file: OrderFile) -> OrderFile:
    return OrderFile.get_by_id(file.id)


# --- after the scan, in the worker ---------------------------------------------------------


def test_a_pdf_without_bleed_gets_a_warning_and_a_thumbnail_right_after_the_scan(
    client, customer, settings
):
    file = fresh(
        upload(client, customer.headers, "A1", "Flyer ohne Beschnitt.pdf", print_pdf(bleed_mm=None))
    )

    assert file.state == OrderFile.STATE_CLEAN
    assert file.preflight_status == OrderFile.PREFLIGHT_WARNINGS
    assert file.file_type == "pdf"
    stored = stored_preflight(file)
    assert stored.report.finding("bleed_missing").params["min_bleed_mm"] == 3.0
    assert (preview_dir(settings, file) / "thumbnail.png").is_file()

    row = row_of(client.get("/orders/A1/files", headers=GERMAN).text, file)
    assert 'data-preflight="warnings"' in row
    assert "Kein Beschnitt auf Seite 1. Bitte legen Sie an jeder Seite mindestens 3,0 mm" in row
    assert "Druckdaten: bitte prüfen" in row
    assert f'src="/orders/A1/files/{file.id}/thumbnail.png"' in row
    assert "1 Seite" in row and "210 × 297 mm" in row


def test_a_print_ready_pdf_is_ok_and_says_its_size_in_english(client, customer):
    file = upload(client, customer.headers, "A1", "druck.pdf", print_pdf(pages=2))
    row = row_of(client.get("/orders/A1/files").text, fresh(file))
    assert "print data: OK" in row
    assert "2 pages" in row and "210 × 297 mm, bleed 3 mm" in row
    assert "PDF/X" not in row, "notes are for staff; customers see what to act on"


def test_the_row_polls_until_the_preflight_result_is_there(client, customer, settings):
    file = upload(client, customer.headers, "A1", "flyer.pdf", print_pdf())
    with write_transaction():
        OrderFile.update(
            preflight_status=OrderFile.PREFLIGHT_PENDING,
            preflight_report="",
            preflight_started_at=None,
        ).where(OrderFile.id == file.id).execute()
    html = client.get("/orders/A1/files").text
    assert "every 2s" in html
    assert "checking the print data" in row_of(html, file)

    preflight_file(settings, file.id)

    html = client.get("/orders/A1/files").text
    assert "every 2s" not in html
    assert "print data: OK" in row_of(html, file)


def test_the_sweep_takes_files_whose_task_was_lost(client, customer, settings):
    file = upload(client, customer.headers, "A1", "flyer.pdf", print_pdf())
    with write_transaction():
        OrderFile.update(
            preflight_status=OrderFile.PREFLIGHT_PENDING, preflight_started_at=None
        ).where(OrderFile.id == file.id).execute()
    assert files_to_preflight(settings) == [], "its own task has a while first"
    later = utcnow() + TASK_GRACE + timedelta(seconds=1)
    assert files_to_preflight(settings, later) == [file.id]
    with write_transaction():
        OrderFile.update(preflight_started_at=utcnow()).where(OrderFile.id == file.id).execute()
    assert files_to_preflight(settings, later) == [], "a worker is on it"
    stale = utcnow() + timedelta(seconds=settings.preflight.wall_seconds + 61)
    assert files_to_preflight(settings, stale) == [file.id], "that worker stopped"


def test_images_get_a_thumbnail_and_eps_is_not_checked(client, customer, settings):
    tiff = fresh(upload(client, customer.headers, "A1", "bild.tif", image_bytes("TIFF")))
    png = fresh(
        upload(client, customer.headers, "A1", "logo.png", image_bytes("PNG", "RGB", dpi=72))
    )
    eps = fresh(upload(client, customer.headers, "A1", "logo.eps", eps_bytes()))

    assert tiff.preflight_status == OrderFile.PREFLIGHT_OK
    assert (preview_dir(settings, tiff) / "thumbnail.png").is_file()
    assert png.preflight_status == OrderFile.PREFLIGHT_WARNINGS
    assert stored_preflight(png).report.codes() == ["image_low_resolution", "rgb_colour"]
    assert eps.preflight_status == OrderFile.PREFLIGHT_NOT_CHECKED
    assert not preview_dir(settings, eps).exists()
    html = client.get("/orders/A1/files").text
    assert "EPS files are not checked automatically; prepress checks them." in row_of(html, eps)
    assert "thumbnail.png" not in row_of(html, eps)


def test_staff_see_notes_too_and_the_thumbnail(app, client, customer, settings):
    file = upload(client, customer.headers, "A1", "druck.pdf", print_pdf())
    staff = signed_in_staff(app, settings)
    row = row_of(staff.client.get("/staff/orders/A1").text, file)
    assert "The file has no PDF/X output condition (output intent)." in row
    assert f'src="/staff/orders/A1/files/{file.id}/thumbnail.png"' in row
    assert staff.client.get(f"/staff/orders/A1/files/{file.id}/thumbnail.png").status_code == 200


# --- previews ------------------------------------------------------------------------------


def test_previews_go_to_who_may_download_the_file(client, api, customer, settings):
    file = upload(client, customer.headers, "A1", "Katalog.pdf", print_pdf(pages=3))

    thumbnail = client.get(f"/orders/A1/files/{file.id}/thumbnail.png")
    assert thumbnail.status_code == 200
    assert thumbnail.mimetype == "image/png"
    assert thumbnail.data.startswith(b"\x89PNG")
    assert thumbnail.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in thumbnail.headers["Cache-Control"]
    assert "max-age=3600" in thumbnail.headers["Cache-Control"]

    page = client.get(f"/orders/A1/files/{file.id}/pages/3.png")
    assert page.status_code == 200 and page.mimetype == "image/png"
    assert (preview_dir(settings, file) / "page-00003-1200px.png").is_file(), "kept for next time"
    assert client.get(f"/orders/A1/files/{file.id}/pages/4.png").status_code == 404
    assert client.get(f"/orders/A1/files/{file.id}/pages/0.png").status_code == 404

    customer_with_order(api, "K2", "B1")
    other = foreign_file(settings)
    assert client.get(f"/orders/B1/files/{other.id}/thumbnail.png").status_code == 404
    assert client.get(f"/orders/A1/files/{other.id}/thumbnail.png").status_code == 404


def test_no_previews_of_rejected_or_unscanned_files(app, client, customer, settings, clamd):
    from clamd_helpers import EICAR

    rejected = upload(client, customer.headers, "A1", "virus.pdf", b"%PDF-1.4\n" + EICAR)
    assert rejected.state == OrderFile.STATE_REJECTED
    assert fresh(rejected).preflight_status == OrderFile.PREFLIGHT_NONE
    assert client.get(f"/orders/A1/files/{rejected.id}/thumbnail.png").status_code == 404
    staff = signed_in_staff(app, settings)
    assert staff.client.get(f"/staff/orders/A1/files/{rejected.id}/pages/1.png").status_code == 404

    size = clamd.limits.largest_scannable + 1
    data = print_pdf()
    held = upload(client, customer.headers, "A1", "riesig.pdf", data + bytes(size - len(data)))
    assert held.state == OrderFile.STATE_TOO_LARGE
    response = staff.post(f"/staff/files/{held.id}/release", back="/staff/")
    assert response.status_code == 302
    released = fresh(held)
    assert released.state == OrderFile.STATE_CLEAN
    assert released.preflight_status == OrderFile.PREFLIGHT_NONE, "never scanned: no preflight"
    assert client.get(f"/orders/A1/files/{held.id}/thumbnail.png").status_code == 404
    assert staff.client.get(f"/staff/orders/A1/files/{held.id}/pages/1.png").status_code == 404


def test_retention_removes_the_previews(client, customer, settings):
    file = upload(client, customer.headers, "A1", "flyer.pdf", print_pdf())
    assert preview_dir(settings, file).is_dir()
    with write_transaction():
        Customer.update(hotfolder_delete_after_days=1).execute()
    delete_expired(settings, utcnow() + timedelta(days=2))
    assert not preview_dir(settings, file).exists()


# --- what the order expects ------------------------------------------------------------------


def test_the_orders_trim_size_and_page_count_are_checked(api, client, customer, settings):
    order = {"project_no": "A2", "customer_no": "K1", "trim_size": "A5", "page_count": 4}
    response = api.post("/orders", order)
    assert response.status_code == 201, response.text
    assert (response.json["trim_size"], response.json["page_count"]) == ("148 x 210", 4)
    file = fresh(upload(client, customer.headers, "A2", "flyer.pdf", print_pdf(pages=2)))
    assert stored_preflight(file).report.codes()[:2] == [
        "page_count_mismatch",
        "trim_size_mismatch",
    ]
    row = row_of(client.get("/orders/A2/files", headers=GERMAN).text, file)
    assert "Die Datei hat 2 Seiten, bestellt sind 4." in row

    response = api.patch("/orders/A2", {"trim_size": "210 x 297", "page_count": 2})
    assert response.status_code == 200, response.text
    file = fresh(file)
    assert file.preflight_status == OrderFile.PREFLIGHT_OK, "preflighted again at once"
    assert "page_count_mismatch" not in stored_preflight(file).report.codes()


# --- the workflow's view -----------------------------------------------------------------------


def test_the_preflight_record_for_the_workflow(api, client, customer):
    file = fresh(upload(client, customer.headers, "A1", "flyer.pdf", print_pdf(bleed_mm=None)))
    record = preflight_record(file, "en")
    assert record["status"] == "warnings"
    assert record["page_count"] == 1
    assert record["page_sizes"][0]["trim_mm"] == [210.0, 297.0]
    bleed = next(f for f in record["findings"] if f["code"] == "bleed_missing")
    assert bleed["message"].startswith("No bleed on page 1.")
    listed = api.get("/orders/A1/files").json["files"]
    assert listed[0]["preflight"]["status"] == "warnings"
    assert listed[0]["sha256"] == file.sha256
    english = api.get("/orders/A1/files?lang=en").json["files"][0]["preflight"]["findings"]
    assert any(f["message"].startswith("No bleed on page 1.") for f in english)
    german = api.get("/orders/A1/files").json["files"][0]["preflight"]["findings"]
    assert any(f["message"].startswith("Kein Beschnitt auf Seite 1.") for f in german)
    assert api.get("/orders/A1/files?lang=xx").status_code == 400


# --- hostile files, through upload → scan → preflight ---------------------------------------


HOSTILE = {
    "broken xref": (broken_xref_pdf, "warnings", "damaged"),
    # clamd cannot look into it (AlertEncrypted yes): rejected by the scan, never preflighted.
    "encrypted": (encrypted_pdf, None, "Heuristics.Encrypted"),
    "javascript": (javascript_pdf, "warnings", "javascript"),
    "image 50000 x 50000": (huge_image_pdf, "errors", "image_too_large"),
    "tiff declaring 50000 x 50000": (huge_tiff, "errors", "image_too_large"),
    "deeply nested": (deeply_nested_pdf, "errors", "damaged"),
    "10,000 pages": (ten_thousand_pages, "ok", None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_end_as_a_result_and_harm_nothing(client, customer, settings, tmp_path, name):
    make, status, code = HOSTILE[name]
    data = make(tmp_path) if make.__code__.co_argcount else make()
    suffix = ".tif" if "tiff" in name else ".pdf"
    file = fresh(upload(client, customer.headers, "A1", f"datei{suffix}", data))
    if status is None:
        assert file.state == OrderFile.STATE_REJECTED and code in file.signature
        assert file.preflight_status == OrderFile.PREFLIGHT_NONE
    else:
        assert file.state == OrderFile.STATE_CLEAN
        assert file.preflight_status == status
    if status and code:
        assert code in stored_preflight(file).report.codes()
    assert client.get("/orders/A1/files").status_code == 200
    after = fresh(upload(client, customer.headers, "A1", "danach.pdf", print_pdf()))
    assert after.preflight_status == OrderFile.PREFLIGHT_OK, "the next file is checked as usual"


@pytest.mark.parametrize("ini_overrides", [{"preflight": {"memory_limit": "8M"}}], indirect=True)
def test_a_preflight_process_that_dies_is_shown_as_failed(client, customer, settings):
    """8 MiB of address space: the sandboxed interpreter cannot even start."""
    file = fresh(upload(client, customer.headers, "A1", "flyer.pdf", print_pdf()))
    assert file.state == OrderFile.STATE_CLEAN
    assert file.preflight_status == OrderFile.PREFLIGHT_FAILED
    row = row_of(client.get("/orders/A1/files", headers=GERMAN).text, file)
    assert "Prüfung fehlgeschlagen" in row
    assert "Die Druckvorstufe sieht sich die Datei an." in row
    assert client.get(f"/orders/A1/files/{file.id}/thumbnail.png").status_code == 404


@pytest.mark.parametrize("ini_overrides", [{"preflight": {"max_pages": "5"}}], indirect=True)
def test_more_pages_than_the_limit_fail_the_preflight_in_words(client, customer):
    file = fresh(upload(client, customer.headers, "A1", "buch.pdf", print_pdf(pages=6)))
    assert file.preflight_status == OrderFile.PREFLIGHT_FAILED
    row = row_of(client.get("/orders/A1/files").text, file)
    assert "The file has 6 pages; at most 5 are checked automatically." in row


def test_a_file_gone_before_its_preflight_is_failed_not_a_crash(client, customer, settings):
    file = fresh(upload(client, customer.headers, "A1", "flyer.pdf", PDF))
    with write_transaction():
        OrderFile.update(
            preflight_status=OrderFile.PREFLIGHT_PENDING, preflight_started_at=None
        ).where(OrderFile.id == file.id).execute()
    (settings.storage.order_root / "K1" / "A1" / file.folder / file.stored_name).unlink()
    checked = preflight_file(settings, file.id)
    assert checked.preflight_status == OrderFile.PREFLIGHT_FAILED
    assert (
        json.loads(checked.preflight_report)["report"]["findings"][0]["params"]["kind"] == "error"
    )


def test_staff_files_are_preflighted_too(app, client, customer, settings):
    staff = signed_in_staff(app, settings)
    file = upload(
        staff.client, staff.headers, "A1", "Korrektur.pdf", print_pdf(), folder=FOLDER_IN_PROGRESS
    )
    assert fresh(file).preflight_status == OrderFile.PREFLIGHT_OK
    html = client.get("/orders/A1/files", headers=HTMX).text
    assert f"/orders/A1/files/{file.id}/thumbnail.png" in row_of(html, file)
