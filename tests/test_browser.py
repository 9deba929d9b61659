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
from importlib import resources
from itertools import count
from pathlib import Path

import pytest
from clamd_helpers import EICAR
from lxml import etree
from playwright.sync_api import Browser, Page, expect, sync_playwright
from system_helpers import ARTIFACTS, STAFF_PASSWORD, running_system

from shared.clock import utcnow
from shared.db import bind_database, database
from shared.models import ActivationToken, OrderFile

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


@pytest.fixture(scope="module")
def system(tmp_path_factory, clamd):
    directory = tmp_path_factory.mktemp("system")
    with running_system(directory, clamd, portal={"upload_chunk_bytes": "4M"}) as running:
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
    infected.write_bytes(EICAR)
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


def test_interrupted_upload_resumes_after_reload_with_the_right_checksum(system, context, tmp_path):
    page = context.new_page()
    project_no = signed_in_at_order(system, page)
    big = tmp_path / "Katalog 2027.pdf"
    with big.open("wb") as handle:
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
