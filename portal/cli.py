"""The ``ptportal`` command: set up the database, feed data, run the portal and the worker."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from datetime import date
from functools import wraps
from pathlib import Path

import click
from peewee import DatabaseError

from shared.config import ConfigError, Settings, config_path, load_settings
from shared.db import bind_database, write_transaction
from shared.errors import ServiceError
from shared.mail.templates import TemplateProblem

log = logging.getLogger(__name__)


class State:
    """Settings loaded on first use, so ``--help`` works without a client.ini."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(config_path(self.config))
            bind_database(self._settings.database.url)
        return self._settings


def configure_logging(verbose: bool = False) -> None:
    """One logging setup per process."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def needs_settings(command):
    """Pass the loaded settings as first argument; turn known errors into one-line messages.

    What a command changes is recorded in the audit log as done on the command line by
    the system user running it.
    """

    @wraps(command)
    @click.pass_obj
    # Positional-only, so a command may itself take an argument called "state".
    def wrapper(state: State, /, *args, **kwargs):
        from shared.audit import ACTOR_COMMAND, Actor, acting_as

        try:
            with acting_as(Actor(ACTOR_COMMAND, getpass.getuser())):
                return command(state.settings, *args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except (ServiceError, TemplateProblem) as exc:
            raise click.ClickException(str(exc)) from None
        except DatabaseError as exc:
            # Mostly a new database without tables; the URL stays out (it may hold a password).
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise click.ClickException(
                f"database error: {first_line} (run `ptportal init` if the database is new)"
            ) from None
        except OSError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _links(settings: Settings):
    """Links for the mails this command composes, from the portal's own routes."""
    from portal.links import portal_links

    return portal_links(settings.portal.base_url)


def _kick_mail(settings: Settings) -> None:
    from shared.worker import BackgroundTasks

    BackgroundTasks(settings, links=None).deliver_soon()


