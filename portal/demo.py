"""``ptportal demo``: the whole system on embedded defaults, with a customer to click through.

Writes ``<dir>/client.ini`` on first use (SQLite, local folders, a local SMTP
catcher storing .eml files, and — when Debian's dovecot is installed — a mailbox on a
local dovecot), creates a staff admin, a demo customer and order, starts the mail
catcher, dovecot, the worker, the portal and the hotfolder agent, and prints where to
look. On the first run two mails wait in the mailbox: the demo customer's question about
the order (it appears in the order's conversation) and one from a stranger (the staff
inbox).

The agent shows the two-host layout on one machine: it has a directory of its own
(``<dir>/agent``) with a client.ini holding ``[agent]`` alone — the portal's URL and an
agent token the demo creates — exactly what it would have on the internal workflow
server. It talks to the portal over plain HTTP on 127.0.0.1, which the agent allows for
the loopback interface only (nothing leaves the machine; no certificate warning in the
browser); between two hosts it requires HTTPS.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import click

from portal import local_dovecot
from portal.local_clamd import clamd_binary, signature_directory, write_clamd_conf
from shared.config import Settings, load_agent_settings, load_settings
from shared.worker import BackgroundTasks

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

[clamav]
address = {clamd_socket}
clamd_conf = clamav/clamd.conf

[worker]
queue_url = sqlite:///data/queue.db
{mailbox}"""

AGENT_INI = """\
; The hotfolder agent of the ptportal demo, written by `ptportal demo`: all it knows of
; the portal is its URL and an agent token (see client.ini.example, [agent]).
[agent]
portal_url = {portal_url}
token = {token}
state_dir = state
hotfolder_root = hotfolders
notification_dir = notifications
stable_seconds = 1
batch_window_seconds = 5
"""

MAILBOX_NAME = "demo"
MAILBOX_ADDRESS = "auftraege@druckerei-demo.example"
MAILBOX_INI = """
; A mailbox on the local dovecot `ptportal demo` starts (dovecot-imapd is installed).
[mailbox:demo]
host = localhost
port = {port}
user = auftraege
password = {password}
ca_file = dovecot/ca.pem
address = {address}
poll_interval_seconds = 10
"""
NO_MAILBOX_INI = """
; No mailbox: dovecot (Debian package dovecot-imapd) was not installed when this file was
; written. See README.md, "Try the conversation by mail".
"""
AGENT_TOKEN_NAME = "demo-agent"


def _write_config(directory: Path, port: int, mail_port: int) -> Path:
    ini = directory / "client.ini"
    if not ini.exists():
        directory.mkdir(parents=True, exist_ok=True)
        mailbox = NO_MAILBOX_INI
        if local_dovecot.usable():
            mailbox = MAILBOX_INI.format(
                port=_free_port(), password=secrets.token_urlsafe(18), address=MAILBOX_ADDRESS
            )
        ini.write_text(
            CLIENT_INI.format(
                port=port,
                secret=secrets.token_urlsafe(48),
                mail_port=mail_port,
                clamd_socket=directory.resolve() / "clamav" / "clamd.sock",
                mailbox=mailbox,
            ),
            encoding="utf-8",
        )
    return ini


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _agent_config(settings: Settings, directory: Path) -> Path:
    """The agent's own directory and client.ini, with a fresh agent token the first time."""
    from shared.accounts.api_tokens import SCOPE_AGENT, create_token, revoke_token
    from shared.errors import Conflict

    agent_dir = directory / "agent"
    ini = agent_dir / "client.ini"
    if ini.exists():
        return ini
    agent_dir.mkdir(parents=True, exist_ok=True)
    try:
        token = create_token(AGENT_TOKEN_NAME, SCOPE_AGENT)
    except Conflict:  # the agent's directory was removed: its old token goes with it
        revoke_token(AGENT_TOKEN_NAME)
        token = create_token(f"{AGENT_TOKEN_NAME}-{secrets.token_hex(2)}", SCOPE_AGENT)
    ini.write_text(
        AGENT_INI.format(portal_url=settings.portal.base_url, token=token), encoding="utf-8"
    )
    ini.chmod(0o600)
    return ini


def _admin_password(directory: Path) -> str:
    file = directory / "admin-password.txt"
    if not file.exists():
        file.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        file.chmod(0o600)
    return file.read_text(encoding="utf-8").strip()


