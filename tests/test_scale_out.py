"""Two portal nodes behind nginx with one database and one storage directory (issue 19).

Each test talks to the nodes the way a shop's load balancer would spread a browser's
requests: an upload begun on one node goes on through the other, a session started on one
is known to the other, rate limits count across both, and a node killed in the middle of
an upload costs the browser nothing but a retry. The hotfolder agent works through either
node: a file that turned clean through one node wakes an agent waiting on the other, an
agent behind nginx goes on through the other node when its node dies (a broken-off
download continues there), and a staff file dropped for a customer arrives through nginx.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, hotfolder_of, notifications, visible_files, wait_for
from cluster_helpers import Visitor, running_cluster, tus_create, tus_offset
from cluster_helpers import tus_send as send
from playwright.sync_api import expect, sync_playwright
from postgres_helpers import create_database
from system_helpers import STAFF_PASSWORD

from hotfolder_agent.download import STEP_DOWNLOAD_STARTED
from hotfolder_agent.seams import PAUSE_AT, PAUSE_MARKER, PAUSE_SECONDS

PASSWORD = "Zwei Kaffee und ein Druckbogen"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHUNK_BYTES = 4 * 1024 * 1024  # [portal] upload_chunk_bytes of the cluster
# How soon a file that turned clean must be in the hotfolder of an agent waiting for work:
# room for a loaded CI machine above the benchmark's target (bench/README.md), and still
# far below the 25 s of a long poll that missed the wake-up.
WAKE_UP_SECONDS = 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, clamd, postgres_cluster):
    directory = tmp_path_factory.mktemp("cluster")
    limits = {"login_attempts_per_minute": 4, "upload_chunk_bytes": "4M"}
    database = {}
    if postgres_cluster is not None:  # --database postgresql: the nodes share PostgreSQL
        database = {"database": {"url": create_database(postgres_cluster, "scale_out")}}
    with running_cluster(directory, clamd, sticky=True, portal=limits, **database) as running:
        yield running


@pytest.fixture(autouse=True)
def every_node_up(cluster):
    """A node killed by an earlier test is started again first."""
    cluster.revive()


@pytest.fixture(scope="module")
def staff(cluster) -> Visitor:
    """Anna, signed in once (through nginx): her session counts on every node, and each
    sign-in counts against the limit of four a minute."""
    anna = Visitor(cluster.base_url)
    assert anna.sign_in(cluster.base_url, "anna", STAFF_PASSWORD, "/staff/login").status == 302
    return anna


@pytest.fixture
def agents():
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def customer(cluster, number: str, hotfolder: bool = False) -> tuple[str, str, Visitor]:
    """A customer with an order, its password chosen; (username, project_no, fresh visitor).
    Only customers with ``hotfolder`` have their files taken by hotfolder agents."""
    address = f"k{number}@kunde.example"
    cluster.api(
        "POST",
        "/customers",
        {
            "customer_no": f"K{number}",
            "name": f"Kunde {number}",
            "email": address,
            "portal_enabled": True,
            "create_hotfolder": hotfolder,
        },
    )
    cluster.api("POST", "/orders", {"project_no": f"A{number}", "customer_no": f"K{number}"})
    # Through a node, so that the visitor's own address counts: through nginx every visitor
    # of the tests is 127.0.0.1, and four password choices a minute are allowed.
    link = cluster.activation_link(address).replace(cluster.base_url, cluster.node_urls[0], 1)
    visitor = Visitor(cluster.base_url)
    assert visitor.choose_password(link, PASSWORD).status == 302
    return f"k{number}", f"A{number}", Visitor(cluster.base_url)


def order_file(
    cluster, project_no: str, name: str, state: str = "clean", timeout: float = 60, **where
) -> dict:
    """The file as the workflow API shows it (through nginx or ``node=``) once in ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for file in cluster.api("GET", f"/orders/{project_no}/files", **where)["files"]:
            if file["name"] == name and file["state"] == state:
                return file
        time.sleep(0.1)
    raise AssertionError(
        f"{name} did not become {state}: {cluster.api('GET', f'/orders/{project_no}/files')}"
    )


def clean_file_sha(cluster, project_no: str, name: str, timeout: float = 60) -> str:
    """The SHA-256 the portal recorded once the file is scanned clean."""
    return order_file(cluster, project_no, name, "clean", timeout)["sha256"]


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


# --- the hotfolder agent through either node -----------------------------------------------


def upload(cluster, node: str, username: str, project_no: str, name: str, data: bytes) -> None:
    """The customer uploads ``data`` through ``node`` alone, in tus chunks of the limit."""
    visitor = Visitor(cluster.base_url)
    assert visitor.sign_in(node, username, PASSWORD).status == 302
    visitor.form_token(f"{node}/orders/{project_no}")
    location = tus_create(visitor, node, project_no, name, len(data))
    offset = 0
    while offset < len(data):
        offset = send(visitor, node, location, offset, data[offset : offset + CHUNK_BYTES])


