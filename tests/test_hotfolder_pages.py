"""Staff pages "Hotfolder" (each upload's way, agents, problems; live via htmx) and API tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from agent_helpers import clean_upload, make_order
from conftest import csrf_from
from file_helpers import files_in
from order_helpers import counted_statements
from peewee import SqliteDatabase

from shared.accounts.api_tokens import SCOPE_AGENT, authenticate_token, create_token
from shared.accounts.staff import create_staff
from shared.db import database, write_transaction
from shared.hotfolder.deliveries import Placed, confirm, lease_files, waiting_files
from shared.hotfolder.reports import Beat, heartbeat, record_error
from shared.models import OutboundTransfer
from shared.paging import PER_PAGE

PASSWORD = "Kaffee-Druckmaschine-Montag-42"


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    return {"clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}}


def signed_in(app, settings, username: str, admin: bool):
    create_staff(settings, username, username.title(), "", admin, PASSWORD)
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert browser.post("/staff/login", data=form).status_code == 302
    return browser


@pytest.fixture
def staff(app, settings):
    return signed_in(app, settings, "anna", admin=False)


@pytest.fixture
def admin(app, settings):
    return signed_in(app, settings, "chef", admin=True)


HOTFOLDER = "/srv/hotfolder/K1/A-100/Innenteil.pdf"


@pytest.fixture
def journeys(app, settings):
    """A delivered upload, a clean one not yet delivered, an agent with a copy problem."""
    heartbeat(Beat("workflow-01-1a2b", "workflow-01", 4242, "0.1.0", "native", 0, 30), None, "")
    first = make_order(settings, "A-100", "K1", name="Muster & Co")
    other = make_order(settings, "B-200", "K2", name="Beispiel AG")
    delivered = clean_upload(settings, first, "Innenteil.pdf", b"inside" * 100)
    lease_files("workflow-01-1a2b", 30, limit=1)
    confirm(
        "workflow-01-1a2b",
        [Placed(delivered.id, HOTFOLDER, delivered.created_at, delivered.sha256)],
    )
    waiting = clean_upload(settings, other, "Umschlag.pdf", b"cover")
    record_error("workflow-01-1a2b", "deliver", "/hot/K2/B-200", "Permission denied (errno 13)")
    return delivered, waiting


def rows(html: str) -> dict[int, str]:
    return {
        int(i): stage for i, stage in re.findall(r'id="journey-(\d+)" data-stage="(\w+)"', html)
    }


def test_hotfolder_page_shows_each_uploads_way_the_agent_and_its_problems(staff, journeys):
    delivered, waiting = journeys
    page = staff.get("/staff/hotfolder/")
    assert page.status_code == 200
    html = page.text
    assert rows(html) == {delivered.id: "in_hotfolder", waiting.id: "clean"}
    assert HOTFOLDER in html
    assert "Muster &amp; Co" in html
    assert "running" in html and "workflow-01 (PID 4242)" in html
    assert "Permission denied (errno 13)" in html and "/hot/K2/B-200" in html
    assert 'hx-trigger="every 5s"' in html
    assert "HX-Request" in page.headers["Vary"]


def test_problems_and_transfers_link_their_order_and_agents_name_their_token(staff, settings):
    order = make_order(settings, "E-500", "K5", name="Verlag Ost")
    token = authenticate_token(create_token("agent-halle", SCOPE_AGENT))
    heartbeat(Beat("halle-1", "halle", 7, "0.2.0", "native", 0, 30), token, "")
    record_error("halle-1", "deliver", "/hot/K5/E-500", "Disk full", project_no="E-500")
    record_error("halle-1", "watch", "/hot/unknown", "No such order")
    with write_transaction():
        OutboundTransfer.create(
            source_path="/out/K5/E-500/Proof.pdf",
            order=order,
            folder="Final",
            size=10,
            claimed_by="halle-1",
            state=OutboundTransfer.STATE_SENT,
        )

    html = staff.get("/staff/hotfolder/").text

    links = re.findall(r'<a href="/staff/orders/E-500">E-500</a>', html)
    assert len(links) == 2, "the problem and the transfer link their order"
    assert "No such order" in html and "<td>–</td>" in html
    assert "agent-halle" in html and "/out/K5/E-500/Proof.pdf" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=in_hotfolder", ["in_hotfolder"]),
        ("state=clean", ["clean"]),
        ("customer=K2", ["clean"]),
        ("customer=Muster", ["in_hotfolder"]),
        ("q=A-1", ["in_hotfolder"]),
        ("q=nothing", []),
        ("state=bogus", ["in_hotfolder", "clean"]),
    ],
)
def test_filters_by_customer_order_and_state(staff, journeys, query, expected):
    html = staff.get(f"/staff/hotfolder/?{query}").text
    assert sorted(rows(html).values()) == sorted(expected)


def test_htmx_gets_only_the_partial(staff, journeys):
    response = staff.get("/staff/hotfolder/?state=clean", headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="hotfolder-files"')
    assert "state=clean" in response.text, "polling keeps the filter"
    assert "<html" not in response.text


def test_customers_and_strangers_do_not_see_the_hotfolder_page(client):
    response = client.get("/staff/hotfolder/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_the_overview_links_to_hotfolder_and_for_admins_to_tokens(staff, admin):
    assert "/staff/hotfolder/" in staff.get("/staff/").text
    assert "/staff/tokens/" not in staff.get("/staff/").text
    assert "/staff/tokens/" in admin.get("/staff/").text


def test_tokens_are_for_admins_only(staff):
    assert staff.get("/staff/tokens/").status_code == 403


def test_a_token_is_shown_once_works_and_can_be_revoked(admin, client):
    page = admin.get("/staff/tokens/").text
    created = admin.post(
        "/staff/tokens/", data={"name": "ptworkflow", "csrf_token": csrf_from(page)}
    )
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    token = re.search(r"<code>(ptp_[\w-]+)</code>", created.text).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/orders/none", headers=auth).status_code == 404

    listing = admin.get("/staff/tokens/").text
    assert token not in listing, "shown once"
    assert "ptworkflow" in listing and "never" not in listing, "last use is shown"

    token_id = re.search(r'id="token-(\d+)"', listing).group(1)
    revoked = admin.post(
        f"/staff/tokens/{token_id}/revoke", data={"csrf_token": csrf_from(listing)}
    )
    assert revoked.status_code == 302
    assert client.get("/api/v1/orders/none", headers=auth).status_code == 401
    assert "revoked" in admin.get("/staff/tokens/").text


def test_a_duplicate_or_empty_token_name_is_explained(admin):
    page = admin.get("/staff/tokens/").text
    token = csrf_from(page)
    admin.post("/staff/tokens/", data={"name": "erp", "csrf_token": token})
    again = admin.post("/staff/tokens/", data={"name": "erp", "csrf_token": token})
    assert "exists already" in again.text and "ptp_" not in again.text
    empty = admin.post("/staff/tokens/", data={"name": " ", "csrf_token": token})
    assert "Give the token a name" in empty.text


def uploads(settings, project_no: str, count: int, state: str = "clean") -> list[int]:
    """``count`` uploads in Eingehend of a new order, oldest first."""
    order = make_order(settings, project_no, "K3", name="Viele Dateien KG")
    return files_in(order, state, count, name="Seite")


def test_uploads_page_by_next_and_previous_without_counting_them(staff, settings):
    newest_first = uploads(settings, "C-300", PER_PAGE + 5)[::-1]

    with counted_statements() as statements:
        first = staff.get("/staff/hotfolder/").text
    second = staff.get("/staff/hotfolder/?page=2", headers={"HX-Request": "true"}).text
    beyond = staff.get("/staff/hotfolder/?page=9").text

    assert list(rows(first)) == newest_first[:PER_PAGE]
    assert not [sql for sql in statements if "COUNT(" in sql.upper()]
    assert "Page 1" in first and "Page 1 of" not in first and "Previous" not in first
    assert 'hx-get="/staff/hotfolder/?customer=&amp;q=&amp;state=&amp;page=2"' in first
    assert list(rows(second)) == newest_first[PER_PAGE:]
    assert "Page 2" in second and ">Next<" not in second
    assert "page=1" in second and "Previous" in second
    assert rows(beyond) == {} and "No further uploads." in beyond and "Previous" in beyond
    assert staff.get("/staff/hotfolder/?page=99999999999999999999999").status_code == 200


def test_paging_keeps_the_filters(staff, settings):
    uploads(settings, "C-300", PER_PAGE + 1)
    uploads(settings, "D-400", 2, state="rejected")

    first = staff.get("/staff/hotfolder/?customer=K3&state=clean").text
    second = staff.get("/staff/hotfolder/?customer=K3&state=clean&page=2").text

    assert set(rows(first).values()) == {"clean"} and len(rows(first)) == PER_PAGE
    assert 'href="/staff/hotfolder/?customer=K3&amp;q=&amp;state=clean&amp;page=2"' in first
    assert len(rows(second)) == 1
    assert set(rows(staff.get("/staff/hotfolder/?state=rejected").text).values()) == {"rejected"}


def test_the_uploads_list_costs_the_same_for_few_and_many_uploads(staff, settings):
    uploads(settings, "C-300", 2)
    staff.get("/staff/hotfolder/")
    with counted_statements() as few:
        staff.get("/staff/hotfolder/")
    uploads(settings, "D-400", 3 * PER_PAGE)
    with counted_statements() as many:
        staff.get("/staff/hotfolder/")

    assert len(few) == len(many)


@contextmanager
def query_plans() -> Iterator[list[str]]:
    """SQLite's plan of each statement the app runs inside the block, one line each."""
    if not isinstance(database.obj, SqliteDatabase):
        pytest.skip("reads SQLite's query plans")
    seen: list[tuple[str, tuple]] = []
    plans: list[str] = []
    original = database.obj.execute_sql

    def recording(sql, params=None, *args, **kwargs):
        seen.append((sql, params))
        return original(sql, params, *args, **kwargs)

    database.obj.execute_sql = recording
    try:
        yield plans
    finally:
        del database.obj.execute_sql
        for sql, params in seen:
            rows = original(f"EXPLAIN QUERY PLAN {sql}", params)
            plans.append(sql + " => " + " / ".join(row[-1] for row in rows))


