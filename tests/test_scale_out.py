"""Two portal nodes behind nginx with one database and one storage directory (issue 19).

Each test talks to the nodes the way a shop's load balancer would spread a browser's
requests: an upload begun on one node goes on through the other, a session started on one
is known to the other, rate limits count across both, and a node killed in the middle of
an upload costs the browser nothing but a retry.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest
from cluster_helpers import STAFF_PASSWORD, Visitor, running_cluster, tus_create, tus_offset
from cluster_helpers import tus_send as send
from playwright.sync_api import expect, sync_playwright

PASSWORD = "Zwei Kaffee und ein Druckbogen"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, clamd):
    directory = tmp_path_factory.mktemp("cluster")
    limits = {"login_attempts_per_minute": 4, "upload_chunk_bytes": "4M"}
    with running_cluster(directory, clamd, sticky=True, portal=limits) as running:
        yield running


def customer(cluster, number: str) -> tuple[str, str, Visitor]:
    """A customer with an order, its password chosen; (username, project_no, fresh visitor)."""
    address = f"k{number}@kunde.example"
    cluster.api(
        "POST",
        "/customers",
        {
            "customer_no": f"K{number}",
            "name": f"Kunde {number}",
            "email": address,
            "portal_enabled": True,
        },
    )
    cluster.api("POST", "/orders", {"project_no": f"A{number}", "customer_no": f"K{number}"})
    visitor = Visitor(cluster.base_url)
    assert visitor.choose_password(cluster.activation_link(address), PASSWORD).status == 302
    return f"k{number}", f"A{number}", Visitor(cluster.base_url)


def clean_file_sha(cluster, project_no: str, name: str, timeout: float = 60) -> str:
    """The SHA-256 the portal recorded once the file is scanned clean."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for file in cluster.api("GET", f"/orders/{project_no}/files")["files"]:
            if file["name"] == name and file["state"] == "clean":
                return file["sha256"]
        time.sleep(0.3)
    raise AssertionError(
        f"{name} was not scanned clean: {cluster.api('GET', f'/orders/{project_no}/files')}"
    )


def print_data(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


def test_an_upload_begun_on_one_node_is_finished_on_the_other(cluster):
    username, project_no, visitor = customer(cluster, "101")
    first, second = cluster.node_urls
    assert visitor.sign_in(first, username, PASSWORD).status == 302
    visitor.form_token(f"{first}/orders/{project_no}")
    data = print_data(3 * 1024 * 1024 + 17)

    location = tus_create(visitor, first, project_no, "Flyer.pdf", len(data))
    half = send(visitor, first, location, 0, data[: len(data) // 2])
    assert tus_offset(visitor, second, location) == half
    assert send(visitor, second, location, half, data[half:]) == len(data)

    assert clean_file_sha(cluster, project_no, "Flyer.pdf") == hashlib.sha256(data).hexdigest()


def test_a_session_counts_on_both_nodes_and_sign_out_ends_it_on_both(cluster):
    username, project_no, visitor = customer(cluster, "102")
    first, second = cluster.node_urls
    assert visitor.sign_in(first, username, PASSWORD).status == 302

    for node in (first, second):
        assert visitor.request("GET", f"{node}/orders/{project_no}").status == 200
    token = visitor.form_token(f"{second}/orders")
    assert visitor.request("POST", f"{second}/logout", {"csrf_token": token}).status == 302

    for node in (first, second):
        answer = visitor.request("GET", f"{node}/orders/{project_no}")
        assert answer.status == 302 and "/login" in answer.headers["Location"]


def test_failed_sign_ins_count_across_both_nodes(cluster):
    username, _project_no, _visitor = customer(cluster, "103")
    answers = []
    for attempt in range(10):
        node = cluster.node_urls[attempt % 2]
        answers.append(Visitor(cluster.base_url).sign_in(node, username, "falsch").status)
    # login_attempts_per_minute = 4: four wrong passwords are answered, then the limit holds.
    assert answers.count(401) == 4, answers
    assert answers.count(429) == 6, answers


def test_staff_pages_answer_on_either_node(cluster):
    for node in cluster.node_urls:
        staff = Visitor(cluster.base_url)
        assert staff.sign_in(node, "anna", STAFF_PASSWORD, "/staff/login").status == 302
        for other in cluster.node_urls:
            for path in ("/staff/", "/staff/hotfolder/", "/staff/customers/"):
                assert staff.request("GET", other + path).status == 200, (other, path)


def node_receiving_uploads(cluster) -> int:
    """The node whose access log shows the upload's PATCH requests."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for index in range(len(cluster.nodes)):
            if re.search(r'"PATCH /uploads/', cluster.node_log(index)):
                return index
        time.sleep(0.1)
    raise AssertionError("no node received the upload")


def test_a_node_killed_during_an_upload_costs_the_browser_only_a_retry(cluster, clamd, tmp_path):
    username, project_no, _visitor = customer(cluster, "104")
    big = tmp_path / "Katalog.pdf"
    # Three chunks of upload_chunk_bytes (4 MiB), small enough for the test clamd to scan.
    data = print_data(min(9 * 1024 * 1024, clamd.limits.largest_scannable))
    big.write_bytes(data)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(locale="de-DE")
        page.goto(f"{cluster.base_url}/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{cluster.base_url}/orders/{project_no}")
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 5,
                "downloadThroughput": -1,
                "uploadThroughput": 2 * 1024 * 1024,
            },
        )
        page.set_input_files("#file-input", str(big))

        busy = node_receiving_uploads(cluster)
        cluster.kill_node(busy)

        row = page.locator("#files tr[data-state=clean]")
        expect(row).to_contain_text("Katalog.pdf", timeout=120_000)
        Path(tmp_path / "after-kill.png").write_bytes(page.screenshot(full_page=True))
        browser.close()
    survivor = cluster.node_log(1 - busy)
    assert re.search(r'"(HEAD|PATCH) /uploads/', survivor), "the other node took the upload over"
    assert clean_file_sha(cluster, project_no, "Katalog.pdf") == hashlib.sha256(data).hexdigest()
