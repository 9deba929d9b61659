"""Staff pages: sign-in, the scan backlog, held files, every order's folders, placing files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from clamd_helpers import EICAR
from conftest import csrf_from
from file_helpers import files_in
from flask.testing import FlaskClient
from mail_helpers import make_customer, make_file, make_order
from order_helpers import (
    HTMX,
    PDF,
    all_files,
    announce,
    counted_statements,
    download_url,
    folder_files,
    folder_section,
    row_of,
    upload,
)
from portal_helpers import (
    OPEN_REDIRECT_BYPASSES,
    PASSWORD,
    SignedIn,
    assert_stays_on_the_portal,
    customer_with_order,
    signed_in_customer,
)

from shared.accounts.staff import create_staff
from shared.files.backlog import OVERVIEW_ROWS
from shared.files.folders import FOLDER_FINAL, FOLDER_IN_PROGRESS, FOLDER_INCOMING, ORDER_FOLDERS
from shared.files.intake import quarantine_path
from shared.files.receiving import staging_path
from shared.models import FileEvent, Order, OrderFile, StaffUser
from shared.orders.listing import OVERVIEW_ORDERS
from shared.paging import PER_PAGE

STAFF_PASSWORD = "Kaffee-Druckmaschine-Montag-42"


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    """The app scans with the test session's real clamd."""
    return {"clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}}


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


def staff_sign_in(client: FlaskClient, username: str, password: str):
    token = csrf_from(client.get("/staff/login").text)
    form = {"username": username, "password": password, "csrf_token": token}
    return client.post("/staff/login", data=form)


@pytest.fixture
def staff(app, settings) -> StaffSession:
    user = create_staff(
        settings, "anna", "Anna Muster", "anna@testdruck.example", False, STAFF_PASSWORD
    )
    browser = app.test_client()
    response = staff_sign_in(browser, "anna", STAFF_PASSWORD)
    assert response.status_code == 302, response.text
    # Signing in starts a fresh session, and with it a fresh CSRF token.
    return StaffSession(browser, user, csrf_from(browser.get("/staff/").text))


@pytest.fixture
def customer(client, api, mailserver) -> SignedIn:
    return signed_in_customer(client, api, mailserver, "K1", "A1")


def held_file(client, customer: SignedIn, clamd, name: str = "riesig.tif") -> OrderFile:
    """An upload one byte over what the test clamd scans: held for staff."""
    size = clamd.limits.largest_scannable + 1
    tiff = b"II*\x00"  # starts like a TIFF: an accepted type
    file = upload(client, customer.headers, "A1", name, tiff + b"\0" * (size - len(tiff)))
    assert file.state == OrderFile.STATE_TOO_LARGE
    return file


def section(html: str, heading: str) -> str:
    """From the ``<h2>`` starting with ``heading`` to the next heading."""
    match = re.search(rf"<h2>{re.escape(heading)}.*?(?=<h[12][ >]|$)", html, re.S)
    assert match, f"no section {heading!r}"
    return match.group(0)


def listed_ids(html: str) -> list[int]:
    return [int(number) for number in re.findall(r'<tr id="file-(\d+)"', html)]


def order_a1() -> Order:
    return Order.get(Order.project_no == "A1")


def back_fields(html: str) -> set[str]:
    return set(re.findall(r'name="back" value="([^"]*)"', html))


# Signing in and out, and who may open what


def test_staff_sign_in_and_out(app, staff):
    assert staff.client.get("/staff/").status_code == 200
    assert staff.client.get("/").headers["Location"] == "/staff/"

    response = staff.post("/logout")

    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"
    response = staff.client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


@pytest.mark.parametrize(("username", "password"), [("anna", "wrong password"), ("bob", "x")])
def test_a_wrong_password_or_username_gets_the_same_generic_401(app, staff, username, password):
    browser = app.test_client()

    response = staff_sign_in(browser, username, password)

    assert response.status_code == 401
    assert "Username or password is not correct." in response.text
    assert browser.get("/staff/").status_code == 302


@pytest.mark.parametrize(
    ("typed", "status"), [("ANNA", 302), ("\uff21nna", 401), ("\u0430nna", 401)]
)
def test_staff_usernames_compare_like_customers(app, staff, typed, status):
    assert staff_sign_in(app.test_client(), typed, STAFF_PASSWORD).status_code == status


def test_a_customers_credentials_do_not_open_the_staff_pages(app, customer):
    browser = app.test_client()

    response = staff_sign_in(browser, customer.username, PASSWORD)

    assert response.status_code == 401
    assert browser.get("/staff/").status_code == 302


def test_a_customer_cannot_open_staff_pages(client, customer, staff, clamd):
    file = held_file(client, customer, clamd)

    for path in (
        "/staff/",
        "/staff/backlog/held",
        "/staff/hotfolder/",
        "/staff/orders/A1",
        f"/staff/orders/A1/files/{file.id}",
    ):
        response = client.get(path)

        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/staff/login?next=")
    response = client.post(f"/staff/files/{file.id}/release", headers=customer.headers)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")
    assert OrderFile.get_by_id(file.id).state == OrderFile.STATE_TOO_LARGE


def test_staff_cannot_open_customer_pages(client, customer, staff):
    file = upload(client, customer.headers, "A1", "flyer.pdf", PDF)

    for path in ("/orders", "/orders/A1", "/orders/A1/files", download_url(file)):
        assert staff.client.get(path).status_code == 404, path


# The backlog: waiting for clamd, held as too large, rejected


def test_the_overview_lists_waiting_held_and_rejected_files(client, customer, staff, clamd):
    with clamd.stopped():
        waiting = upload(client, customer.headers, "A1", "wartet.pdf", PDF)
    held = held_file(client, customer, clamd)
    rejected = upload(client, customer.headers, "A1", "virus.pdf", b"%PDF-1.4\n" + EICAR)
    clean = upload(client, customer.headers, "A1", "sauber.pdf", PDF)

    html = staff.client.get("/staff/").text

    waiting_part = section(html, "Waiting for the virus scan (1)")
    held_part = section(html, "Too large to scan – your decision (1)")
    rejected_part = section(html, "Rejected by the virus scan")
    assert listed_ids(waiting_part) == [waiting.id]
    assert listed_ids(held_part) == [held.id]
    assert listed_ids(rejected_part) == [rejected.id]
    assert clean.id not in listed_ids(html)
    assert "Kunde K1" in row_of(held_part, held)
    assert f"/staff/files/{held.id}/release" in row_of(held_part, held)
    assert f"rejected: {rejected.signature}" in row_of(rejected_part, rejected)
    assert "/release" not in row_of(rejected_part, rejected)
    assert f"/staff/files/{rejected.id}/discard" in row_of(rejected_part, rejected)


def test_releasing_a_held_file_records_who_and_when(client, customer, staff, settings, clamd):
    held = held_file(client, customer, clamd)
    assert folder_files(settings, FOLDER_INCOMING) == []

    response = staff.post(f"/staff/files/{held.id}/release", back="/staff/orders/A1")

    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/orders/A1"
    released = OrderFile.get_by_id(held.id)
    assert released.state == OrderFile.STATE_CLEAN
    assert released.released_by == staff.user
    assert released.released_at is not None
    assert folder_files(settings, FOLDER_INCOMING) == ["riesig.tif"]
    assert not staging_path(settings, released).exists()
    event = FileEvent.get((FileEvent.file == released) & (FileEvent.kind == "released"))
    assert event.staff == staff.user
    page = staff.client.get("/staff/orders/A1").text
    assert "riesig.tif was released into Eingehend." in page
    history = section(page, "File history")
    assert re.search(r"released unscanned</td><td>Anna Muster</td>", history)
    assert "too large to scan" in history
    customer_row = row_of(client.get("/orders/A1/files").text, released)
    assert "released by staff" in customer_row
    assert f'href="{download_url(released)}"' in customer_row
    assert held.id not in listed_ids(staff.client.get("/staff/").text)


def test_release_needs_the_csrf_token_and_a_held_file(client, customer, staff, clamd):
    held = held_file(client, customer, clamd)
    clean = upload(client, customer.headers, "A1", "flyer.pdf", PDF)

    forged = staff.client.post(f"/staff/files/{held.id}/release")

    assert forged.status_code == 400
    assert OrderFile.get_by_id(held.id).state == OrderFile.STATE_TOO_LARGE

    again = staff.post(f"/staff/files/{clean.id}/release", back="/staff/")

    assert again.status_code == 302
    assert "This file cannot be released (any more)." in staff.client.get("/staff/").text
    assert OrderFile.get_by_id(clean.id).released_at is None
    assert staff.post("/staff/files/99999/release").status_code == 404


def test_discarding_deletes_held_and_rejected_files(client, customer, staff, settings, clamd):
    held = held_file(client, customer, clamd)
    rejected = upload(client, customer.headers, "A1", "virus.pdf", b"%PDF-1.4\n" + EICAR)
    clean = upload(client, customer.headers, "A1", "flyer.pdf", PDF)
    assert quarantine_path(settings, rejected).is_file()

    for file in (held, rejected):
        response = staff.post(f"/staff/files/{file.id}/discard", back="/staff/")
        assert response.status_code == 302
        assert OrderFile.get_by_id(file.id).state == OrderFile.STATE_DELETED
    refused = staff.post(f"/staff/files/{clean.id}/discard", back="/staff/")

    assert not staging_path(settings, held).exists()
    assert not quarantine_path(settings, rejected).exists()
    assert all_files(settings.storage.staging_root) == []
    assert refused.status_code == 302
    assert OrderFile.get_by_id(clean.id).state == OrderFile.STATE_CLEAN
    assert folder_files(settings, FOLDER_INCOMING) == ["flyer.pdf"]
    assert listed_ids(client.get("/orders/A1/files").text) == [clean.id]
    kinds = [event.kind for event in FileEvent.select().where(FileEvent.kind == "discarded")]
    assert kinds == ["discarded", "discarded"]


def test_the_overview_shows_a_few_files_per_section_and_links_to_all(client, customer, staff):
    held = files_in(order_a1(), OrderFile.STATE_TOO_LARGE, OVERVIEW_ROWS + 3)
    rejected = files_in(order_a1(), OrderFile.STATE_REJECTED, 2)

    html = staff.client.get("/staff/").text

    held_part = section(html, f"Too large to scan – your decision ({OVERVIEW_ROWS + 3})")
    assert listed_ids(held_part) == held[:OVERVIEW_ROWS], "the longest held first"
    assert f"Show all {OVERVIEW_ROWS + 3} files" in held_part
    assert 'href="/staff/backlog/held"' in held_part
    rejected_part = section(html, "Rejected by the virus scan (2)")
    assert listed_ids(rejected_part) == rejected[::-1], "the latest rejection first"
    assert "Show all" not in rejected_part, "all are shown already"
    waiting_part = section(html, "Waiting for the virus scan (0)")
    assert "No file is waiting for the virus scan." in waiting_part
    assert back_fields(html) == {"/staff/"}


def test_the_overview_stays_the_same_size_and_cost_with_many_backlog_files(client, customer, staff):
    for state in (OrderFile.STATE_WAITING, OrderFile.STATE_TOO_LARGE, OrderFile.STATE_REJECTED):
        files_in(order_a1(), state, 1)
    staff.client.get("/staff/")
    with counted_statements() as few:
        few_html = staff.client.get("/staff/").text
    for state in (OrderFile.STATE_WAITING, OrderFile.STATE_TOO_LARGE, OrderFile.STATE_REJECTED):
        files_in(order_a1(), state, 2 * PER_PAGE)
    with counted_statements() as many:
        many_html = staff.client.get("/staff/").text

    assert len(listed_ids(few_html)) == 3
    assert len(listed_ids(many_html)) == 3 * OVERVIEW_ROWS
    assert len(few) == len(many)
    assert re.findall(r"<h2>[^<]*\((\d+)\)</h2>", many_html) == [str(1 + 2 * PER_PAGE)] * 3


def test_a_backlog_section_lists_every_file_paged_with_htmx(client, customer, staff):
    rejected = files_in(order_a1(), OrderFile.STATE_REJECTED, PER_PAGE + 3)[::-1]

    first = staff.client.get("/staff/backlog/rejected")
    second = staff.client.get("/staff/backlog/rejected?page=2", headers=HTMX)
    beyond = staff.client.get("/staff/backlog/rejected?page=9").text

    assert "<html" in first.text and "Rejected by the virus scan (28)" in first.text
    assert listed_ids(first.text) == rejected[:PER_PAGE]
    assert "Page 1 of 2" in first.text
    assert 'hx-get="/staff/backlog/rejected?page=2"' in first.text
    assert 'hx-target="#backlog-files"' in first.text
    assert back_fields(first.text) == {"/staff/backlog/rejected?page=1"}
    fragment = second.text
    assert fragment.lstrip().startswith('<section class="card" id="backlog-files">')
    assert "<html" not in fragment and "HX-Request" in second.headers["Vary"]
    assert listed_ids(fragment) == rejected[PER_PAGE:]
    assert back_fields(fragment) == {"/staff/backlog/rejected?page=2"}
    assert listed_ids(beyond) == listed_ids(fragment), "a page past the end shows the last"
    restore = HTMX | {"HX-History-Restore-Request": "true"}
    restored = staff.client.get("/staff/backlog/rejected?page=2", headers=restore).text
    assert "<html" in restored and listed_ids(restored) == rejected[PER_PAGE:]


def test_an_empty_or_unknown_backlog_section(staff):
    assert "No file is held." in staff.client.get("/staff/backlog/held").text
    assert staff.client.get("/staff/backlog/clean").status_code == 404


def test_releasing_and_deleting_from_a_list_returns_to_that_list(client, customer, staff, clamd):
    held = held_file(client, customer, clamd)
    unwanted = held_file(client, customer, clamd, "unnoetig.tif")
    others = files_in(order_a1(), OrderFile.STATE_TOO_LARGE, PER_PAGE)
    first_page = staff.client.get("/staff/backlog/held?page=1").text
    assert listed_ids(first_page)[:2] == [held.id, unwanted.id], "the longest held first"
    assert listed_ids(staff.client.get("/staff/backlog/held?page=2").text) == others[-2:]

    back = "/staff/backlog/held?page=1"
    released = staff.post(f"/staff/files/{held.id}/release", back=back)
    deleted = staff.post(f"/staff/files/{unwanted.id}/discard", back=back)

    assert released.headers["Location"] == deleted.headers["Location"] == back
    page = staff.client.get(back).text
    assert "riesig.tif was released into Eingehend." in page
    assert "unnoetig.tif was deleted." in page
    assert f"Too large to scan – your decision ({PER_PAGE})" in page
    assert listed_ids(page) == others
    searched = staff.client.get("/staff/", query_string={"q": "A1", "page": "1"}).text
    assert back_fields(searched) == {"/staff/?q=A1&amp;page=1"}


@pytest.mark.parametrize("target", OPEN_REDIRECT_BYPASSES)
def test_staff_sign_in_never_redirects_off_the_portal(app, staff, target):
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"username": "anna", "password": STAFF_PASSWORD, "csrf_token": token}
    query = f"?next={quote(target, safe='', errors='surrogatepass')}"

    response = browser.post(f"/staff/login{query}", data=form)

    assert_stays_on_the_portal(response)


