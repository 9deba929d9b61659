"""The customer's journey in a real browser (Debian's Chromium via Playwright) against the
portal served by gunicorn, with the worker, clamd and an SMTP server running.

Each test leaves a screenshot of its last page in test-artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.request
from datetime import timedelta
from email.message import EmailMessage
from importlib import resources
from itertools import count
from pathlib import Path

import pyotp
import pytest
from clamd_helpers import EICAR
from dovecot_helpers import dovecot_fixture  # noqa: F401
from lxml import etree
from playwright.sync_api import Browser, Page, expect, sync_playwright
from print_data_helpers import print_pdf
from system_helpers import ARTIFACTS, STAFF_PASSWORD, running_system

from shared.clock import utcnow
from shared.db import bind_database, database
from shared.models import ActivationToken, OrderFile, Proof

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "Zwei Kaffee und ein Druckbogen"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/activate/[\w-]+")
numbers = count(1)


MAILBOX_ADDRESS = "auftraege@druckerei.example"


@pytest.fixture(scope="module")
def mailbox_user(dovecot) -> str:
    user = dovecot.next_user()
    dovecot.create_folder(user, "Processed")
    return user


@pytest.fixture(scope="module")
def system(tmp_path_factory, clamd, dovecot, mailbox_user):
    directory = tmp_path_factory.mktemp("system")
    mailbox = {
        "host": "localhost",
        "port": dovecot.imaps_port,
        "user": mailbox_user,
        "password": dovecot.passwords[mailbox_user],
        "ca_file": dovecot.ca_file,
        "address": MAILBOX_ADDRESS,
    }
    # Every test signs in from 127.0.0.1: the per-address limit (10 a minute) is not what
    # these tests are about (tests/test_rate_limits.py is), and a fast run would reach it.
    portal = {"upload_chunk_bytes": "4M", "login_attempts_per_minute": "1000"}
    with running_system(directory, clamd, portal=portal, **{"mailbox:orders": mailbox}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run .ci/install --test (Debian package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser, request):
    context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    yield context
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(context.pages):
        suffix = f"-{index}" if index else ""
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}{suffix}.png"), full_page=True)
    context.close()


def api(system, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{system.base_url}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {system.api_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def new_customer_with_order(system) -> tuple[str, str]:
    number = next(numbers)
    customer_no, project_no = f"K{number}", f"A{number}"
    api(
        system,
        "/customers",
        {
            "customer_no": customer_no,
            "name": f"Kunde {number}",
            "email": f"k{number}@example.com",
            "portal_enabled": True,
        },
    )
    api(
        system,
        "/orders",
        {
            "project_no": project_no,
            "customer_no": customer_no,
            "job_description": "Flyer A5",
            "due_date": "2026-12-24",
        },
    )
    return customer_no.lower(), project_no


def activation_link(system, username: str, after: int = 0) -> str:
    """The link in the newest mail to ``username``'s customer, waiting for the worker."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in reversed(system.mail.received[after:]):
            text = received.message.get_body(preferencelist=("plain",)).get_content()
            if re.search(rf": {username}\r?\n", text):
                return LINK.search(text).group(0)
        time.sleep(0.2)
    raise AssertionError(f"no activation mail for {username}")


def set_password_and_sign_in(page: Page, link: str, username: str) -> None:
    page.goto(link)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/orders$"))


def signed_in_at_order(system, page: Page) -> str:
    username, project_no = new_customer_with_order(system)
    set_password_and_sign_in(page, activation_link(system, username), username)
    page.click(f"text={project_no}")
    expect(page.locator("#upload")).to_be_visible()
    return project_no


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 5,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def test_activation_mail_link_weak_password_hint_and_sign_in(system, context):
    username, project_no = new_customer_with_order(system)
    link = activation_link(system, username)
    assert link.startswith(system.base_url)
    page = context.new_page()
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Passwort festlegen")

    page.fill("#password", "kurz")
    expect(page.locator('#password-rules [data-rule="length"]')).to_have_class(
        re.compile("rule-broken")
    )
    page.fill("#password", username)
    expect(page.locator('#password-rules [data-rule="username"]')).to_have_class(
        re.compile("rule-broken")
    )
    page.fill("#password", PASSWORD)
    expect(page.locator('#password-rules [data-rule="length"]')).to_have_class(
        re.compile("rule-ok")
    )
    page.fill("#password_confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login\?username="))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/orders$"))
    expect(page.locator("#order-list")).to_contain_text(project_no)


