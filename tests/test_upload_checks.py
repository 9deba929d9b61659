"""File-type rules on customers' uploads: refused by name before the upload, by the first
bytes while the first chunk streams in, ZIP bombs once complete; messages in the customer's
language; files the shop places itself are not restricted."""

from __future__ import annotations

import io
import json
import re

import pytest
from order_helpers import CHUNK_TYPE, TUS, all_files, announce, upload
from portal_helpers import SignedIn, signed_in_customer
from print_data_helpers import image_bytes, print_pdf, signed_in_staff, zip_bomb, zip_bytes

from shared.files.acceptance import refused_extensions
from shared.files.filetypes import HEAD_BYTES
from shared.files.folders import FOLDER_FINAL
from shared.models import OrderFile

GERMAN = {"Accept-Language": "de"}


@pytest.fixture
def ini_overrides(request, clamd) -> dict[str, dict[str, object]]:
    """The test clamd, plus what a test asks for with ``indirect`` parametrisation."""
    clamav = {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}
    return {"clamav": clamav} | getattr(request, "param", {})


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


def patch(client, customer, location: str, offset: int, data: bytes, **headers):
    headers = TUS | customer.headers | {"Upload-Offset": str(offset)} | headers
    return client.patch(location, data=data, headers=headers, content_type=CHUNK_TYPE)


def created(client, customer, name: str, size: int, **headers) -> str:
    response = announce(client, customer.headers | headers, "A1", name, size)
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def test_a_name_that_says_an_unaccepted_type_is_refused_before_the_upload(
    client, customer, settings
):
    response = announce(client, customer.headers | GERMAN, "A1", "Angebot.docx", 5000)

    assert response.status_code == 415
    assert response.json["error"] == (
        "Dateien vom Typ Office-Dokument werden nicht angenommen. "
        "Erlaubt sind: PDF, TIFF, JPEG, PNG, EPS, Illustrator (AI), ZIP."
    )
    assert OrderFile.select().count() == 0
    assert all_files(settings.storage.staging_root) == []


def test_an_indesign_document_is_asked_for_as_a_package(client, customer):
    response = announce(client, customer.headers, "A1", "Katalog.indd", 5000)
    assert response.status_code == 415
    assert "packaged as a ZIP" in response.json["error"]


def test_content_nobody_recognises_is_refused_after_the_first_bytes(client, customer, settings):
    data = b"GIF89a" + bytes(range(256)) * 400  # a GIF called .pdf
    location = created(client, customer, "flyer.pdf", len(data), **GERMAN)

    response = patch(client, customer, location, 0, data, **GERMAN)

    assert response.status_code == 415
    assert response.json["error"].startswith("Dateien vom Typ GIF werden nicht angenommen.")
    assert OrderFile.select().count() == 0, "the refused upload is cancelled"
    assert all_files(settings.storage.staging_root) == [], "its staging bytes are removed"


def test_the_decision_waits_for_enough_bytes_across_requests(client, customer, settings):
    data = b"\x7fELF" + bytes(HEAD_BYTES * 2)  # a program
    location = created(client, customer, "flyer", len(data))

    first = patch(client, customer, location, 0, data[:100])
    assert first.status_code == 204, "100 bytes decide nothing yet"
    assert first.headers["Upload-Offset"] == "100"
    second = patch(client, customer, location, 100, data[100:])

    assert second.status_code == 415
    assert "program files are not accepted" in second.json["error"]
    assert OrderFile.select().count() == 0
    assert all_files(settings.storage.staging_root) == []


def test_content_wins_over_the_name(client, customer, settings, ini_overrides):
    jpeg = image_bytes("JPEG", "RGB")
    file = upload(client, customer.headers, "A1", "flyer.pdf", jpeg)
    assert file.state == OrderFile.STATE_CLEAN
    assert OrderFile.get_by_id(file.id).file_type == "jpeg"


@pytest.mark.parametrize("ini_overrides", [{"files": {"accepted_types": "pdf"}}], indirect=True)
def test_only_the_configured_types_are_accepted(client, customer, settings):
    jpeg = image_bytes("JPEG", "RGB")
    location = created(client, customer, "flyer.pdf", len(jpeg))
    response = patch(client, customer, location, 0, jpeg)
    assert response.status_code == 415
    assert response.json["error"] == "JPEG files are not accepted. Accepted are: PDF."
    assert announce(client, customer.headers, "A1", "bild.tif", 10).status_code == 415
    assert upload(client, customer.headers, "A1", "druck.pdf", print_pdf()).state == "clean"


def test_a_refused_first_chunk_writes_nothing_to_staging(client, customer, settings):
    data = b"MZ" + bytes(5 * 1024 * 1024)  # a Windows program, 5 MiB in one request
    location = created(client, customer, "setup.pdf", len(data))

    response = patch(client, customer, location, 0, data)

    assert response.status_code == 415
    assert all_files(settings.storage.staging_root) == []


def test_a_zip_is_listed_and_passes(client, customer):
    data = zip_bytes({"Druckdaten/Umschlag.pdf": print_pdf(), "Druckdaten/Innen.pdf": b"x" * 9})
    file = upload(client, customer.headers, "A1", "Paket.zip", data)
    assert file.state == OrderFile.STATE_CLEAN
    file = OrderFile.get_by_id(file.id)
    assert file.preflight_status == OrderFile.PREFLIGHT_NOT_CHECKED
    html = client.get("/orders/A1/files").text
    assert "2 files in the ZIP" in html
    assert "Druckdaten/Umschlag.pdf" in html
    assert "not checked automatically" in html


def test_a_zip_bomb_is_refused_once_complete(client, customer, settings, clamd):
    data = zip_bomb()
    location = created(client, customer, "daten.zip", len(data), **GERMAN)

    response = patch(client, customer, location, 0, data, **GERMAN)

    assert response.status_code == 422
    assert "als mögliche ZIP-Bombe abgelehnt" in response.json["error"]
    assert OrderFile.select().count() == 0
    assert all_files(settings.storage.staging_root) == []
    assert all_files(settings.storage.order_root) == []


def test_the_plain_form_refuses_with_the_same_message(client, customer, settings):
    form = {
        "csrf_token": customer.csrf_token,
        "file": (io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(3000)), "flyer.pdf"),
    }
    response = client.post("/orders/A1/files", data=form, follow_redirects=True)
    assert "Office document files are not accepted." in response.text
    assert OrderFile.select().count() == 0


def test_the_page_gives_the_browser_the_same_refusals_by_name(client, customer, settings, app):
    html = client.get("/orders/A1", headers=GERMAN).text
    attribute = re.search(r"data-refused-extensions='([^']*)'", html).group(1)
    refused = json.loads(attribute)
    assert refused[".docx"] == refused_extensions(settings, "de")[".docx"]
    assert refused[".docx"].startswith("Dateien vom Typ Office-Dokument")
    assert ".pdf" not in refused and ".zip" not in refused and ".tif" not in refused


def test_files_placed_by_staff_are_not_restricted(app, client, customer, settings):
    staff = signed_in_staff(app, settings)
    offer = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(3000)
    file = upload(staff.client, staff.headers, "A1", "Angebot.doc", offer, folder=FOLDER_FINAL)
    assert file.state == OrderFile.STATE_CLEAN
    page = staff.client.get("/staff/orders/A1").text
    assert "data-refused-extensions='{}'" in page