@pytest.mark.parametrize("action", ["release", "discard"])
@pytest.mark.parametrize("target", OPEN_REDIRECT_BYPASSES)
def test_back_of_staff_actions_never_leaves_the_portal(staff, action, target):
    file = make_file(make_order(make_customer()))

    # Encoded by hand: the test client refuses to encode a lone surrogate.
    body = f"csrf_token={staff.csrf_token}&back={quote(target, safe='', errors='surrogatepass')}"
    form = "application/x-www-form-urlencoded"

    response = staff.client.post(f"/staff/files/{file.id}/{action}", data=body, content_type=form)

    assert_stays_on_the_portal(response)


# An order as staff see it, and files staff place for the customer


def test_the_staff_order_page_shows_every_folder_and_the_history(client, customer, staff, clamd):
    clean = upload(client, customer.headers, "A1", "flyer.pdf", PDF)
    rejected = upload(client, customer.headers, "A1", "virus.pdf", b"%PDF-1.4\n" + EICAR)
    held = held_file(client, customer, clamd)

    html = staff.client.get("/staff/orders/A1").text

    assert re.findall(r'<h2 id="folder-\d">([^<]+)</h2>', html) == list(ORDER_FOLDERS)
    assert "Kunde K1 (K1)" in html
    incoming = folder_section(html, FOLDER_INCOMING)
    assert listed_ids(incoming) == [held.id, rejected.id, clean.id]
    assert f'href="/staff/orders/A1/files/{clean.id}"' in incoming
    assert f'href="/staff/orders/A1/files/{held.id}"' in incoming
    assert f"/staff/files/{held.id}/release" in incoming
    history = section(html, "File history")
    assert f"rejected by the virus scan: {rejected.signature}" in history
    assert f"too large to scan: {held.size} bytes" in history
    assert 'data-endpoint="/orders/A1/uploads?folder=Final"' in html
    partial = staff.client.get("/staff/orders/A1/files", headers=HTMX).text
    assert "<html" not in partial and listed_ids(partial) == listed_ids(incoming)
    assert 'hx-get="/staff/orders/A1/files"' in partial
    chosen = staff.client.get("/staff/orders/A1", query_string={"folder": FOLDER_IN_PROGRESS})
    assert 'data-endpoint="/orders/A1/uploads?folder=In+Bearbeitung"' in chosen.text


