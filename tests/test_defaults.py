"""The "ptportal" system defaults: admins edit them, for new customers only or, after a
preview, for the existing ones too; both recorded in the audit log."""

from __future__ import annotations

import re

from staff_helpers import (  # noqa: F401  (fixtures admin and clerk)
    admin_fixture,
    clerk_fixture,
    field_error,
    typed_value,
)

from shared.accounts.customers import create_customer, get_customer
from shared.accounts.logins import create_login
from shared.db import write_transaction
from shared.models import AuditEntry, Customer, SystemDefault

FORM = {
    "username_from": "email",
    "login_state": "active",
    "create_hotfolder": "",
    "hotfolder_delete_after_days": "60",
    "show_job_description": "1",
    "show_due_date": "1",
    "show_tickets": "",
}


def existing_customers():
    create_customer("K1", name="Eins", create_hotfolder=True, hotfolder_delete_after_days=30)
    create_customer("K2", name="Zwei", create_hotfolder=False, hotfolder_delete_after_days=60)
    create_customer("K3", name="Drei", create_hotfolder=True, hotfolder_delete_after_days=60)


def test_defaults_for_new_customers_only(app, admin, api):
    existing_customers()

    response = admin.post("/staff/defaults/", htmx=True, apply_to="new", **FORM)

    assert response.headers["HX-Redirect"] == "/staff/defaults/"
    row = SystemDefault.portal()
    assert (row.username_from, row.login_state, row.create_hotfolder) == ("email", "active", False)
    assert (row.hotfolder_delete_after_days, row.show_tickets) == (60, False)
    assert get_customer("K1").hotfolder_delete_after_days == 30  # untouched
    api.post("/customers", {"customer_no": "K9", "name": "Neu", "email": "Neu@K9.example"})
    new = get_customer("K9")
    assert (new.create_hotfolder, new.hotfolder_delete_after_days) == (False, 60)
    with write_transaction():
        login = create_login(new)
    assert (login.username, login.state) == ("neu@k9.example", "active")
    entry = AuditEntry.get(AuditEntry.action == "defaults.update")
    assert "username_from: customer_no → email" in entry.detail and entry.actor_name == "ada"
    assert not AuditEntry.select().where(AuditEntry.action == "defaults.apply").exists()


def test_existing_customers_too_after_a_preview(app, admin):
    existing_customers()

    preview = admin.post("/staff/defaults/", htmx=True, apply_to="existing", **FORM)

    assert preview.status_code == 200
    html = preview.text
    assert 'id="defaults-preview"' in html
    assert "Existing customers that would change: 2" in html
    assert "Eins (K1)" in html and "Drei (K3)" in html and "Zwei (K2)" not in html
    assert "30 → 60" in html
    confirms = re.search(r'name="confirmed" value="(\w+)"', html).group(1)
    # Nothing written yet.
    assert SystemDefault.portal().hotfolder_delete_after_days == 30
    assert get_customer("K1").hotfolder_delete_after_days == 30
    assert not AuditEntry.select().where(AuditEntry.action.startswith("defaults.")).exists()

    changed_since = FORM | {"hotfolder_delete_after_days": "90"}
    again = admin.post(
        "/staff/defaults/", htmx=True, apply_to="existing", confirmed=confirms, **changed_since
    )
    assert "Existing customers that would change: 3" in again.text  # a new preview
    assert get_customer("K2").hotfolder_delete_after_days == 60

    done = admin.post(
        "/staff/defaults/", htmx=True, apply_to="existing", confirmed=confirms, **FORM
    )

    assert done.headers["HX-Redirect"] == "/staff/defaults/"
    values = {(c.customer_no, c.create_hotfolder, c.hotfolder_delete_after_days) for c in Customer}
    assert values == {("K1", False, 60), ("K2", False, 60), ("K3", False, 60)}
    applied = AuditEntry.get(AuditEntry.action == "defaults.apply")
    assert applied.detail.startswith("2 existing customers")
    assert "existing customers (changed: 2)" in admin.get("/staff/defaults/").text


def test_bad_defaults_are_refused_inline_keeping_what_was_typed(app, admin):
    form = FORM | {"hotfolder_delete_after_days": "viele", "login_state": "halb"}
    html = admin.post("/staff/defaults/", htmx=True, apply_to="new", **form).text
    assert field_error(html, "hotfolder_delete_after_days") == "A whole number from 0 to 3650."
    assert field_error(html, "login_state") == "Please choose one of the options."
    assert typed_value(html, "hotfolder_delete_after_days") == "viele"
    assert SystemDefault.portal().login_state == "inactive"


def test_the_page_shows_the_current_defaults(app, admin):
    page = admin.get("/staff/defaults/").text
    assert typed_value(page, "hotfolder_delete_after_days") == "30"
    assert '<option value="customer_no" selected>' in page