def _seed(settings: Settings, directory: Path) -> Path:
    """Create schema, admin, demo customer and order, the agent's directory; queue a fresh
    activation mail. Returns the agent's client.ini."""
    from portal.links import portal_links
    from shared.accounts.customers import add_contact, upsert_customer
    from shared.accounts.logins import is_activated, primary_login
    from shared.accounts.staff import create_staff
    from shared.db import bind_database, write_transaction
    from shared.models import Order, StaffUser
    from shared.notify.activation import send_activation_mail
    from shared.orders.orders import create_order, get_order
    from shared.schema import init_database

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
    links = portal_links(settings.portal.base_url)
    if not Order.select().where(Order.project_no == DEMO_ORDER).exists():
        create_order(
            settings,
            links,
            project_no=DEMO_ORDER,
            customer_no=DEMO_CUSTOMER,
            job_description="Flyer DIN A5, 4/4-farbig, 5.000 Stück",
            due_date=date.today() + timedelta(days=7),
        )
    else:
        login = primary_login(customer)
        if login is not None and not is_activated(login):
            with write_transaction():
                send_activation_mail(settings, links, login, get_order(DEMO_ORDER))
    return _agent_config(settings, directory)


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


def run_demo(directory: Path, port: int, mail_port: int = MAIL_PORT) -> None:
    """Start catcher, worker and portal; print the way in; stop all on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    ini = _write_config(directory, port, mail_port)
    if "[mailbox:demo]" in ini.read_text(encoding="utf-8") and local_dovecot.usable():
        # client.ini's ca_file must exist before the settings are read.
        local_dovecot.LocalDovecot(directory / "dovecot", 0, "", "").make_certificates()
    settings = load_settings(ini)
    mail_dir = directory / "mail"
    command = [sys.executable, "-m", "portal", "--config", str(ini)]
    started = time.time()
    clamd = clamd_binary()
    if clamd is None:
        raise click.ClickException("clamd is missing: run .ci/install (Debian clamav-daemon)")
    clamd_conf = write_clamd_conf(settings.clamav.clamd_conf.parent)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, argv: list[str], **options) -> subprocess.Popen:
        with (logs / f"{name}.log").open("ab") as log_file:
            return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, **options)

    mailbox = settings.mailbox(MAILBOX_NAME)
    dovecot_run: Path | None = None

    children = [
        start("clamd", [clamd, "-c", str(clamd_conf)]),
        start(
            "mail",
            [*command, "mailcatcher", "--dir", str(mail_dir), "--port", str(settings.smtp.port)],
        ),
    ]
    try:
        agent_ini = _seed(settings, directory)
        agent_settings = load_agent_settings(agent_ini)
        if mailbox is not None and local_dovecot.usable():
            dovecot, dovecot_run = _start_dovecot(directory, mailbox, start)
            children.append(dovecot)
        children.append(start("worker", [*command, "worker"]))
        bind = _bind_address(settings.portal.base_url)
        portal = start("portal", [*command, "serve", "--bind", bind])
        children.append(portal)
        agent = [sys.executable, "-m", "hotfolder_agent", "--config", str(agent_ini)]
        children.append(start("agent", agent, cwd=agent_ini.parent))
        BackgroundTasks(settings, links=None).deliver_soon()
        found = _newest_link(mail_dir, started - 1, timeout=90)
        # The link is printed only once it opens: under load gunicorn answers seconds later.
        _wait_until_serving(settings.portal.base_url, portal, logs / "portal.log")
        lines = [
            "",
            "ptportal demo is running. Stop it with Ctrl-C.",
            f"  Portal:            {settings.portal.base_url}",
            f"  Staff login:       admin / {_admin_password(directory)}",
            f"  Demo customer:     {DEMO_CUSTOMER}, order {DEMO_ORDER}",
            f"  Caught mails:      {mail_dir}/*.eml",
            f"  Logs:              {logs}/*.log",
            f"  Order folders:     {settings.storage.order_root}",
            f"  Hotfolder agent:   {agent_ini.parent} (its own client.ini, [agent] only: "
            f"the portal's URL and an agent token, as on the workflow server)",
            f"  Hotfolders:        {agent_settings.hotfolder_root} (fetched over HTTP from "
            f"the portal)",
            f"  Job notifications: {agent_settings.notification_dir}/*.xml",
            f"  Virus scanner:     clamd on {settings.clamav.address} ({_signature_note()})",
        ]
        if dovecot_run is not None:
            lines += [
                f"  Mailbox:           {mailbox.address} on a local dovecot "
                f"(IMAPS 127.0.0.1:{mailbox.port}): the customer's question is in order "
                f"{DEMO_ORDER}'s conversation, a stranger's mail in the staff inbox",
                "  Reply by mail:     write to the customer on the staff order page, then "
                "answer as the customer:",
                f"                     ptportal --config {ini} mailbox append {MAILBOX_NAME} "
                f"--reply-to {mail_dir}/<the message's .eml>",
            ]
        else:
            lines.append("  Mailbox:           none (install dovecot-imapd, see README.md)")
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
        if dovecot_run is not None:
            shutil.rmtree(dovecot_run, ignore_errors=True)


def _start_dovecot(directory: Path, mailbox, start) -> tuple[subprocess.Popen, Path]:
    """The demo's dovecot, greeting on its port, with the sample mails in its INBOX."""
    server = local_dovecot.LocalDovecot(
        directory / "dovecot", mailbox.port, mailbox.user, mailbox.password
    )
    conf = server.prepare()
    binary = local_dovecot.dovecot_binary()
    child = start("dovecot", [binary, "-F", "-c", str(conf)], **server.popen_options())
    context = ssl.create_default_context(cafile=str(server.ca_file))
    deadline = time.monotonic() + 30
    while True:
        if child.poll() is not None:
            raise click.ClickException("dovecot did not start: see logs/dovecot.log")
        try:
            with (
                socket.create_connection(("127.0.0.1", mailbox.port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                if tls.recv(200).startswith(b"* OK"):
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise click.ClickException("dovecot did not answer: see logs/dovecot.log") from None
            time.sleep(0.1)
    _sample_mails(mailbox)
    return child, conf.parent


def _sample_mails(mailbox) -> None:
    """The customer's question about the demo order, and a stranger's mail.

    Their Message-IDs are fixed: on later runs the reader recognises them and imports
    nothing twice.
    """
    from email.message import EmailMessage

    from shared.mail_intake.imap import open_mailbox

    question = EmailMessage()
    question["From"] = "Anna Beispiel <anna.beispiel@muster-agentur.example>"
    question["To"] = mailbox.address
    question["Subject"] = f"[Auftrag {DEMO_ORDER}] Frage zum Papier"
    question["Message-ID"] = "<demo-frage@muster-agentur.example>"
    question.set_content(
        "Guten Tag,\n\nkönnen Sie die Flyer auf 170 g Bilderdruck matt drucken?\n"
        "Die Druckdaten lade ich heute Nachmittag hoch.\n\nViele Grüße\nAnna Beispiel\n"
    )
    stranger = EmailMessage()
    stranger["From"] = "Jürgen Neukunde <juergen@neukunde.example>"
    stranger["To"] = mailbox.address
    stranger["Subject"] = "Angebot für 500 Visitenkarten?"
    stranger["Message-ID"] = "<demo-angebot@neukunde.example>"
    stranger.set_content("Hallo,\n\nwas kosten 500 Visitenkarten, 4/4-farbig?\n\nJürgen\n")
    with open_mailbox(mailbox) as connection:
        for message in (question, stranger):
            connection.append(message.as_bytes())


def _signature_note() -> str:
    _path, real = signature_directory()
    if real:
        return "Debian's signature databases"
    return "EICAR test signature only: no signature download without internet"


def _bind_address(base_url: str) -> str:
    """host:port of the demo's base URL (the demo serves where its links point)."""
    return base_url.split("://", 1)[1].rstrip("/")


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _wait_until_serving(base_url: str, portal: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if portal.poll() is not None:
            raise click.ClickException(f"the portal did not start: see {log}")
        try:
            with urllib.request.urlopen(f"{base_url.rstrip('/')}/healthz", timeout=2):
                return
        except OSError:  # not listening yet, or answering 503 while clamd starts
            time.sleep(0.2)
    raise click.ClickException(f"the portal did not answer within 2 minutes: see {log}")


def _wait(children: list[subprocess.Popen]) -> None:
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    failed = [child.args[-1] for child in children if child.poll() is not None]
    raise SystemExit(f"demo stopped: a process ended unexpectedly ({', '.join(failed)})")