def test_staff_place_a_file_in_final_and_the_customer_downloads_it(
    client, customer, staff, settings
):
    proof = upload(staff.client, staff.headers, "A1", "Proof A1 ü.pdf", PDF, folder=FOLDER_FINAL)
    work = upload(
        staff.client, staff.headers, "A1", "Bogen.pdf", PDF[:100], folder=FOLDER_IN_PROGRESS
    )

    assert proof.state == work.state == OrderFile.STATE_CLEAN
    assert proof.uploaded_by_staff == staff.user
    assert folder_files(settings, FOLDER_FINAL) == ["Proof A1 ue.pdf"]
    assert folder_files(settings, FOLDER_IN_PROGRESS) == ["Bogen.pdf"]
    assert folder_files(settings, FOLDER_INCOMING) == []
    html = client.get("/orders/A1/files").text
    assert listed_ids(folder_section(html, FOLDER_FINAL)) == [proof.id]
    assert listed_ids(folder_section(html, FOLDER_IN_PROGRESS)) == [work.id]
    assert "Final files ready" in client.get("/orders").text
    response = client.get(download_url(proof))
    assert response.status_code == 200
    assert response.data == PDF
    assert "filename*=UTF-8''Proof%20A1%20%C3%BC.pdf" in response.headers["Content-Disposition"]
    assert client.get(download_url(work)).data == PDF[:100]


