"""The audit log: what is recorded (who, what, when, from where), the staff page with its
filters, the CSV export, append-only, and the retention."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from conftest import base_sections, csrf_from, write_ini
from order_helpers import download_url, upload
from portal_helpers import signed_in_customer
from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    HTMX,
    admin_fixture,
    clerk_fixture,
    password_step,
)

from shared import audit
from shared.clock import utcnow
from shared.config import ConfigError, load_settings
from shared.db import write_transaction
from shared.files.intake import discard_held, release_held
from shared.models import ApiToken, AuditEntry, OrderFile
from shared.worker import nightly_retention


@pytest.fixture
def ini_overrides(clamd) -> dict[str, dict[str, object]]:
    """The app scans with the test session's real clamd."""
    return {"clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10}}


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.action == action).order_by(AuditEntry.id))


def test_customer_sign_ins_uploads_and_downloads_are_recorded(app, client, api, mailserver):
    failed = client.post("/login", data={"username": "k1", "password": "falsch-falsch-falsch"})
    assert failed.status_code in (400, 401)  # without CSRF token, or wrong
    customer = signed_in_customer(client, api, mailserver, "K1", "A1")
    stranger = app.test_client()
    token = csrf_from(stranger.get("/login").text)
    stranger.post(
        "/login", data={"username": "k1", "password": "nope-nope-nope", "csrf_token": token}
    )

    file = upload(client, customer.headers, "A1", "Flyer.pdf", b"%PDF-1.7\n" + b"x" * 2000)
    assert file.state == OrderFile.STATE_CLEAN
    assert client.get(download_url(file)).status_code == 200
    client.get(download_url(file), headers={"Range": "bytes=100-"})  # a resumed download

    [signed_in] = entries(audit.SIGN_IN)
    assert (signed_in.actor_kind, signed_in.actor_name, signed_in.address) == (
        "customer",
        "k1",
        "127.0.0.1",
    )
    [failure] = entries(audit.SIGN_IN_FAILED)
    assert (failure.actor_kind, failure.target, failure.detail) == (
        "anonymous",
        "login k1",
        "wrong username or password",
    )
    [uploaded] = entries(audit.FILE_UPLOAD)
    assert uploaded.target == "order A1: Eingehend/Flyer.pdf" and uploaded.customer_no == "K1"
    assert uploaded.actor_name == "k1" and "sha256" in uploaded.detail
    [downloaded] = entries(audit.FILE_DOWNLOAD)
    assert downloaded.actor_name == "k1" and downloaded.target == uploaded.target


def test_staff_release_and_delete_are_recorded(
    app, client, api, mailserver, clerk, settings, clamd
):
    customer = signed_in_customer(client, api, mailserver, "K1", "A1")
    big = b"II*\0" + b"\0" * (clamd.limits.largest_scannable - 3)  # a TIFF over the limit
    held = upload(client, customer.headers, "A1", "riesig.tif", big)
    other = upload(client, customer.headers, "A1", "auch-riesig.tif", big)
    assert held.state == other.state == OrderFile.STATE_TOO_LARGE

    assert clerk.post(f"/staff/files/{held.id}/release", back="/staff/").status_code == 302
    discard_held(settings, other, clerk.user)

    [released] = entries(audit.FILE_RELEASE)
    assert released.actor_name == "carl" and "riesig.tif" in released.target
    [deleted] = entries(audit.FILE_DELETE)
    assert deleted.target == "order A1: Eingehend/auch-riesig.tif"
    assert deleted.actor_kind == "system"  # called outside a request
    with pytest.raises(Exception):  # noqa: B017 (released already)
        release_held(settings, held, clerk.user)


def test_staff_sign_in_failure_and_success_are_recorded(app, clerk):
    password_step(app.test_client(), "carl", "wrong-wrong-wrong")
    password_step(app.test_client(), "niemand", "wrong-wrong-wrong")
    failures = entries(audit.STAFF_SIGN_IN_FAILED)
    assert [e.target for e in failures] == ["staff carl", "staff niemand"]
    assert entries(audit.STAFF_SIGN_IN)[0].actor_name == "carl"


def test_template_rule_and_token_changes_are_recorded(app, admin):
    admin.post(
        "/staff/mail/events/upload_received",
        active="1",
        roles="owner",
        template_name="Upload eingegangen",
        extra_addresses="",
    )
    admin.post("/staff/tokens/", name="erp")
    admin.post(f"/staff/tokens/{ApiToken.get().id}/revoke")

    assert entries(audit.RULE_SAVE)[0].target == "notification upload_received"
    assert [e.target for e in entries(audit.TOKEN_CREATE)] == ["token erp (workflow)"]
    assert [e.target for e in entries(audit.TOKEN_REVOKE)] == ["token erp"]
    changes = AuditEntry.select().where(
        AuditEntry.action.startswith("notification.") | AuditEntry.action.startswith("token.")
    )
    assert {(e.actor_kind, e.actor_name) for e in changes} == {("staff", "ada")}