def test_two_files_upload_with_progress_and_scan_results_appear_live(system, context, tmp_path):
    page = context.new_page()
    signed_in_at_order(system, page)
    clean = tmp_path / "Broschüre Umschlag.pdf"
    clean.write_bytes(b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024))
    infected = tmp_path / "rechnung.pdf"
    infected.write_bytes(b"%PDF-1.4\n" + EICAR)
    page.evaluate("window.stillTheSamePage = true")
    throttle_uploads(page, 1024 * 1024)

    page.set_input_files("#file-input", [str(clean), str(infected)])

    seen = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(seen) < 3:
        value = page.eval_on_selector(".upload-overall progress", "bar => bar.value / bar.max")
        seen.add(round(value, 1))
        time.sleep(0.2)
    assert any(0 < value < 1 for value in seen), f"the bar never moved between 0 and 1: {seen}"
    expect(page.locator("#files tr[data-state=clean]")).to_contain_text(clean.name, timeout=30000)
    rejected = page.locator("#files tr[data-state=rejected]")
    expect(rejected).to_contain_text("abgewiesen: Test.EICAR", timeout=30000)
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
    # The upload widget's lines follow the list: no "received – scan follows" any more.
    lines = page.locator(".upload-item")
    expect(lines.filter(has_text=clean.name)).to_contain_text("sauber")
    expect(lines.filter(has_text=infected.name)).to_contain_text("abgewiesen: Test.EICAR")
    expect(lines.filter(has_text="Virenprüfung folgt")).to_have_count(0)


def test_interrupted_upload_resumes_after_reload_with_the_right_checksum(system, context, tmp_path):
    page = context.new_page()
    project_no = signed_in_at_order(system, page)
    big = tmp_path / "Katalog 2027.pdf"
    with big.open("wb") as handle:
        handle.write(b"%PDF-1.7\n")  # the portal accepts what starts like a PDF
        for _ in range(24):
            handle.write(os.urandom(1024 * 1024))
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    throttle_uploads(page, 3 * 1024 * 1024)
    page.set_input_files("#file-input", str(big))
    deadline = time.monotonic() + 30
    while page.eval_on_selector(".upload-item progress", "bar => bar.value / bar.max") < 0.3:
        assert time.monotonic() < deadline, "upload did not start"
        time.sleep(0.1)
    page.close()  # the customer closes the tab half-way

    bind_database(system.settings.database.url)
    try:
        partial = OrderFile.get(OrderFile.display_name == big.name)
        assert 0 < partial.received_bytes < partial.size
    finally:
        database.close()

    page = context.new_page()
    page.goto(f"{system.base_url}/orders/{project_no}")
    page.set_input_files("#file-input", str(big))
    expect(page.locator(".upload-item.upload-done")).to_have_count(1, timeout=60000)

    bind_database(system.settings.database.url)
    try:
        files = list(OrderFile.select().where(OrderFile.display_name == big.name))
        assert len(files) == 1, "the upload continued instead of starting again"
        assert files[0].sha256 == expected
        assert files[0].received_at is not None
    finally:
        database.close()