def test_customers_see_only_clean_files_from_staff(client, customer, staff, clamd):
    rejected = upload(staff.client, staff.headers, "A1", "alt.pdf", EICAR, folder=FOLDER_FINAL)
    with clamd.stopped():
        waiting = upload(staff.client, staff.headers, "A1", "neu.pdf", PDF, folder=FOLDER_FINAL)
    assert (rejected.state, waiting.state) == (OrderFile.STATE_REJECTED, OrderFile.STATE_WAITING)

    html = client.get("/orders/A1/files").text
    assert listed_ids(folder_section(html, FOLDER_FINAL)) == []
    assert "every 2s" not in html, "nothing the customer sees is open"
    staff_html = staff.client.get("/staff/orders/A1/files").text
    assert set(listed_ids(folder_section(staff_html, FOLDER_FINAL))) == {rejected.id, waiting.id}


@pytest.mark.parametrize("folder", [FOLDER_INCOMING, "Hotfolder", "../Final", ""])
def test_staff_cannot_place_files_elsewhere(client, customer, staff, settings, folder):
    response = announce(staff.client, staff.headers, "A1", "x.pdf", 10, folder=folder)

    assert response.status_code == 403
    assert OrderFile.select().count() == 0
    assert all_files(settings.storage.staging_root) == []


