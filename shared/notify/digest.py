"""The daily digest (seeds 000, 001): at ``send_time`` one mail per recipient with what is due.

Due are orders whose due date is at most ``deadline_warning_days`` away and
that still have no clean upload, overdue ones, and for staff the rejected and
undelivered files. Recipients follow the ``deadline_alert`` rule (with
escalation and customer overrides). Every digest has the idempotency key
``digest:deadline_alert:<day>:<address>``, so a second run the same day (the
scheduled one after "send now", or one after a crash) queues nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import JOIN, IntegrityError

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.events import DEADLINE_ALERT
from shared.files.folders import FOLDER_INCOMING
from shared.links import PortalLinks
from shared.mail.addresses import normalise
from shared.mail.delivery import DeliveryReport, deliver_due
from shared.mail.templates import TemplateProblem, template_context
from shared.models import Customer, DigestRun, Order, OrderFile, OutboxMail
from shared.notify.compose import (
    due_date_text,
    language_for,
    order_values,
    queue_for,
    render_for,
)
from shared.notify.recipients import Addressee, resolve
from shared.notify.rules import extra_staff_of, rule_for
from shared.notify.sending import send_due_notifications

log = logging.getLogger(__name__)

DUE_SOON = "due_soon"
OVERDUE = "overdue"
REJECTED = "rejected"
UNDELIVERED = "undelivered"
STAFF_ONLY = (REJECTED, UNDELIVERED)
SECTIONS = (OVERDUE, DUE_SOON, REJECTED, UNDELIVERED)
# The agent normally takes a clean file within seconds; an hour means it is not running.
UNDELIVERED_AFTER = timedelta(hours=1)
# An order without upload this long after its due date was settled some other way
# (data by mail, order cancelled): the digest stops listing it.
OVERDUE_FOR = timedelta(days=30)

_HEADINGS = {
    "de": {
        OVERDUE: "Überfällig, noch ohne Druckdaten",
        DUE_SOON: "Bald fällig, noch ohne Druckdaten",
        REJECTED: "Bei der Virenprüfung abgelehnte Dateien",
        UNDELIVERED: "Noch nicht an den Hotfolder übergebene Dateien",
        "due": "fällig",
    },
    "en": {
        OVERDUE: "Overdue, still without print data",
        DUE_SOON: "Due soon, still without print data",
        REJECTED: "Files rejected by the virus scan",
        UNDELIVERED: "Files not yet delivered to the hotfolder",
        "due": "due",
    },
    "fr": {
        OVERDUE: "En retard, toujours sans fichiers d'impression",
        DUE_SOON: "Échéance proche, toujours sans fichiers d'impression",
        REJECTED: "Fichiers refusés par l'analyse antivirus",
        UNDELIVERED: "Fichiers pas encore transmis au hotfolder",
        "due": "échéance",
    },
}


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest: an order, or a file of an order."""

    section: str
    order: Order
    file: OrderFile | None = None


@dataclass
class DigestResult:
    """What a run queued (the rows) and how many recipients already had today's digest."""

    day: date
    queued: list[OutboxMail] = field(default_factory=list)
    already_sent: int = 0
    problems: list[str] = field(default_factory=list)


def local_now(settings: Settings, now: datetime) -> datetime:
    """``now`` (naive UTC) in the portal's time zone."""
    return now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(settings.portal.time_zone))


def send_time_reached(settings: Settings, now: datetime) -> bool:
    """True from ``send_time`` on, local time (huey's crontab would match in UTC)."""
    hour, minute = (int(part) for part in settings.notifications.send_time.split(":"))
    return local_now(settings, now).time() >= time(hour, minute)


def collect(settings: Settings, today: date, now: datetime) -> list[DigestItem]:
    """Everything due on ``today`` (local date)."""
    horizon = today + timedelta(days=settings.notifications.deadline_warning_days)
    clean_upload = OrderFile.select(OrderFile.order).where(
        (OrderFile.folder == FOLDER_INCOMING) & (OrderFile.state == OrderFile.STATE_CLEAN)
    )
    waiting = (
        Order.select(Order, Customer)
        .join(Customer)
        .where(
            Order.due_date.is_null(False),
            Order.due_date <= horizon,
            Order.due_date >= today - OVERDUE_FOR,
            Order.state == Order.STATE_OPEN,  # closed and cancelled orders need nothing more
            Customer.portal_enabled == True,  # noqa: E712 (others send data another way)
            Order.id.not_in(clean_upload),
        )
        .order_by(Order.due_date, Order.project_no)
    )
    items = [DigestItem(OVERDUE if o.due_date < today else DUE_SOON, o) for o in waiting]
    files = (
        OrderFile.select(OrderFile, Order, Customer)
        .join(Order)
        .join(Customer, JOIN.INNER)
        .where(
            Order.state == Order.STATE_OPEN,
            (OrderFile.state == OrderFile.STATE_REJECTED)
            | (
                (OrderFile.state == OrderFile.STATE_CLEAN)
                & (OrderFile.folder == FOLDER_INCOMING)
                & OrderFile.delivered_at.is_null()
                & (Customer.create_hotfolder == True)  # noqa: E712
                & (OrderFile.scanned_at < now - UNDELIVERED_AFTER)
            ),
        )
        .order_by(Order.project_no, OrderFile.id)
    )
    for file in files:
        section = REJECTED if file.state == OrderFile.STATE_REJECTED else UNDELIVERED
        items.append(DigestItem(section, file.order, file))
    return items


