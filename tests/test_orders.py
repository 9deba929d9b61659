"""The customer's order pages: list, search and paging, folders, live file states, downloads."""

from __future__ import annotations

import io
import re

import pytest
from clamd_helpers import EICAR
from order_helpers import (
    CHUNK_TYPE,
    HTMX,
    PDF,
    TUS,
    add_order,
    all_files,
    announce,
    counted_statements,
    download_url,
    files_trigger,
    folder_files,
    folder_section,
    foreign_file,
    responses_sent,
    row_of,
    upload,
    without_csrf,
)
from portal_helpers import SignedIn, customer_with_order, signed_in_customer

from shared.accounts.logins import set_login_state
from shared.db import write_transaction
from shared.files.folders import FOLDER_INCOMING, ORDER_FOLDERS, order_dir
from shared.files.intake import files_to_scan, make_scanner, scan_received
from shared.files.preflighting import preflight_file
from shared.models import FileEvent, OrderFile, PortalLogin


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    """The app scans with the test session's real clamd."""
    return {"clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}}


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


# The order list


def test_the_list_shows_number_job_description_due_date_and_state(client, api, customer):
    add_order(api, "A2", job_description="Flyer A5, 4/4-farbig", due_date="2026-12-31")
    upload(client, customer.headers, "A2", "flyer.pdf", PDF)

    html = client.get("/orders").text

    row = re.search(r"<tr>\s*<td><a href=\"/orders/A2\">A2</a>.*?</tr>", html, re.S).group(0)
    assert "Flyer A5, 4/4-farbig" in row
    assert "Dec 31, 2026" in row
    assert "Data received" in row
    assert "Waiting for data" in re.search(r'href="/orders/A1".*?</tr>', html, re.S).group(0)


def test_search_answers_the_page_or_only_the_list_for_htmx(client, api, customer):
    add_order(api, "A2", job_description="Visitenkarten Müller")
    add_order(api, "A3", job_description="Broschüre Jahresbericht")

    page = client.get("/orders", query_string={"q": "visitenkarten"})
    fragment = client.get("/orders", query_string={"q": "Jahresbericht"}, headers=HTMX)
    by_number = client.get("/orders", query_string={"q": "A1"}, headers=HTMX)
    nothing = client.get("/orders", query_string={"q": "Plakat"}, headers=HTMX)

    assert page.status_code == 200
    assert "<html" in page.text and 'id="order-list"' in page.text
    assert "Visitenkarten Müller" in page.text and "Jahresbericht" not in page.text
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="order-list">')
    assert "Broschüre Jahresbericht" in fragment.text and "Visitenkarten" not in fragment.text
    assert 'href="/orders/A1"' in by_number.text and "/orders/A2" not in by_number.text
    assert "No order matches “Plakat”." in nothing.text
    for response in (page, fragment):
        assert "HX-Request" in response.headers["Vary"]


def test_a_history_restore_gets_the_whole_page(client, customer):
    # After a cache miss htmx puts the answer into <body>: a bare list would lose the page.
    restore = HTMX | {"HX-History-Restore-Request": "true"}

    response = client.get("/orders", query_string={"q": "A1"}, headers=restore)

    assert "<html" in response.text
    assert 'id="order-search"' in response.text and 'href="/orders/A1"' in response.text


def test_the_search_field_searches_actively_with_htmx(client, customer):
    html = client.get("/orders").text

    field = re.search(r'<input id="order-search"[^>]*>', html, re.S).group(0)
    assert 'hx-get="/orders"' in field
    assert 'hx-trigger="input changed delay:300ms, search"' in field
    assert 'hx-target="#order-list"' in field
    assert 'name="q"' in field


def test_paging_25_per_page_and_out_of_range_pages_clamp(client, api, customer):
    for number in range(2, 31):  # A1 exists already: 30 orders
        add_order(api, f"A{number}")

    first = client.get("/orders").text
    second = client.get("/orders", query_string={"page": 2}, headers=HTMX).text
    beyond = client.get("/orders", query_string={"page": 99}).text
    before = client.get("/orders", query_string={"page": 0}).text
    nonsense = client.get("/orders", query_string={"page": "x"}).text

    def listed(html: str) -> list[str]:
        return re.findall(r'<a href="/orders/(A\d+)">', html)

    assert listed(first) == [f"A{number}" for number in range(30, 5, -1)]
    assert "Page 1 of 2" in first
    assert 'hx-get="/orders?q=&amp;page=2"' in first
    assert listed(second) == ["A5", "A4", "A3", "A2", "A1"]
    assert "Page 2 of 2" in second and "<html" not in second
    assert listed(beyond) == listed(second)
    assert listed(before) == listed(nonsense) == listed(first)


def test_order_pages_run_as_many_statements_for_1_order_as_for_30(client, api, customer):
    # Not a timing: a statement per row (N+1) would show here as a count that grows.
    client.get("/orders")  # first request: the session is loaded, translations read
    with counted_statements() as one_order:
        client.get("/orders")
        client.get("/orders/A1")
    for number in range(2, 31):
        add_order(api, f"A{number}")
    with counted_statements() as thirty_orders:
        client.get("/orders")
        client.get("/orders/A30")

    assert len(one_order) == len(thirty_orders)


def test_another_customers_order_answers_like_a_missing_one(client, api, customer, settings):
    customer_with_order(api, "K2", "B1")
    theirs = foreign_file(settings)
    mine = upload(client, customer.headers, "A1", "meins.pdf", PDF)

    pairs = [
        ("/orders/B1", "/orders/NOPE"),
        ("/orders/B1/files", "/orders/NOPE/files"),
        (download_url(theirs), f"/orders/NOPE/files/{theirs.id}"),
        # Their file under my order number is no more found than a missing file id.
        (f"/orders/A1/files/{theirs.id}", f"/orders/A1/files/{mine.id + 1000}"),
    ]
    for foreign, missing in pairs:
        answer, reference = client.get(foreign), client.get(missing)

        assert answer.status_code == reference.status_code == 404, foreign
        assert without_csrf(answer.text) == without_csrf(reference.text)
        assert "fremd.pdf" not in answer.text
    assert client.get(download_url(mine)).status_code == 200


# One order: folders, upload area, live file list


def test_the_order_page_shows_three_folders_and_uploads_only_into_eingehend(client, customer):
    html = client.get("/orders/A1").text

    headings = re.findall(r'<h2 id="folder-\d">([^<]+)</h2>', html)
    assert headings == list(ORDER_FOLDERS)
    # The upload area, and the message form's attachment area: both into Eingehend only.
    assert html.count('class="upload"') == 2
    assert '<section id="upload" class="upload"' in html
    assert '<section id="message-upload" class="upload"' in html
    assert "Upload into Eingehend" in html
    endpoints = re.findall(r'data-endpoint="([^"]*)"', html)
    assert endpoints == ["/orders/A1/uploads", "/orders/A1/uploads"]


def test_the_file_list_polls_only_while_a_file_is_open(client, customer, settings):
    def polls() -> bool:
        response = client.get("/orders/A1/files", headers=HTMX)
        assert response.status_code == 200
        assert "<html" not in response.text
        return "every 2s" in files_trigger(response.text)

    assert not polls()
    response = announce(client, customer.headers, "A1", "flyer.pdf", len(PDF))
    location = response.headers["Location"]
    html = client.get("/orders/A1/files").text
    assert "uploading 0 %" in html
    assert polls()
    assert "every 2s" in files_trigger(client.get("/orders/A1").text)

    client.patch(
        location,
        data=PDF,
        headers=TUS | customer.headers | {"Upload-Offset": "0"},
        content_type=CHUNK_TYPE,
    )

    assert ">clean<" in client.get("/orders/A1/files").text
    assert not polls()


def test_a_clean_upload_lands_in_eingehend_and_is_listed(client, customer, settings):
    file = upload(client, customer.headers, "A1", "Flyer A5.pdf", PDF)

    assert file.state == OrderFile.STATE_CLEAN
    assert folder_files(settings, FOLDER_INCOMING) == ["Flyer A5.pdf"]
    stored = order_dir(settings.storage.order_root, "K1", "A1") / FOLDER_INCOMING / "Flyer A5.pdf"
    assert stored.read_bytes() == PDF
    assert all_files(settings.storage.staging_root) == []
    row = row_of(folder_section(client.get("/orders/A1/files").text, FOLDER_INCOMING), file)
    assert "Flyer A5.pdf" in row
    assert "2.0 KB" in row
    assert re.search(r"\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2}", row), "upload time"
    assert ">clean<" in row
    assert f'href="{download_url(file)}"' in row


def test_an_infected_upload_is_rejected_with_its_signature(client, customer, settings):
    file = upload(client, customer.headers, "A1", "rechnung.pdf", b"%PDF-1.4\n" + EICAR)

    assert file.state == OrderFile.STATE_REJECTED
    assert "EICAR" in file.signature.upper()
    assert folder_files(settings, FOLDER_INCOMING) == []
    row = row_of(client.get("/orders/A1/files").text, file)
    assert f"rejected: {file.signature}" in row
    assert "href=" not in row
    event = FileEvent.get(FileEvent.file == file)
    assert (event.kind, event.detail) == ("rejected", file.signature)
    assert client.get(download_url(file)).status_code == 404


def test_with_clamd_down_the_file_waits_and_the_sweep_scans_it_later(
    client, customer, settings, clamd
):
    with clamd.stopped():
        file = upload(client, customer.headers, "A1", "flyer.pdf", PDF)

        assert file.state == OrderFile.STATE_WAITING
        html = client.get("/orders/A1/files").text
        assert "waiting for virus scan" in row_of(html, file)
        assert "every 2s" in html
        assert folder_files(settings, FOLDER_INCOMING) == []
        assert client.get(download_url(file)).status_code == 404
        assert files_to_scan() == [file.id]

    for file_id in files_to_scan():
        scan_received(settings, make_scanner(settings), file_id)

    html = client.get("/orders/A1/files").text
    assert ">clean<" in row_of(html, file)
    assert "every 2s" in html, "the row keeps polling until the preflight result is there"
    preflight_file(settings, file.id)
    html = client.get("/orders/A1/files").text
    assert "every 2s" not in html
    assert folder_files(settings, FOLDER_INCOMING) == ["flyer.pdf"]
    assert files_to_scan() == []


# Downloads


def test_download_streams_with_a_unicode_file_name(app, client, customer):
    file = upload(client, customer.headers, "A1", "Broschüre €.pdf", PDF)

    with responses_sent(app) as sent:
        response = client.get(download_url(file))

    assert response.status_code == 200
    assert sent[0].direct_passthrough and sent[0].is_streamed, "the file is not read into memory"
    assert response.data == PDF
    assert response.headers["Content-Length"] == str(len(PDF))
    assert response.headers["Accept-Ranges"] == "bytes"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Brosch%C3%BCre%20%E2%82%AC.pdf" in disposition
    assert disposition.isascii()


def test_download_honours_a_range(app, client, customer):
    file = upload(client, customer.headers, "A1", "flyer.pdf", PDF)

    with responses_sent(app) as sent:
        response = client.get(download_url(file), headers={"Range": "bytes=10-19"})

    assert response.status_code == 206
    assert sent[0].direct_passthrough and sent[0].is_streamed
    assert response.data == PDF[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(PDF)}"
    assert response.headers["Content-Length"] == "10"


def test_only_clean_files_can_be_downloaded(client, customer, settings, clamd):
    uploading = announce(client, customer.headers, "A1", "halb.pdf", 100)
    assert uploading.status_code == 201
    rejected = upload(client, customer.headers, "A1", "virus.pdf", b"%PDF-1.4\n" + EICAR)
    with clamd.stopped():
        waiting = upload(client, customer.headers, "A1", "wartet.pdf", PDF)
    half = OrderFile.get(OrderFile.display_name == "halb.pdf")

    for file in (half, rejected, waiting):
        assert client.get(download_url(file)).status_code == 404, file.state


def test_signed_out_browsers_are_sent_to_sign_in(app, client, customer):
    file = upload(client, customer.headers, "A1", "flyer.pdf", PDF)
    stranger = app.test_client()

    for path in ("/orders", "/orders/A1", "/orders/A1/files", download_url(file)):
        response = stranger.get(path)

        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")


def test_an_inactive_login_can_neither_upload_nor_download(client, customer, settings):
    file = upload(client, customer.headers, "A1", "flyer.pdf", PDF)
    with write_transaction():
        login = PortalLogin.get(PortalLogin.username == "k1")
        set_login_state(settings, login, PortalLogin.STATE_INACTIVE)

    refused = announce(client, customer.headers, "A1", "neu.pdf", len(PDF))
    download = client.get(download_url(file))

    assert refused.status_code in (401, 403)
    assert OrderFile.select().count() == 1
    assert all_files(settings.storage.staging_root) == []
    assert folder_files(settings, FOLDER_INCOMING) == ["flyer.pdf"]
    assert download.status_code == 302
    assert download.headers["Location"].startswith("/login")


def test_without_javascript_a_plain_form_uploads_one_small_file(client, customer, settings):
    page = client.get("/orders/A1").text
    assert 'enctype="multipart/form-data"' in page and 'action="/orders/A1/files"' in page

    data = {"csrf_token": customer.csrf_token, "file": (io.BytesIO(PDF), "Flyer ohne JS.pdf")}
    response = client.post("/orders/A1/files", data=data, content_type="multipart/form-data")

    assert response.status_code == 302
    file = OrderFile.get(OrderFile.display_name == "Flyer ohne JS.pdf")
    assert file.state == OrderFile.STATE_CLEAN
    assert folder_files(settings, FOLDER_INCOMING) == ["Flyer ohne JS.pdf"]
    assert "virus scan follows" in client.get("/orders/A1").text


def test_plain_form_refusals_are_shown_and_write_nothing(client, customer, settings):
    empty = {"csrf_token": customer.csrf_token, "file": (io.BytesIO(b""), "leer.pdf")}
    client.post("/orders/A1/files", data=empty, content_type="multipart/form-data")
    assert "The file is empty." in client.get("/orders/A1").text
    no_csrf = {"file": (io.BytesIO(PDF), "x.pdf")}
    assert client.post("/orders/A1/files", data=no_csrf).status_code == 400
    assert OrderFile.select().count() == 0
    assert all_files(settings.storage.staging_root) == []