def test_agent_delivers_to_the_hotfolder_and_staff_see_it_there(system, browser, context, tmp_path):
    page = context.new_page()
    project_no = signed_in_at_order(system, page)
    proof = tmp_path / "Plakat A1 „Sommerfest“ & Co.pdf"
    proof.write_bytes(b"%PDF-1.7\n" + os.urandom(200_000))
    page.set_input_files("#file-input", str(proof))
    expect(page.locator("#files tr[data-state=clean]")).to_contain_text("Plakat", timeout=30000)

    agent = system.agent
    deadline = time.monotonic() + 30

    def notifications() -> list[Path]:
        return [p for p in agent.notification_dir.glob("*.xml") if project_no in p.read_text()]

    while not notifications() and time.monotonic() < deadline:
        time.sleep(0.2)
    xml_files = notifications()
    assert len(xml_files) == 1, f"no XML notification for {project_no}: {system.log('agent')}"
    schema = etree.XMLSchema(
        etree.parse(str(resources.files("shared") / "data/job-notification.xsd"))
    )
    document = etree.parse(str(xml_files[0]))
    schema.assertValid(document)
    delivered = list((agent.hotfolder_root).rglob("Plakat*"))
    assert len(delivered) == 1 and delivered[0].read_bytes() == proof.read_bytes()

    staff_browser = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    staff = staff_browser.new_page()
    staff.goto(f"{system.base_url}/staff/login")
    staff.fill("#username", "anna")
    staff.fill("#password", STAFF_PASSWORD)
    staff.click("button[type=submit]")
    expect(staff).to_have_url(re.compile(r"/staff/$"))
    staff.goto(f"{system.base_url}/staff/hotfolder?q={project_no}")
    row = staff.locator("tr[data-stage=in_hotfolder]")
    try:
        expect(row).to_contain_text("Plakat", timeout=15000)
        expect(row).to_contain_text("im Hotfolder")
    finally:
        path = ARTIFACTS / "test_agent_delivers_to_the_hotfolder_and_staff_see_it_there-staff.png"
        staff.screenshot(path=str(path), full_page=True)
        staff_browser.close()


def test_expired_link_leads_to_a_new_one_and_english_is_one_click_away(system, context):
    username, _ = new_customer_with_order(system)
    old_link = activation_link(system, username)
    bind_database(system.settings.database.url)
    try:
        ActivationToken.update(expires_at=utcnow() - timedelta(minutes=1)).execute()
    finally:
        database.close()
    page = context.new_page()
    page.goto(old_link)
    expect(page.locator("h1")).to_have_text("Dieser Link ist nicht mehr gültig")
    mails_before = len(system.mail.received)
    page.fill("#request-username", username)
    page.click("#request-link-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Bitte prüfen Sie Ihre E-Mails")
    new_link = activation_link(system, username, after=mails_before)
    assert new_link != old_link

    page.goto(new_link)
    page.click("text=English")
    expect(page.locator("h1")).to_have_text("Choose your password")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_sign_in_and_upload_with_the_keyboard_only(system, context, tmp_path):
    username, project_no = new_customer_with_order(system)
    page = context.new_page()
    # Intercepting file dialogs from the start: switched on only at the key press, Chromium
    # sometimes opened the dialog before the interception took effect and the test missed it.
    page.on("filechooser", lambda _chooser: None)
    page.goto(activation_link(system, username))
    # autofocus lands once the page has settled: typing before would lose the first keys
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")  # on to "repeat the password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("#password")).to_be_focused()  # the username is filled in
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/orders$"))

    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == project_no:
            break
    page.keyboard.press("Enter")
    expect(page.locator("#upload.upload-ready")).to_be_visible()  # upload.js has started
    choose_files = "document.activeElement.classList.contains('choose-files')"
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate(choose_files):
            break
    assert page.evaluate(choose_files), "the 'choose files' button is reachable by Tab"
    flyer = tmp_path / "flyer.pdf"
    flyer.write_bytes(b"%PDF-1.7\nclean")
    with page.expect_file_chooser(timeout=5000) as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(flyer))
    expect(page.locator("#files tr[data-state=clean]")).to_contain_text("flyer.pdf", timeout=30000)


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(e => e.type !== 'hidden' && !e.hidden && !(e.labels && e.labels.length)
                 && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML)"""


def test_every_form_field_has_a_label(system, context):
    username, project_no = new_customer_with_order(system)
    page = context.new_page()
    link = activation_link(system, username)
    for path in ("/login", "/activate", "/staff/login", link.removeprefix(system.base_url)):
        page.goto(system.base_url + path)
        assert page.evaluate(UNLABELLED) == [], path
    set_password_and_sign_in(page, link, username)
    for path in ("/orders", f"/orders/{project_no}"):
        page.goto(system.base_url + path)
        assert page.evaluate(UNLABELLED) == [], path


# --- staff run the shop from the browser ----------------------------------------------------


def shot(page: Page, name: str) -> None:
    """A screenshot of a staff page for test-artifacts/screenshots/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"staff-{name}.png"), full_page=True)