def test_the_mailbox_feature_records_through_the_same_function(app):
    entry = audit.record(
        audit.MAILBOX_ASSIGN, "order A1", "reply from k@x.example", customer_no="K1"
    )
    assert (entry.actor_kind, entry.action, entry.customer_no) == ("system", "mailbox.assign", "K1")


# --- the page -------------------------------------------------------------------------------


def some_entries():
    with audit.acting_as(audit.Actor(audit.ACTOR_STAFF, "carl", "10.0.0.7")):
        audit.record(audit.CUSTOMER_CREATE, "customer K1", "name: None → Eins", customer_no="K1")
        audit.record(audit.ORDER_STATE, "order A1", "open → closed", customer_no="K1")
    with audit.acting_as(audit.Actor(audit.ACTOR_API, "erp", "10.0.0.9")):
        audit.record(audit.CUSTOMER_UPDATE, "customer K2", "email: a → b", customer_no="K2")
    old = audit.record(audit.TOKEN_CREATE, "token alt")
    with write_transaction():
        AuditEntry.update(created_at=utcnow() - timedelta(days=40)).where(
            AuditEntry.id == old.id
        ).execute()


def listed(clerk, **query) -> list[str]:
    html = clerk.get("/staff/audit/", htmx=True, **query).text
    assert html.lstrip().startswith('<div id="audit-list">')
    return re.findall(r'data-action="([\w.]+)"', html)


def test_the_page_filters_by_area_actor_customer_text_and_date(app, clerk):
    some_entries()
    everything = listed(clerk)
    assert everything[:3] == ["customer.update", "order.state", "customer.create"]

    assert listed(clerk, area="customer") == ["customer.update", "customer.create"]
    assert listed(clerk, actor="erp") == ["customer.update"]
    assert listed(clerk, customer="K1") == ["order.state", "customer.create"]
    assert listed(clerk, q="closed") == ["order.state"]
    since = (utcnow() - timedelta(days=41)).date().isoformat()
    until = (utcnow() - timedelta(days=39)).date().isoformat()
    assert listed(clerk, since=since, until=until) == ["token.create"]
    page = clerk.get("/staff/audit/").text
    assert "10.0.0.9" in page and "customer changed" in page and "kept for 730 days" in page


def test_the_log_is_append_only(app, clerk):
    some_entries()
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff/audit")]
    assert {method for rule in rules for method in rule.methods} <= {"GET", "HEAD", "OPTIONS"}
    count = AuditEntry.select().count()
    for method in ("post", "put", "patch", "delete"):
        response = getattr(clerk.client, method)("/staff/audit/", headers=clerk.headers)
        assert response.status_code == 405
    assert AuditEntry.select().count() == count
    assert "<form" not in clerk.get("/staff/audit/", htmx=True).text


def test_csv_export_is_streamed_filtered_and_safe_for_spreadsheets(app, clerk):
    some_entries()
    with audit.acting_as(audit.Actor(audit.ACTOR_CUSTOMER, "=cmd|' /C calc'!A0", "1.2.3.4")):
        audit.record(audit.SIGN_IN, "login x", customer_no="K1")

    response = clerk.get("/staff/audit/export.csv", customer="K1")

    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        *(["time_utc", "actor_kind", "actor", "address", "action", "target", "customer_no"]),
        "detail",
    ]
    assert [row[4] for row in rows[1:]] == ["customer.create", "order.state", "sign_in.success"]
    assert rows[-1][2] == "'=cmd|' /C calc'!A0"


def test_an_empty_export_still_has_its_header(app, clerk):
    response = clerk.get("/staff/audit/export.csv", customer="NIEMAND")
    assert response.text.strip().startswith("time_utc,actor_kind")
    assert len(response.text.strip().splitlines()) == 1


def test_retention_deletes_only_entries_past_the_configured_days(app, settings):
    some_entries()
    assert settings.audit.retention_days == 730

    assert audit.delete_expired(30) == 1
    assert audit.delete_expired(30) == 0
    assert AuditEntry.select().count() == 3


def test_the_retention_runs_in_the_worker(app, settings):
    some_entries()
    with write_transaction():
        AuditEntry.update(created_at=utcnow() - timedelta(days=800)).where(
            AuditEntry.action != audit.CUSTOMER_UPDATE
        ).execute()
    nightly_retention(settings)
    assert [entry.action for entry in AuditEntry.select()] == [audit.CUSTOMER_UPDATE]


@pytest.mark.parametrize("value", ["0", "29", "3651", "ewig"])
def test_retention_days_is_checked(tmp_path, value):
    ini = write_ini(tmp_path, base_sections(25, audit={"retention_days": value}))
    with pytest.raises(ConfigError, match=r"\[audit\] retention_days"):
        load_settings(ini)


def test_the_staff_page_needs_a_staff_sign_in(client):
    assert client.get("/staff/audit/").headers["Location"].startswith("/staff/login")
    assert client.get("/staff/audit/export.csv").status_code == 302


def test_htmx_requests_get_only_the_list(app, clerk):
    response = clerk.client.get("/staff/audit/", headers=HTMX)
    assert "<html" not in response.text
