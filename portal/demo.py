"""``ptportal demo``: the whole system on embedded defaults, with a customer to click through.

Writes ``<dir>/client.ini`` on first use (SQLite, local folders, a local SMTP
catcher storing .eml files), creates a staff admin, a demo customer and order,
starts the mail catcher, the worker and the portal, and prints where to look.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import click

from shared.config import load_settings

log = logging.getLogger(__name__)

DEMO_CUSTOMER = "K10001"
DEMO_ORDER = "A2026-0001"
MAIL_PORT = 2525
LINK = re.compile(r"https?://\S+/activate/[\w-]+\S*")

CLIENT_INI = """\
; ptportal demo configuration, written by `ptportal demo`. See client.ini.example.
[portal]
base_url = http://127.0.0.1:{port}
secret_key = {secret}
shop_name = Druckerei Demo

[database]
url = sqlite:///data/ptportal.db

[storage]
order_root = data/orders

[smtp]
server = 127.0.0.1
port = {mail_port}
email = portal@druckerei-demo.example
security = none

[worker]
queue_url = sqlite:///data/queue.db
"""


def _write_config(directory: Path, port: int) -> Path:
    ini = directory / "client.ini"
    if not ini.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ini.write_text(
            CLIENT_INI.format(port=port, secret=secrets.token_urlsafe(48), mail_port=MAIL_PORT),
            encoding="utf-8",
        )
    return ini


def _admin_password(directory: Path) -> str:
    file = directory / "admin-password.txt"
    if not file.exists():
        file.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        file.chmod(0o600)
    return file.read_text(encoding="utf-8").strip()


def _seed(ini: Path, directory: Path) -> None:
    """Create schema, admin, demo customer and order; queue a fresh activation mail."""
    from shared.accounts import is_activated, login_of, send_activation_mail
    from shared.customers import add_contact, upsert_customer
    from shared.db import bind_database, write_transaction
    from shared.models import Order, StaffUser
    from shared.orders import create_order, get_order
    from shared.schema import init_database
    from shared.staff import create_staff

    settings = load_settings(ini)
    bind_database(settings.database.url)
    init_database(settings.portal.shop_name)
    if not StaffUser.select().where(StaffUser.username == "admin").exists():
        create_staff(settings, "admin", "Demo Admin", "", True, _admin_password(directory))
    with write_transaction():
        customer, _ = upsert_customer(
            DEMO_CUSTOMER,
            name="Muster Werbeagentur GmbH",
            email="info@muster-agentur.example",
            portal_enabled=True,
            language="de",
        )
        add_contact(customer, "anna.beispiel@muster-agentur.example", "Anna Beispiel", True)
    if not Order.select().where(Order.project_no == DEMO_ORDER).exists():
        create_order(
            settings,
            project_no=DEMO_ORDER,
            customer_no=DEMO_CUSTOMER,
            job_description="Flyer DIN A5, 4/4-farbig, 5.000 Stück",
            due_date=date.today() + timedelta(days=7),
        )
    else:
        login = login_of(customer)
        if login is not None and not is_activated(login):
            with write_transaction():
                send_activation_mail(settings, login, get_order(DEMO_ORDER))


def _newest_link(mail_dir: Path, since: float, timeout: float) -> tuple[Path, str] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml"), reverse=True):
            if path.stat().st_mtime < since:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            match = LINK.search(body.get_content() if body else "")
            if match:
                return path, match.group(0)
        time.sleep(0.3)
    return None


def run_demo(directory: Path, port: int) -> None:
    """Start catcher, worker and portal; print the way in; stop all on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    ini = _write_config(directory, port)
    mail_dir = directory / "mail"
    command = [sys.executable, "-m", "portal", "--config", str(ini)]
    started = time.time()
    children = [
        subprocess.Popen(
            [*command, "mailcatcher", "--dir", str(mail_dir), "--port", str(MAIL_PORT)]
        ),
        subprocess.Popen([*command, "worker"]),
        subprocess.Popen([*command, "serve", "--bind", f"127.0.0.1:{port}"]),
    ]
    try:
        _seed(ini, directory)
        found = _newest_link(mail_dir, started - 1, timeout=90)
        settings = load_settings(ini)
        lines = [
            "",
            "ptportal demo is running. Stop it with Ctrl-C.",
            f"  Portal:            {settings.portal.base_url}",
            f"  Staff login:       admin / {_admin_password(directory)}",
            f"  Demo customer:     {DEMO_CUSTOMER}, order {DEMO_ORDER}",
            f"  Caught mails:      {mail_dir}/*.eml",
            f"  Order folders:     {settings.storage.order_root}",
        ]
        if found:
            lines += [f"  Activation mail:   {found[0]}", f"  Activation link:   {found[1]}"]
        else:
            lines.append("  (the demo customer is already activated; sign in as k10001)")
        click.echo("\n".join(lines))
        _wait(children)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _wait(children: list[subprocess.Popen]) -> None:
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    failed = [child.args[-1] for child in children if child.poll() is not None]
    raise SystemExit(f"demo stopped: a process ended unexpectedly ({', '.join(failed)})")