def test_the_newest_uploads_are_read_without_sorting_every_upload(staff, settings):
    # The page shows the newest 25 of all uploads in Eingehend, on every refresh: an index
    # in upload order serves them; sorting the whole folder each time was most of its cost.
    uploads(settings, "C-300", 3)
    uploads(settings, "D-400", 2, state="rejected")
    with query_plans() as plans:
        for stage in ("", "uploading", "rejected"):
            assert staff.get("/staff/hotfolder/", query_string={"state": stage}).status_code == 200
    uploads_plans = [plan for plan in plans if 'LEFT OUTER JOIN "delivery"' in plan]

    assert len(uploads_plans) == 3
    for plan in uploads_plans:
        assert "TEMP B-TREE" not in plan.split(" => ")[1], plan


def test_the_agents_still_find_undelivered_files_by_their_own_index(app, settings):
    # The page's indexes on (folder) and (folder, state) must not lure the agents' query,
    # asked many times a second, away from (folder, state, delivered_at).
    uploads(settings, "C-300", 3)
    with query_plans() as plans:
        waiting_files(10)

    (plan,) = [plan for plan in plans if "delivered_at" in plan.split(" => ")[0]]
    assert "order_file_folder_state_delivered_at" in plan.split(" => ")[1], plan
    assert "TEMP B-TREE" not in plan.split(" => ")[1], plan