def test_staff_download_clean_files_of_any_order(client, api, customer, staff):
    customer_with_order(api, "K2", "B1")
    mine = upload(client, customer.headers, "A1", "flyer.pdf", PDF)
    theirs = upload(staff.client, staff.headers, "B1", "b.pdf", PDF[:50], folder=FOLDER_FINAL)

    response = staff.client.get(f"/staff/orders/A1/files/{mine.id}", headers={"Range": "bytes=0-8"})

    assert response.status_code == 206
    assert response.data == PDF[:9]
    assert staff.client.get(f"/staff/orders/B1/files/{theirs.id}").data == PDF[:50]
    assert staff.client.get(f"/staff/orders/A1/files/{theirs.id}").status_code == 404
    assert client.get(download_url(theirs)).status_code == 404


def test_staff_search_orders_by_customer_name(api, staff):
    api.post(
        "/customers", {"customer_no": "K7", "name": "Druckhaus Müller", "email": "m@x.example"}
    )
    api.post("/orders", {"project_no": "M1", "customer_no": "K7", "job_description": "Plakate"})
    customer_with_order(api, "K8", "S1")

    page = staff.client.get("/staff/", query_string={"q": "müller"})
    fragment = staff.client.get("/staff/", query_string={"q": "Druckhaus"}, headers=HTMX)
    by_number = staff.client.get("/staff/", query_string={"q": "K8"}, headers=HTMX)

    assert "<html" in page.text
    assert re.findall(r'href="/staff/orders/(\w+)"', page.text) == ["M1"]
    assert "Druckhaus Müller (K7)" in page.text
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="order-list">')
    assert re.findall(r'href="/staff/orders/(\w+)"', fragment.text) == ["M1"]
    assert re.findall(r'href="/staff/orders/(\w+)"', by_number.text) == ["S1"]
    assert "HX-Request" in fragment.headers["Vary"]
    restore = HTMX | {"HX-History-Restore-Request": "true"}
    restored = staff.client.get("/staff/", query_string={"q": "Druckhaus"}, headers=restore)
    assert "Files that need attention" in restored.text