def hotfolder_stage(staff: Visitor, node: str, project_no: str, file_id: int) -> str:
    """The file's stage on the staff page "Hotfolder" as ``node`` shows it."""
    page = staff.request("GET", f"{node}/staff/hotfolder/?q={project_no}")
    assert page.status == 200, (node, page.status)
    found = re.search(rf'id="journey-{file_id}" data-stage="(\w+)"', page.text)
    return found.group(1) if found else ""


def shown_in_hotfolder(staff: Visitor, nodes: list[str], project_no: str, file_id: int) -> None:
    """Staff see the file "in hotfolder" through each of ``nodes``."""
    for node in nodes:
        wait_for(
            lambda node=node: hotfolder_stage(staff, node, project_no, file_id) == "in_hotfolder"
        )


def job_notifications(settings, project_no: str) -> list[ET.Element]:
    """The XML job notifications the agent wrote for the order."""
    roots = [ET.parse(path).getroot() for path in notifications(settings)]
    return [root for root in roots if root.findtext("order/number") == project_no]


def delivered_once(settings, customer_no: str, project_no: str, name: str, data: bytes) -> None:
    """One copy with the right bytes in the order's hotfolder, one XML naming it."""
    folder = hotfolder_of(settings, customer_no, project_no)
    assert visible_files(folder) == [name], "one copy, nothing delivered twice"
    assert hashlib.sha256((folder / name).read_bytes()).digest() == hashlib.sha256(data).digest()
    [xml] = wait_for(lambda: job_notifications(settings, project_no))
    [file] = xml.findall("files/file")
    assert file.findtext("name") == name
    assert file.findtext("sha256") == hashlib.sha256(data).hexdigest()


def agent_calls(cluster, index: int, since: list[int]) -> list[tuple[str, str]]:
    """The agent API requests node ``index`` answered since ``since`` (request, status), as
    its access log has them (a request is logged once answered)."""
    return re.findall(
        r'"(\w+ /api/v1/agent/\S*) HTTP/1\.1" (\d+)', cluster.node_log(index, since[index])
    )


def node_serving_agent(cluster, since: list[int]) -> int:
    """The node nginx sends the agent to (sticky: one): the one that answered its heartbeats.
    Its long poll is out by the second heartbeat."""

    def serving() -> list[int]:
        return [
            index
            for index in range(len(cluster.nodes))
            if sum("/heartbeat" in call for call, _status in agent_calls(cluster, index, since))
            >= 2
        ]

    [index] = wait_for(serving, timeout=30)
    assert not agent_calls(cluster, 1 - index, since), "nginx keeps one client on one node"
    return index


def delivered_within(folder: Path, name: str, clean_at: float) -> float:
    """Seconds from ``clean_at`` (the file turned clean) until it is in ``folder``."""
    wait_for(lambda: name in visible_files(folder), timeout=60)
    return time.monotonic() - clean_at


@pytest.mark.parametrize("agent_node", [0, 1], ids=["agent-on-node-1", "agent-on-node-2"])
def test_an_agent_on_one_node_gets_what_the_other_node_received_at_once(
    cluster, staff, agents, tmp_path, agent_node
):
    number = f"20{agent_node}"
    username, project_no, _visitor = customer(cluster, number, hotfolder=True)
    agent_url, upload_url = cluster.node_urls[agent_node], cluster.node_urls[1 - agent_node]
    since = cluster.node_log_sizes()
    settings = cluster.agent_settings(tmp_path / "agent", agent_url)
    agents.append(AgentProcess(settings))
    assert node_serving_agent(cluster, since) == agent_node  # waiting in its long poll there

    data = print_data(1024 * 1024 + 5)
    upload(cluster, upload_url, username, project_no, "Flyer.pdf", data)
    file = order_file(cluster, project_no, "Flyer.pdf", node=upload_url)
    clean_at = time.monotonic()

    folder = hotfolder_of(settings, f"K{number}", project_no)
    elapsed = delivered_within(folder, "Flyer.pdf", clean_at)
    assert elapsed < WAKE_UP_SECONDS, f"the wake-up crossed nodes only after {elapsed:.1f} s"
    delivered_once(settings, f"K{number}", project_no, "Flyer.pdf", data)
    shown_in_hotfolder(staff, cluster.node_urls, project_no, file["id"])
    calls = agent_calls(cluster, 1 - agent_node, since)
    assert not calls, f"the agent talks to its node only: {calls}"
    assert agents[0].terminate() == 0