@click.group()
@click.option(
    "--config",
    "config",
    metavar="PATH",
    help="client.ini to use (default: $PTPORTAL_CONFIG, else ./client.ini)",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """ptportal: upload portal for print shops."""
    configure_logging(verbose)
    ctx.obj = State(config)


@main.command()
@needs_settings
def init(settings: Settings) -> None:
    """Create the database schema and the default templates (safe to run again)."""
    from shared.db import url_without_credentials
    from shared.schema import init_database

    init_database(settings.portal.shop_name)
    settings.storage.order_root.mkdir(parents=True, exist_ok=True)
    click.echo(f"database ready: {url_without_credentials(settings.database.url)}")


@main.command("migrate")
@needs_settings
def migrate_command(settings: Settings) -> None:
    """Update an existing database to this version's schema (back it up first)."""
    from shared.migrations import LATEST
    from shared.schema import init_database

    for line in init_database(settings.portal.shop_name):
        click.echo(line)
    click.echo(f"schema version {LATEST}")


@main.group()
def db() -> None:
    """The database itself: moving a shop to another one."""


@db.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL", help="postgresql://USER@HOST/DB")
@needs_settings
def db_copy(settings: Settings, target_url: str) -> None:
    """Copy every table of this shop's database into an empty one, and check the copy."""
    from shared.config import database_url_value
    from shared.database_copy import copy_database, models_in_copy_order

    try:
        target_url = database_url_value(target_url)
    except ValueError as exc:
        raise click.UsageError(f"--to: expected {exc}") from None
    tables = len(models_in_copy_order())
    with click.progressbar(length=tables, label="copying", show_pos=True) as bar:
        done: set[str] = set()

        def progress(table: str, copied: int, total: int) -> None:
            bar.label = f"{table} {copied:,}/{total:,}"
            if copied >= total and table not in done:
                done.add(table)
                bar.update(1)

        report = copy_database(target_url, progress)
    for table, rows in report.rows.items():
        click.echo(f"{table}: {rows} rows")
    if report.problems:
        raise click.ClickException("the copy does not match: " + "; ".join(report.problems))
    click.echo(f"copied and checked: {sum(report.rows.values())} rows in {tables} tables")


@main.command("check")
@needs_settings
def check(settings: Settings) -> None:
    """Test the configuration: database, storage, clamd, SMTP login, queue."""
    from shared.checks import run_checks

    click.echo(f"OK    config    {settings.source}")
    results = run_checks(settings)
    for result in results:
        click.echo(f"{'OK' if result.ok else 'FAIL':<5} {result.name:<9} {result.detail}")
    if not all(result.ok for result in results):
        raise SystemExit(1)


@main.command("check-config")
@needs_settings
def check_config(settings: Settings) -> None:
    """Validate client.ini and print where things are."""
    click.echo(f"OK {settings.source}")
    click.echo(f"portal URL: {settings.portal.base_url}")
    click.echo(f"order folders: {settings.storage.order_root}")


# --- workflow data -----------------------------------------------------------


@main.group()
def customer() -> None:
    """Customers and their contacts."""


@customer.command("set")
@click.argument("customer_no")
@click.option("--name")
@click.option("--email")
@click.option("--portal/--no-portal", "portal_enabled", default=None, help="May use the portal.")
@click.option("--language", type=click.Choice(["de", "en", "fr"]))
@click.option("--delete-after-days", "hotfolder_delete_after_days", type=click.IntRange(0, 3650))
@needs_settings
def customer_set(settings: Settings, customer_no: str, **fields) -> None:
    """Create CUSTOMER_NO or update the given fields."""
    from shared.accounts.customers import upsert_customer

    fields = {key: value for key, value in fields.items() if value is not None}
    with write_transaction():
        _, created = upsert_customer(customer_no, **fields)
    click.echo(f"customer {customer_no} {'created' if created else 'updated'}")


@customer.command("contact")
@click.argument("customer_no")
@click.argument("email")
@click.option("--name", default="")
@click.option("--favorite", is_flag=True)
@needs_settings
def customer_contact(settings: Settings, customer_no: str, email: str, name: str, favorite: bool):
    """Add a contact EMAIL to CUSTOMER_NO."""
    from shared.accounts.customers import add_contact, get_customer

    with write_transaction():
        # Without --favorite an existing contact keeps its favorite flag.
        add_contact(get_customer(customer_no), email, name, favorite or None)
    click.echo(f"contact {email} saved for {customer_no}")


@main.group()
def order() -> None:
    """Orders and tickets."""


@order.command("create")
@click.argument("project_no")
@click.option("--customer", "customer_no", required=True)
@click.option("--job", "job_description", default="")
@click.option("--due", "due_date", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--contact", "contact_email", default="")
@needs_settings
def order_create(settings: Settings, project_no: str, due_date, **fields) -> None:
    """Create order PROJECT_NO (login, activation mail and folders follow the switches)."""
    from shared.orders.orders import create_order

    due: date | None = due_date.date() if due_date else None
    _, actions = create_order(
        settings, _links(settings), project_no=project_no, due_date=due, **fields
    )
    _kick_mail(settings)
    click.echo(f"order {project_no} created" + (": " + ", ".join(actions) if actions else ""))


@order.command("ticket")
@click.argument("project_no")
@click.argument("ticket_no")
@click.option("--title", default="")
@needs_settings
def order_ticket(settings: Settings, project_no: str, ticket_no: str, title: str) -> None:
    """Add ticket TICKET_NO to order PROJECT_NO."""
    from shared.orders.orders import add_ticket

    add_ticket(project_no, ticket_no, title)
    click.echo(f"ticket {ticket_no} added to {project_no}")


@order.command("show")
@click.argument("project_no")
@needs_settings
def order_show(settings: Settings, project_no: str) -> None:
    """Print an order's state as JSON."""
    from shared.orders.orders import get_order, order_summary

    click.echo(json.dumps(order_summary(get_order(project_no)), indent=2, ensure_ascii=False))


# --- portal logins -----------------------------------------------------------


@main.group()
def login() -> None:
    """Portal logins of customers."""


def _login_for(customer_no: str, username: str = ""):
    """The customer's login called ``username``, else its first login."""
    from shared.accounts.customers import get_customer
    from shared.accounts.logins import find_login, primary_login
    from shared.errors import NotFound

    customer = get_customer(customer_no)
    login = find_login(username) if username else primary_login(customer)
    if login is None or login.customer_id != customer.id:
        named = f" called {username!r}" if username else ""
        raise NotFound(f"customer {customer_no!r} has no portal login{named}")
    return login


@login.command("create")
@click.argument("customer_no")
@click.option("--username", default="")
@click.option("--active", is_flag=True, help="Set the login active right away.")
@click.option(
    "--additional",
    is_flag=True,
    help="Add a further login (another person of the customer); needs --email.",
)
@click.option("--email", default="", help="The login's own address (its activation mails).")
@needs_settings
def login_create(
    settings: Settings, customer_no: str, username: str, active: bool, additional: bool, email: str
) -> None:
    """Create the portal login of CUSTOMER_NO from the system defaults."""
    from shared.accounts.customers import get_customer
    from shared.accounts.logins import create_login, primary_login, set_login_state
    from shared.errors import Conflict, Invalid
    from shared.models import PortalLogin

    with write_transaction():
        customer = get_customer(customer_no)
        if primary_login(customer) is not None and not additional:
            raise Conflict(
                f"customer {customer_no!r} already has a portal login; for another person "
                "use --additional --email ADDRESS"
            )
        if additional and not email:
            raise Invalid("--email", "a further login needs its own address")
        login = create_login(customer, username, email=email)
        if active:
            set_login_state(settings, login, PortalLogin.STATE_ACTIVE)
    click.echo(f"portal login {login.username} created ({login.state})")


@login.command("set-state")
@click.argument("customer_no")
@click.argument("state", type=click.Choice(["active", "inactive"]))
@click.option("--username", default="", help="Which login (default: the first).")
@needs_settings
def login_set_state(settings: Settings, customer_no: str, state: str, username: str) -> None:
    """Set the portal login of CUSTOMER_NO active or inactive."""
    from shared.accounts.logins import set_login_state

    with write_transaction():
        login = _login_for(customer_no, username)
        set_login_state(settings, login, state)
    click.echo(f"portal login {login.username} is {state}")


@login.command("send-activation")
@click.argument("customer_no")
@click.option("--order", "project_no", default="", help="Mention this order in the mail.")
@click.option("--username", default="", help="Which login (default: the first).")
@needs_settings
def login_send_activation(
    settings: Settings, customer_no: str, project_no: str, username: str
) -> None:
    """Send the activation mail (Hotfolder Portalzugang) with a fresh link."""
    from shared.errors import Conflict, Invalid
    from shared.notify.activation import send_activation_mail
    from shared.orders.orders import get_order

    with write_transaction():
        login = _login_for(customer_no, username)
        if not login.is_active:
            # The link of an inactive login is refused on the portal: the mail would be a dead end.
            raise Conflict(
                f"portal login {login.username} is inactive; "
                f"first run: ptportal login set-state {customer_no} active"
            )
        order = get_order(project_no) if project_no else None
        if order is not None and order.customer_id != login.customer_id:
            raise Invalid("--order", f"order {project_no!r} belongs to another customer")
        mail = send_activation_mail(settings, _links(settings), login, order)
    _kick_mail(settings)
    click.echo(f"activation mail for {login.username} queued to {mail.recipients}")


# --- staff and tokens --------------------------------------------------------


@main.group()
def staff() -> None:
    """Staff users of the print shop."""


@staff.command("create")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--email", default="")
@click.option("--admin", is_flag=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@needs_settings
def staff_create(
    settings: Settings, username: str, name: str, email: str, admin: bool, password_stdin: bool
) -> None:
    """Create a staff user (asks for the password)."""
    from shared.accounts.staff import create_staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    create_staff(settings, username, name, email, admin, password)
    click.echo(f"staff user {username} created")


@main.group()
def token() -> None:
    """API tokens for the workflow system and the hotfolder agents."""


@token.command("create")
@click.option("--name", required=True, help="Who uses the token, e.g. ptworkflow.")
@click.option(
    "--scope",
    type=click.Choice(["workflow", "agent"]),
    default="workflow",
    show_default=True,
    help="workflow: the workflow API; agent: a hotfolder agent's endpoints only.",
)
@needs_settings
def token_create(settings: Settings, name: str, scope: str) -> None:
    """Create an API token and print it once."""
    from shared.accounts.api_tokens import create_token

    click.echo(create_token(name, scope))


@token.command("revoke")
@click.option("--name", required=True)
@needs_settings
def token_revoke(settings: Settings, name: str) -> None:
    """Revoke the API token called NAME."""
    from shared.accounts.api_tokens import revoke_token

    revoke_token(name)
    click.echo(f"token {name} revoked")


@token.command("list")
@needs_settings
def token_list(settings: Settings) -> None:
    """List API tokens (names, kind and state; tokens themselves are not stored)."""
    from shared.accounts.api_tokens import all_tokens

    for row in all_tokens():
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "unused"
        host = f" from {row.last_host}" if row.last_host else ""
        click.echo(f"{row.name}\t{row.scope}\t{state}\t{used}{host}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@needs_settings
def retention(settings: Settings, dry_run: bool) -> None:
    """Delete files older than each customer's retention (hotfolder_delete_after_days)."""
    from shared.files.intake import file_path
    from shared.files.retention import delete_expired, due_for_deletion

    files = due_for_deletion() if dry_run else delete_expired(settings)
    for file in files:
        click.echo(f"{'would delete' if dry_run else 'deleted'}\t{file_path(settings, file)}")
    click.echo(f"{len(files)} file(s) {'due' if dry_run else 'deleted'}")


# --- mail --------------------------------------------------------------------


@main.group()
def mail() -> None:
    """Notifications, the daily digest and the outbox."""


@mail.command("send-now")
@needs_settings
def mail_send_now(settings: Settings) -> None:
    """Send due notifications, today's digest and the outbox now (to test delivery)."""
    from shared.notify.digest import send_now

    result = send_now(settings, _links(settings))
    for row in result.mails:
        answer = f"\t{row.last_error}" if row.last_error else ""
        click.echo(f"{row.status}\t{row.recipients}\t{row.subject}{answer}")
    report = result.report
    summary = f"{report.sent} sent, {report.failed} failed, {report.deferred} waiting"
    if result.digest.already_sent:
        summary += f", {result.digest.already_sent} had today's digest already"
    click.echo(summary)
    if not result.mails:
        click.echo("nothing was due: no connection to the mail server")
    if report.error:
        raise click.ClickException(f"mail server: {report.error}")


# --- mailboxes ---------------------------------------------------------------


@main.group()
def mailbox() -> None:
    """The IMAP mailboxes of client.ini ([mailbox:NAME]) whose mail the worker reads."""


def _mailbox(settings: Settings, name: str):
    found = settings.mailbox(name)
    if found is None:
        known = ", ".join(box.name for box in settings.mailboxes) or "none configured"
        raise click.ClickException(f"no [mailbox:{name}] in {settings.source} ({known})")
    return found


@mailbox.command("test")
@click.argument("name")
@needs_settings
def mailbox_test(settings: Settings, name: str) -> None:
    """Connect to mailbox NAME as the worker would and say what it found."""
    from shared.mail_intake.imap import connection_test

    ok, detail = connection_test(_mailbox(settings, name))
    click.echo(detail)
    if not ok:
        raise SystemExit(1)


@mailbox.command("read")
@click.argument("name")
@needs_settings
def mailbox_read(settings: Settings, name: str) -> None:
    """Import mailbox NAME's waiting mail now, once (the worker does this all the time)."""
    from shared.conversations.readers import MailboxReader
    from shared.mail_intake.imap import MailboxError
    from shared.worker import BackgroundTasks

    tasks = BackgroundTasks(settings, None)
    try:
        report = MailboxReader(settings, _mailbox(settings, name), tasks.scan_soon).read_once()
    except MailboxError as exc:
        raise click.ClickException(str(exc)) from None
    actions = ", ".join(f"{count} {action}" for action, count in sorted(report.actions.items()))
    click.echo(f"{report.imported} imported ({actions or 'nothing new'}), {report.skipped} skipped")


@mailbox.command("append")
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--reply-to",
    "original",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A mail the portal sent (.eml): append its recipient's reply to it instead.",
)
@click.option("--text", default="Vielen Dank, so passt es.", show_default=True)
@needs_settings
def mailbox_append(
    settings: Settings, name: str, file: Path | None, original: Path | None, text: str
) -> None:
    """Put a mail into mailbox NAME: FILE as it is, or a reply (to try the round trip)."""
    from shared.mail_intake.imap import MailboxError, open_mailbox

    if (file is None) == (original is None):
        raise click.UsageError("give either FILE or --reply-to")
    data = (file or original).read_bytes()
    if original is not None:
        data = _reply_to(data, text)
    try:
        with open_mailbox(_mailbox(settings, name)) as connection:
            connection.append(data)
    except MailboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"appended to mailbox {name}; the worker imports it shortly")


def _reply_to(sent: bytes, text: str) -> bytes:
    """The reply its recipient would write to the mail ``sent``, quoting it."""
    from email import message_from_bytes
    from email.message import EmailMessage
    from email.policy import default
    from email.utils import make_msgid, parseaddr

    original = message_from_bytes(sent, policy=default)
    body = original.get_body(preferencelist=("plain",))
    quoted = "\n".join(f"> {line}" for line in (body.get_content() if body else "").splitlines())
    reply = EmailMessage()
    reply["From"] = str(original["To"])
    reply["To"] = str(original["Reply-To"] or original["From"])
    subject = str(original["Subject"] or "")
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    reply["Message-ID"] = make_msgid(domain=parseaddr(str(original["To"]))[1].rpartition("@")[2])
    if original["Message-ID"]:
        reply["In-Reply-To"] = str(original["Message-ID"])
        reply["References"] = str(original["Message-ID"])
    reply.set_content(f"{text}\n\nAm {original['Date']} schrieb {original['From']}:\n{quoted}\n")
    return reply.as_bytes()


# --- processes ---------------------------------------------------------------


@main.command()
@click.option("--bind", default="127.0.0.1:5000", show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve HTTPS with this certificate (PEM chain); without nginx in front.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The certificate's private key (PEM); default: in the certificate file.",
)
@needs_settings
def serve(
    settings: Settings,
    bind: str,
    workers: int,
    threads: int,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Run the portal under gunicorn with threaded workers (long uploads need them)."""
    from portal.server import run_gunicorn
    from shared.files.scanning import clamd_limits

    if keyfile is not None and certfile is None:
        raise click.UsageError("--keyfile needs --certfile")
    clamd_limits(settings.clamav)  # a clamd.conf the portal cannot rely on stops start-up here
    run_gunicorn(
        settings, bind=bind, workers=workers, threads=threads, certfile=certfile, keyfile=keyfile
    )


# huey polls an idle queue ever more slowly, by default up to every 10 s: a file received
# after a quiet spell waited seconds before its virus scan even started (bench/README.md,
# benchmark 3). Polling an SQLite queue twice a second per worker thread costs nothing.
QUEUE_POLL_MAX_SECONDS = 0.5


@main.command()
@click.option("--workers", default=2, show_default=True)
@needs_settings
def worker(settings: Settings, workers: int) -> None:
    """Run the background worker: mail delivery, virus scans, retention, mailbox readers."""
    from huey.consumer import Consumer

    from shared.audit import SYSTEM, acting_as
    from shared.conversations.readers import MailboxReaders
    from shared.worker import BackgroundTasks

    queue = BackgroundTasks(settings, _links(settings))
    consumer = Consumer(
        queue.huey,
        workers=workers,
        periodic=True,
        worker_type="thread",
        max_delay=QUEUE_POLL_MAX_SECONDS,
    )
    # One thread per active [mailbox:NAME]; they stop when the consumer does (SIGTERM).
    readers = MailboxReaders(settings, on_file=queue.scan_soon)
    with acting_as(SYSTEM):
        readers.start()
        try:
            consumer.run()
        finally:
            readers.stop()


@main.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True)
def mailcatcher(directory: Path, host: str, port: int) -> None:
    """A local SMTP server that stores every mail as a .eml file (for trying things out)."""
    from portal.mailcatcher import run_forever

    click.echo(f"catching mail on {host}:{port} into {directory}")
    run_forever(directory, host, port)


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo keeps its client.ini and data.",
)
@click.option("--port", default=5000, show_default=True, help="Portal port (first run).")
@click.option("--mail-port", default=2525, show_default=True, help="Mail catcher port (first run).")
def demo(directory: Path, port: int, mail_port: int) -> None:
    """Start everything on embedded defaults with a demo customer and order."""
    from portal.demo import run_demo

    run_demo(directory.resolve(), port, mail_port)