def test_the_overview_shows_the_newest_orders_and_links_to_every_order(staff):
    customer = make_customer("K5")
    project_nos = [f"N{number}" for number in range(1, OVERVIEW_ORDERS + 3)]
    for project_no in project_nos:
        make_order(customer, project_no)
    newest_first = project_nos[::-1]

    def listed(html: str) -> list[str]:
        return re.findall(r'<td><a href="/staff/orders/(\w+)">', html)

    first = staff.client.get("/staff/").text
    second = staff.client.get("/staff/", query_string={"page": 2}, headers=HTMX).text
    searched = staff.client.get("/staff/", query_string={"q": "N1"}).text

    assert listed(first) == newest_first[:OVERVIEW_ORDERS]
    assert "Page 1 of 2" in first
    assert listed(second) == newest_first[OVERVIEW_ORDERS:]
    assert '<a href="/staff/orders/?q=">All orders, with filters</a>' in first
    assert sorted(listed(searched)) == ["N1", "N10", "N11", "N12"]
    assert '<a href="/staff/orders/?q=N1">All orders, with filters</a>' in searched
    every = staff.client.get("/staff/orders/", query_string={"q": "N1"}).text
    assert sorted(re.findall(r'href="/staff/orders/(N\d+)"', every)) == sorted(listed(searched))


def test_staff_sign_in_is_rate_limited_per_username(app, settings, staff):
    def attempt(username: str, password: str, number: int) -> int:
        browser = app.test_client()
        token = csrf_from(browser.get("/staff/login").text)
        form = {"username": username, "password": password, "csrf_token": token}
        address = {"REMOTE_ADDR": f"10.0.0.{number}"}
        return browser.post("/staff/login", data=form, environ_base=address).status_code

    # The fixture's sign-in was the first attempt of this minute.
    limit = settings.portal.login_attempts_per_minute
    failures = [attempt("anna", "wrong password", number) for number in range(limit - 1)]

    assert failures == [401] * (limit - 1)
    assert attempt("ANNA", STAFF_PASSWORD, 99) == 429
    assert attempt("bob", "wrong password", 98) == 401