def test_an_agent_behind_nginx_waits_on_the_other_node_when_its_node_dies(
    cluster, staff, agents, tmp_path
):
    username, project_no, _visitor = customer(cluster, "210", hotfolder=True)
    since = cluster.node_log_sizes()
    settings = cluster.agent_settings(tmp_path / "agent", cluster.base_url)
    agents.append(AgentProcess(settings))
    busy = node_serving_agent(cluster, since)
    survivor = cluster.node_urls[1 - busy]

    cluster.kill_node(busy)  # in the middle of the agent's long poll
    since = cluster.node_log_sizes()
    # The long poll broke off with the node (nginx answers 502: a POST is not passed on
    # once sent); the agent asks again and nginx sends it to the survivor.
    wait_for(lambda: agent_calls(cluster, 1 - busy, since), timeout=30)
    data = print_data(2 * 1024 * 1024 + 11)
    upload(cluster, survivor, username, project_no, "Falzflyer.pdf", data)
    file = order_file(cluster, project_no, "Falzflyer.pdf", node=survivor)
    clean_at = time.monotonic()

    folder = hotfolder_of(settings, "K210", project_no)
    elapsed = delivered_within(folder, "Falzflyer.pdf", clean_at)
    assert elapsed < WAKE_UP_SECONDS, f"the agent got the file {elapsed:.1f} s after it was clean"
    delivered_once(settings, "K210", project_no, "Falzflyer.pdf", data)
    calls = [call for call, _status in agent_calls(cluster, 1 - busy, since)]
    assert any(call.startswith("POST /api/v1/agent/leases") for call in calls), calls
    assert any(call.startswith("POST /api/v1/agent/deliveries") for call in calls), calls
    shown_in_hotfolder(staff, [survivor], project_no, file["id"])
    assert agents[0].terminate() == 0


def test_a_download_cut_off_by_a_dying_node_goes_on_from_the_other_node(
    cluster, staff, agents, tmp_path
):
    username, project_no, _visitor = customer(cluster, "220", hotfolder=True)
    first, second = cluster.node_urls
    # Larger than the test clamd scans (held for staff, who release it), and larger than
    # nginx and the sockets buffer, so that the node dies with most of it still unsent.
    data = print_data(40 * 1024 * 1024)
    upload(cluster, first, username, project_no, "Katalog.pdf", data)
    held = order_file(cluster, project_no, "Katalog.pdf", "too_large")

    since = cluster.node_log_sizes()
    marker = tmp_path / "download-started"
    settings = cluster.agent_settings(tmp_path / "agent", cluster.base_url)
    pause = {PAUSE_AT: STEP_DOWNLOAD_STARTED, PAUSE_MARKER: str(marker), PAUSE_SECONDS: "3"}
    agents.append(AgentProcess(settings, env=pause))
    busy = node_serving_agent(cluster, since)

    token = staff.form_token(f"{second}/staff/orders/{project_no}")
    back = f"/staff/orders/{project_no}"
    answer = staff.request(
        "POST", f"{second}/staff/files/{held['id']}/release", {"csrf_token": token, "back": back}
    )
    assert answer.status == 302, answer.text
    wait_for(marker.exists, timeout=30)  # the first MiB is on disk, the rest on its way
    cluster.kill_node(busy)
    since = cluster.node_log_sizes()

    folder = hotfolder_of(settings, "K220", project_no)
    wait_for(lambda: "Katalog.pdf" in visible_files(folder), timeout=60)
    delivered_once(settings, "K220", project_no, "Katalog.pdf", data)
    calls = agent_calls(cluster, 1 - busy, since)
    content = f"GET /api/v1/agent/files/{held['id']}/content"
    assert (content, "206") in calls, f"the rest came from the other node with Range: {calls}"
    shown_in_hotfolder(staff, [cluster.node_urls[1 - busy]], project_no, held["id"])
    log = agents[0].log
    assert len(re.findall(r"file=Katalog\.pdf action=delivered", log)) == 1, log
    assert agents[0].terminate() == 0


def test_a_staff_file_dropped_for_the_customer_arrives_through_nginx(
    cluster, staff, agents, tmp_path
):
    username, project_no, _visitor = customer(cluster, "230", hotfolder=True)
    settings = cluster.agent_settings(tmp_path / "agent", cluster.base_url)
    agents.append(AgentProcess(settings))
    # More than a form may carry (1 MiB), less than a chunk of the cluster (4 MiB): the
    # agent's tus requests carry up to 16 MiB, whatever [portal] upload_chunk_bytes says.
    data = print_data(3 * 1024 * 1024 + 3)
    dropped = hotfolder_of(settings, "K230", project_no) / "_to_customer" / "Final" / "Proof.pdf"
    dropped.parent.mkdir(parents=True)
    dropped.write_bytes(data)

    wait_for((dropped.parent / "sent" / "Proof.pdf").exists, timeout=60)
    for node in cluster.node_urls:
        file = order_file(cluster, project_no, "Proof.pdf", node=node)
        assert file["folder"] == "Final"
        assert file["sha256"] == hashlib.sha256(data).hexdigest()
    for node in cluster.node_urls:
        page = staff.request("GET", f"{node}/staff/orders/{project_no}")
        assert page.status == 200 and "Proof.pdf" in page.text, node
        # "Sent to customers from the hotfolder": the dropped file, "in the portal".
        transfers = staff.request("GET", f"{node}/staff/hotfolder/").text
        sent = re.escape(str(dropped)) + r'</code></td>\s*<td><span class="badge badge-ok">'
        assert re.search(sent, transfers), node
        customer_page = Visitor(cluster.base_url)
        assert customer_page.sign_in(node, username, PASSWORD).status == 302
        assert "Proof.pdf" in customer_page.request("GET", f"{node}/orders/{project_no}").text
    assert agents[0].terminate() == 0


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