def staff_password_step(page: Page, system, username: str, password: str) -> None:
    page.goto(f"{system.base_url}/staff/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def mail_to(system, address: str, after: int) -> str:
    """The plain text of the first mail to ``address`` after the ``after``-th, waiting."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in system.mail.received[after:]:
            if address in received.rcpt_tos:
                return received.message.get_body(preferencelist=("plain",)).get_content()
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address}")


def test_staff_create_a_customer_and_an_order_set_the_owner_and_the_customer_is_mailed(
    system, context
):
    number = next(numbers)
    customer_no, project_no = f"UI{number}", f"UI-A{number}"
    address = f"ui{number}@kunde.example"
    page = context.new_page()
    staff_password_step(page, system, "anna", STAFF_PASSWORD)
    expect(page).to_have_url(re.compile(r"/staff/$"))

    page.click("#staff-nav >> text=Kunden")
    expect(page.locator("h1")).to_have_text("Kunden")
    page.click("text=Neuer Kunde")
    page.fill("#customer_no", customer_no)
    page.fill("#name", "")
    page.fill("#email", "keine-adresse")
    page.click("#customer-form button[type=submit]")
    # Refused inline: the form stays with what was typed, the problems next to the fields.
    expect(page.locator("#name-error")).to_have_text("Bitte ausfüllen.")
    expect(page.locator("#email-error")).to_be_visible()
    expect(page.locator("#customer_no")).to_have_value(customer_no)
    shot(page, "customer-new-refused")
    page.fill("#name", f"Werbeagentur {number}")
    page.fill("#email", address)
    page.check("#portal_enabled")
    page.click("#customer-form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/staff/customers/{customer_no}$"))
    page.fill("#contact-email", f"grafik{number}@kunde.example")
    page.fill("#contact-name", "Greta Grafik")
    page.click("#contacts button:has-text('Ansprechpartner speichern')")
    expect(page.locator("#contacts")).to_contain_text("Greta Grafik")
    shot(page, "customer")

    page.click("text=Neuer Auftrag")
    expect(page.locator("#customer_no")).to_have_value(customer_no)
    page.fill("#project_no", project_no)
    page.fill("#job_description", "Plakat A1, 4/0-farbig")
    page.fill("#due_date", "2027-03-01")
    page.select_option("#owner", "")
    shot(page, "order-new")
    mails_before = len(system.mail.received)
    page.click("#order-new-form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/staff/orders/{project_no}$"))
    expect(page.locator(".flashes")).to_contain_text("Aktivierungsmail ist auf dem Weg")

    page.click("#order-details summary")
    page.select_option("#owner", "anna")
    page.click("#order-form button[type=submit]")
    expect(page.locator("#order-owner")).to_have_text("Anna Muster")
    page.fill("#ticket-ticket_no", "T1")
    page.fill("#ticket-title", "Korrekturabzug")
    page.click("#tickets button[type=submit]")
    expect(page.locator("#tickets")).to_contain_text("Korrekturabzug")
    shot(page, "order")

    text = mail_to(system, address, mails_before)
    assert project_no in text and customer_no.lower() in text
    link = LINK.search(text).group(0)

    page.click("#staff-nav >> text=Aufträge")
    page.select_option("#order-owner", "anna")
    expect(page).to_have_url(re.compile(r"owner=anna"))  # the filtered list, live
    expect(page.locator("#order-table tr[data-state]")).to_have_count(1)
    expect(page.locator("#order-table")).to_contain_text(project_no)
    shot(page, "orders")
    page.goto(f"{system.base_url}/staff/customers/{customer_no}")
    expect(page.locator("#logins tr[data-state=active]")).to_contain_text(customer_no.lower())
    shot(page, "customer-logins")
    page.goto(f"{system.base_url}/staff/audit/?customer={customer_no}")
    expect(page.locator("#audit-list")).to_contain_text("Auftrag angelegt")
    shot(page, "audit")
    page.goto(f"{system.base_url}/staff/customers/")
    shot(page, "customers")

    customer = context.browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    try:
        visitor = customer.new_page()
        set_password_and_sign_in(visitor, link, customer_no.lower())
        visitor.click(f"text={project_no}")
        expect(visitor.locator("#tickets")).to_contain_text("Korrekturabzug")
        expect(visitor.locator("#upload")).to_be_visible()
        shot(visitor, "customer-order-with-ticket")
    finally:
        customer.close()


def test_admin_pages_defaults_preview_and_staff_users(system, context):
    username, project_no = new_customer_with_order(system)
    page = context.new_page()
    staff_password_step(page, system, "anna", STAFF_PASSWORD)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    page.goto(f"{system.base_url}/staff/defaults/")
    page.fill("#hotfolder_delete_after_days", "45")
    page.check("input[name=apply_to][value=existing]")
    page.click("#defaults-form button[type=submit]")
    expect(page.locator("#defaults-preview")).to_be_visible()
    shot(page, "defaults-preview")
    page.click("#confirm-apply")
    expect(page.locator(".flashes")).to_contain_text("angewendet")
    shot(page, "defaults")
    page.goto(f"{system.base_url}/staff/users/")
    shot(page, "users")
    for path in (
        "/staff/customers/",
        "/staff/new-customer",
        "/staff/orders/",
        "/staff/new-order",
        "/staff/defaults/",
        "/staff/users/",
        "/staff/users/1",
        "/staff/audit/",
        "/staff/account/",
        f"/staff/customers/{username.upper()}",
        f"/staff/orders/{project_no}",
    ):
        page.goto(system.base_url + path)
        assert page.evaluate(UNLABELLED) == [], path


def test_a_new_staff_user_sets_a_password_and_signs_in_with_a_totp_code(system, browser, context):
    number = next(numbers)
    username, address = f"tom{number}", f"tom{number}@druckerei.example"
    admin = context.new_page()
    staff_password_step(admin, system, "anna", STAFF_PASSWORD)
    expect(admin).to_have_url(re.compile(r"/staff/$"))
    admin.click("#staff-nav >> text=Mitarbeiter")
    admin.fill("#username", username)
    admin.fill("#name", "Tom Typo")
    admin.fill("#email", address)
    mails_before = len(system.mail.received)
    admin.click("#staff-new-form button[type=submit]")
    expect(admin.locator(".flashes")).to_contain_text(address)
    shot(admin, "user")

    text = mail_to(system, address, mails_before)
    link = re.search(r"http://127\.0\.0\.1:\d+/staff/activate/[\w-]+", text).group(0)
    assert "Passwort" in text and PASSWORD not in text
    tom_context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    try:
        tom = tom_context.new_page()
        tom.goto(link)
        tom.fill("#password", PASSWORD)
        tom.fill("#password_confirm", PASSWORD)
        tom.click("button[type=submit]")
        expect(tom).to_have_url(re.compile(r"/staff/login"))
        staff_password_step(tom, system, username, PASSWORD)
        expect(tom).to_have_url(re.compile(r"/staff/$"))

        tom.click("#staff-nav >> text=Mein Konto")
        tom.click("text=Zwei-Faktor-Anmeldung einrichten")
        expect(tom.locator("img.qr")).to_be_visible()
        secret = tom.locator("#totp-secret").inner_text().replace(" ", "")
        shot(tom, "two-factor-setup")
        totp = pyotp.TOTP(secret)
        tom.fill("#code", totp.now())
        tom.click("#two-factor button[type=submit]")
        expect(tom.locator("#recovery-codes li")).to_have_count(10)
        shot(tom, "two-factor-recovery-codes")
        tom.click("button:has-text('Abmelden')")

        staff_password_step(tom, system, username, PASSWORD)
        expect(tom).to_have_url(re.compile(r"/staff/login/code$"))
        shot(tom, "two-factor-sign-in")
        tom.fill("#code", "000000")
        tom.click("button[type=submit]")
        expect(tom.locator("#code-error")).to_be_visible()
        # The code the app shows in the next 30-second step (the one used to set it up
        # cannot be used twice).
        tom.fill("#code", totp.at(time.time() + 30))
        tom.click("button[type=submit]")
        expect(tom).to_have_url(re.compile(r"/staff/$"))
        expect(tom.locator(".who")).to_have_text("Tom Typo")
    finally:
        tom_context.close()


def test_staff_and_customer_take_turns_in_one_browser(system, context):
    page = context.new_page()
    username, _project_no = new_customer_with_order(system)
    set_password_and_sign_in(page, activation_link(system, username), username)

    page.goto(f"{system.base_url}/staff/login")
    page.fill("#username", "anna")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/staff/$"))

    page.goto(f"{system.base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/orders$"))


def staff_page(system, browser) -> Page:
    """A staff member (anna) signed in, in a browser context of its own."""
    staff_context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    staff = staff_context.new_page()
    staff.goto(f"{system.base_url}/staff/login")
    staff.fill("#username", "anna")
    staff.fill("#password", STAFF_PASSWORD)
    staff.click("button[type=submit]")
    expect(staff).to_have_url(re.compile(r"/staff/$"))
    return staff


def sent_mail(system, subject_part: str, after: int):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in system.mail.received[after:]:
            if subject_part in received.message["Subject"]:
                return received.message
        time.sleep(0.2)
    raise AssertionError(f"no mail with {subject_part!r}: {system.log('worker')}")


def test_staff_message_goes_out_by_mail_and_the_reply_appears_on_the_customers_page(
    system, browser, context, dovecot, mailbox_user
):
    page = context.new_page()
    project_no = signed_in_at_order(system, page)
    username = page.locator(".who").inner_text().strip()
    expect(page.locator("#messages")).to_contain_text("Noch keine Nachrichten")
    page.evaluate("window.stillTheSamePage = true")

    staff = staff_page(system, browser)
    try:
        staff.goto(f"{system.base_url}/staff/orders/{project_no}")
        staff.fill("#message-body", "Der Proof ist fertig. Bitte prüfen Sie die Farben.")
        mails_before = len(system.mail.received)
        staff.click("#message-form button[type=submit]")
        expect(staff.locator("#messages")).to_contain_text("Der Proof ist fertig.")
        expect(staff.locator("#message-body")).to_have_value("")
    finally:
        staff.screenshot(path=str(ARTIFACTS / "test_conversation-staff.png"), full_page=True)
        staff.context.close()
    # The customer's open page shows the staff message without a reload.
    expect(page.locator("#messages")).to_contain_text("Der Proof ist fertig.", timeout=15000)

    sent = sent_mail(system, f"[Auftrag {project_no}]", mails_before)
    assert sent["Reply-To"] == MAILBOX_ADDRESS
    reply = EmailMessage()
    reply["From"] = f"Kunde <{username}@example.com>"
    reply["To"] = MAILBOX_ADDRESS
    reply["Subject"] = f"Re: {sent['Subject']}"
    reply["Message-ID"] = f"<reply-{project_no}@example.com>"
    reply["In-Reply-To"] = sent["Message-ID"]
    reply.set_content(
        "Die Farben passen, Freigabe erteilt.\n\n"
        "Am 4. Mai 2026 schrieb Druckerei:\n> Der Proof ist fertig.\n"
    )
    dovecot.append(mailbox_user, "INBOX", reply)

    message = page.locator("#messages article").last
    expect(message).to_contain_text("Freigabe erteilt.", timeout=15000)
    expect(message).to_contain_text("per E-Mail")
    expect(message.locator("details.quoted")).to_have_count(1)
    expect(message.locator("details.quoted")).not_to_have_attribute("open", "")
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"


def test_a_customer_message_with_an_attached_file(system, context, tmp_path):
    page = context.new_page()
    signed_in_at_order(system, page)
    attachment = tmp_path / "Korrektur Seite 3.pdf"
    attachment.write_bytes(b"%PDF-1.7\n" + os.urandom(300_000))

    page.fill("#message-body", "Hier die korrigierte Seite 3.")
    page.set_input_files("#message-upload-file-input", str(attachment))
    expect(page.locator("#message-upload .upload-item.upload-done")).to_have_count(1, timeout=30000)
    page.click("#message-form button[type=submit]")

    message = page.locator("#messages article").last
    expect(message).to_contain_text("Hier die korrigierte Seite 3.")
    expect(message.locator("li[data-state=clean]")).to_contain_text(attachment.name, timeout=30000)
    # The form is fresh for the next message, its attachment area ready again.
    expect(page.locator("#message-form input[name=upload]")).to_have_count(0)
    expect(page.locator("#message-upload.upload-ready")).to_have_count(1)


def staff_in_own_browser(browser: Browser, system) -> tuple:
    """A staff user's own browser context and page, signed in."""
    staff_context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    staff = staff_context.new_page()
    staff.goto(f"{system.base_url}/staff/login")
    staff.fill("#username", "anna")
    staff.fill("#password", STAFF_PASSWORD)
    staff.click("button[type=submit]")
    expect(staff).to_have_url(re.compile(r"/staff/$"))
    return staff_context, staff


def proof_link(system, project_no: str, version: int) -> str:
    """The approval link in the mail about proof ``version`` of ``project_no``."""
    wanted = re.compile(rf"http://127\.0\.0\.1:\d+/orders/{project_no}/proofs/{version}\b")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in reversed(system.mail.received):
            text = received.message.get_body(preferencelist=("plain",)).get_content()
            found = wanted.search(text)
            if found:
                return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no proof mail for {project_no}: {system.log('worker')[-2000:]}")


LOADED = "image => image.complete && image.naturalWidth > 0"


def test_preflight_warning_with_thumbnail_then_proof_approval(system, browser, context, tmp_path):
    page = context.new_page()
    project_no = signed_in_at_order(system, page)

    offer = tmp_path / "Angebot.docx"
    offer.write_bytes(b"PK\x03\x04 not really")
    page.set_input_files("#file-input", str(offer))
    refused = page.locator(".upload-item.upload-failed")
    expect(refused).to_contain_text("Dateien vom Typ Office-Dokument werden nicht angenommen.")

    # A GIF called .pdf: the server reads its first bytes while the 4 MiB chunk arrives.
    picture = tmp_path / "Plakat.pdf"
    picture.write_bytes(b"GIF89a" + os.urandom(6 * 1024 * 1024))
    page.set_input_files("#file-input", str(picture))
    expect(refused.filter(has_text="Plakat.pdf")).to_contain_text(
        "Dateien vom Typ GIF werden nicht angenommen.", timeout=15000
    )

    flyer = tmp_path / "Flyer ohne Beschnitt.pdf"
    flyer.write_bytes(print_pdf(bleed_mm=None))
    page.set_input_files("#file-input", str(flyer))
    row = page.locator("#files tr[data-preflight=warnings]")
    expect(row).to_contain_text("Kein Beschnitt auf Seite 1.", timeout=30000)
    expect(row).to_contain_text("Druckdaten: bitte prüfen")
    thumbnail = row.locator(".thumbnail img")
    expect(thumbnail).to_be_visible()
    page.wait_for_function(LOADED, arg=thumbnail.element_handle(), timeout=10000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    row.screenshot(path=str(ARTIFACTS / "preflight-file-row.png"))
    page.locator("#files").screenshot(path=str(ARTIFACTS / "preflight-file-list.png"))

    staff_context, staff = staff_in_own_browser(browser, system)
    try:
        staff.goto(f"{system.base_url}/staff/orders/{project_no}?folder=In+Bearbeitung")
        proof = tmp_path / "Korrektur Flyer.pdf"
        proof.write_bytes(print_pdf(pages=2))
        staff.set_input_files("#file-input", str(proof))
        expect(staff.locator("#files tr[data-preflight=ok]")).to_contain_text(
            "Korrektur Flyer", timeout=30000
        )
        staff.reload()
        staff.select_option("#proof-file", label=proof.name)
        staff.click("#proofs button[type=submit]")
        expect(staff.locator("#proof-1")).to_contain_text("wartet auf Freigabe")
    finally:
        staff.screenshot(path=str(ARTIFACTS / "proof-staff-order-page.png"), full_page=True)

    page.goto(proof_link(system, project_no, 1))
    images = page.locator(".proof-pages img")
    expect(images).to_have_count(2)
    for index in range(2):
        page.wait_for_function(LOADED, arg=images.nth(index).element_handle(), timeout=30000)
    page.fill("#comment", "Passt so, bitte drucken.")
    page.screenshot(path=str(ARTIFACTS / "proof-approval-page.png"), full_page=True)
    page.click("button[value=approved]")
    expect(page.locator("#proof-page")).to_have_attribute("data-state", "approved")
    expect(page.locator(".flash")).to_contain_text("Version 1 zum Druck freigegeben")

    bind_database(system.settings.database.url)
    try:
        decided = Proof.get(Proof.file_name == proof.name)
        assert decided.decision == Proof.DECISION_APPROVED
        assert decided.decided_by_username == project_no.replace("A", "k")
        assert decided.decided_from == "127.0.0.1"
        assert decided.decision_sha256 == hashlib.sha256(proof.read_bytes()).hexdigest()
        assert decided.decision_comment == "Passt so, bitte drucken."
    finally:
        database.close()
    staff.reload()
    expect(staff.locator("#proof-1")).to_have_attribute("data-state", "approved")
    staff.screenshot(path=str(ARTIFACTS / "proof-staff-decided.png"), full_page=True)
    staff_context.close()

    # The workflow hears of both through the agent: the flyer's job notification carries
    # its preflight, and the decision lies next to the jobs as an approval file.
    schema = etree.XMLSchema(
        etree.parse(str(resources.files("shared") / "data/job-notification.xsd"))
    )
    notifications = system.agent.notification_dir
    approval = notifications / f"{project_no}_proof-1.xml"
    deadline = time.monotonic() + 30
    while not approval.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert approval.exists(), system.log("agent")
    document = etree.parse(str(approval))
    schema.assertValid(document)
    assert document.findtext("approval/decision/result") == "approved"
    assert document.findtext("approval/decision/sha256") == decided.decision_sha256
    [job] = [p for p in notifications.glob(f"{project_no}_*.xml") if flyer.name in p.read_text()]
    job_document = etree.parse(str(job))
    schema.assertValid(job_document)
    finding = job_document.find("files/file/preflight/finding[@code='bleed_missing']")
    assert finding is not None and finding.text.startswith("Kein Beschnitt auf Seite 1.")
