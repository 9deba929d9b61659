"""The README's run command: `ptportal demo` starts everything and prints a working link."""

from __future__ import annotations

import configparser
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from queue import Empty, Queue

from smtp_helpers import free_port

from shared.db import bind_database, database
from shared.models import OrderMessage


def read_lines(stream, lines: Queue) -> None:
    for line in stream:
        lines.put(line)


def test_demo_prints_an_activation_link_that_opens_the_password_form(tmp_path):
    port, mail_port = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portal",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
            "--mail-port",
            str(mail_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: Queue = Queue()
    threading.Thread(target=read_lines, args=(demo.stdout, lines), daemon=True).start()
    output = []
    link = None
    try:
        while link is None:
            try:
                line = lines.get(timeout=60)
            except Empty:
                break
            output.append(line)
            match = re.search(r"Activation link:\s+(\S+)", line)
            link = match.group(1) if match else None
        assert link, "".join(output)
        assert link.startswith(f"http://127.0.0.1:{port}/activate/")
        page = urllib.request.urlopen(link, timeout=10).read().decode()
        assert 'name="password"' in page
        assert "k10001" in page
        text = "".join(output)
        assert "admin /" in text
        assert list((tmp_path / "demo" / "mail").glob("*.eml"))
        assert (
            tmp_path / "demo" / "data" / "orders" / "K10001" / "A2026-0001" / "Eingehend"
        ).is_dir()
        # The demo's mailbox on a local dovecot: the customer's question reaches the order.
        assert "Mailbox:           auftraege@druckerei-demo.example" in text
        assert "mailbox append demo --reply-to" in text
        bind_database(f"sqlite:///{tmp_path / 'demo' / 'data' / 'ptportal.db'}")
        try:
            deadline = time.monotonic() + 30
            while not OrderMessage.select().exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            question = OrderMessage.get()
            assert question.order.project_no == "A2026-0001"
            assert "170 g" in question.body
        finally:
            database.close()
        # Two hosts on one machine: the agent has its own directory and [agent] alone.
        agent_ini = configparser.ConfigParser(interpolation=None)
        agent_ini.read(tmp_path / "demo" / "agent" / "client.ini")
        assert agent_ini.sections() == ["agent"]
        assert agent_ini["agent"]["portal_url"] == f"http://127.0.0.1:{port}"
        assert agent_ini["agent"]["token"].startswith("pta_")
        portal_ini = configparser.ConfigParser(interpolation=None)
        portal_ini.read(tmp_path / "demo" / "client.ini")
        assert "agent" not in portal_ini.sections()
        assert "Hotfolder agent:" in text
        agent_log = tmp_path / "demo" / "logs" / "agent.log"
        drop = tmp_path / "demo" / "agent" / "hotfolders" / "K10001" / "A2026-0001"
        deadline = time.monotonic() + 60
        while not (drop / "_to_customer" / "Final").is_dir() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (drop / "_to_customer" / "Final").is_dir(), agent_log.read_text()
        assert "refuses" not in agent_log.read_text()
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
        stopped = False
    except OSError:
        stopped = True
    assert stopped, "the portal still answers after the demo stopped"