def _line(item: DigestItem, language: str, links: PortalLinks, addressee: Addressee) -> str:
    order = item.order
    words = _HEADINGS.get(language, _HEADINGS["de"])
    if item.file is not None:
        return f"- {order.project_no}: {item.file.display_name}" + (
            f" ({item.file.signature})" if item.file.signature else ""
        )
    due = due_date_text(order.due_date, language)
    text = f"- {order.project_no}"
    if order.job_description:
        text += f" – {order.job_description}"
    if not addressee.customer_side:
        text += f" ({order.customer.name})"
    link = links.order(order.project_no, for_customer=addressee.customer_side)
    return f"{text}, {words['due']} {due}\n  {link}"


def _listing(
    items: list[DigestItem], language: str, links: PortalLinks, addressee: Addressee
) -> str:
    words = _HEADINGS.get(language, _HEADINGS["de"])
    blocks = []
    for section in SECTIONS:
        lines = [_line(i, language, links, addressee) for i in items if i.section == section]
        if lines:
            blocks.append(words[section] + ":\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def _by_addressee(items: list[DigestItem]) -> dict[str, tuple[Addressee, list[DigestItem]]]:
    """Each item under every address the ``deadline_alert`` rule gives for its order."""
    grouped: dict[str, tuple[Addressee, list[DigestItem]]] = {}
    for item in items:
        customer = item.order.customer
        rule = rule_for(DEADLINE_ALERT, customer)
        if not rule.active:
            continue
        for addressee in resolve(rule, customer, item.order, extra_staff_of(rule)):
            if addressee.customer_side and item.section in STAFF_ONLY:
                continue
            key = normalise(addressee.email)
            grouped.setdefault(key, (addressee, []))[1].append(item)
    return grouped


def queue_digests(
    settings: Settings, links: PortalLinks, now: datetime, *, scheduled: bool
) -> DigestResult:
    """Queue today's digests; a scheduled run happens once per local day, "send now" always."""
    today = local_now(settings, now).date()
    result = DigestResult(today)
    with write_transaction():
        if scheduled:
            try:
                with write_transaction():
                    DigestRun.create(day=today)
            except IntegrityError:
                return result  # today's scheduled run is done already
        for key, (addressee, items) in _by_addressee(collect(settings, today, now)).items():
            idempotency_key = f"digest:{DEADLINE_ALERT}:{today.isoformat()}:{key}"
            try:
                row = _queue_one(settings, links, addressee, items, idempotency_key)
            except TemplateProblem as exc:
                log.error("digest for %s not queued: %s", addressee.email, exc)
                result.problems.append(str(exc))
                continue
            if row is None:
                result.already_sent += 1
            else:
                result.queued.append(row)
    return result


def _queue_one(
    settings: Settings,
    links: PortalLinks,
    addressee: Addressee,
    items: list[DigestItem],
    key: str,
) -> OutboxMail | None:
    orders = {item.order.id: item.order for item in items}
    # A customer digest about one order is order-related: it gets the order reference.
    order = next(iter(orders.values())) if len(orders) == 1 else None
    customer = items[0].order.customer if addressee.customer_side else None
    language = language_for(settings, addressee, items[0].order.customer)
    values = order_values(links, None, customer, language, addressee.customer_side)
    values.update(
        event_list=_listing(items, language, links, addressee), event_count=str(len(items))
    )
    rule = rule_for(DEADLINE_ALERT, items[0].order.customer)
    mail = render_for(addressee, rule.template_name, language, template_context(**values), order)
    return queue_for(
        settings,
        addressee,
        mail,
        kind="digest",
        customer=customer,
        order=order,
        idempotency_key=key,
    )


@dataclass
class RunResult:
    """A mail run for staff to read: the digests queued and what delivery did."""

    digest: DigestResult
    notifications: int
    report: DeliveryReport
    mails: list[OutboxMail]


def scheduled_run(
    settings: Settings, links: PortalLinks, now: datetime | None = None
) -> DigestResult | None:
    """The worker's minute check: queue and send the digest once ``send_time`` has come."""
    now = now or utcnow()
    if not send_time_reached(settings, now):
        return None
    today = local_now(settings, now).date()
    if DigestRun.select().where(DigestRun.day == today).exists():
        return None
    result = queue_digests(settings, links, now, scheduled=True)
    log.info("digest of %s: %d queued", today, len(result.queued))
    return result


def queue_due_mail(settings: Settings, links: PortalLinks, now: datetime | None = None) -> int:
    """The worker's minute: batches whose time has come and, once a day, the digest."""
    now = now or utcnow()
    queued = send_due_notifications(settings, links, now)
    digest = scheduled_run(settings, links, now)
    return queued + (len(digest.queued) if digest else 0)


def send_now(settings: Settings, links: PortalLinks, now: datetime | None = None) -> RunResult:
    """Staff's "send now": due notifications and today's digest, delivered at once."""
    now = now or utcnow()
    notifications = send_due_notifications(settings, links, now)
    digest = queue_digests(settings, links, now, scheduled=False)
    # Mails just queued are due from their creation time, which may be after ``now``.
    report = deliver_due(settings.smtp, now=max(now, utcnow()))
    ids = {row.id for row in digest.queued} | set(report.mail_ids)
    mails = list(OutboxMail.select().where(OutboxMail.id.in_(ids)).order_by(OutboxMail.id))
    return RunResult(digest, notifications, report, mails)
