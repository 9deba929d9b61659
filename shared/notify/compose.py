"""One template, one order, one addressee → one outbox mail with the right language and headers.

Customer mails get the customer's language, a Reply-To (``reply_address``: the
mailbox replies about the order arrive in) and, when they concern one order,
``[Auftrag <no>]`` / ``[Order <no>]`` / ``[Commande <no>]`` in the subject so that
the mailbox reader matches the replies to the order. Staff get ``[notifications]
staff_language`` and links to the staff pages.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from peewee import IntegrityError

from shared.accounts.logins import primary_login
from shared.config import Settings
from shared.db import database
from shared.links import PortalLinks
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail, active_signature, find_template, render_mail
from shared.models import Customer, Order, OutboxMail, ReceivedMail
from shared.notify.recipients import Addressee

_REFERENCE_WORD = {"de": "Auftrag", "en": "Order", "fr": "Commande"}
# How a due date reads in a mail; French writes 31/12/2026.
_DATE_FORMAT = {"fr": "%d/%m/%Y"}


def customer_language(customer: Customer | None) -> str:
    """The language a customer reads: what their (first) portal login last read the portal
    in or chose, else the customer's language."""
    if customer is None:
        return "de"
    login = primary_login(customer)
    return (login.language if login and login.language else "") or customer.language or "de"


def due_date_text(day: date | None, language: str) -> str:
    """A due date as a mail in ``language`` writes it (31.12.2026, 31/12/2026)."""
    return day.strftime(_DATE_FORMAT.get(language, "%d.%m.%Y")) if day else ""


def language_for(settings: Settings, addressee: Addressee, customer: Customer | None) -> str:
    if addressee.customer_side:
        return customer_language(customer)
    return settings.notifications.staff_language


def order_values(
    links: PortalLinks,
    order: Order | None,
    customer: Customer | None,
    language: str,
    customer_side: bool = True,
) -> dict[str, str]:
    """Placeholder values every order-related mail can use."""
    values = {"customer_name": customer.name if customer else ""}
    if customer is not None:
        login = primary_login(customer)
        values["portal_client_username"] = login.username if login else ""
        values["portal_activation_link"] = links.new_activation_link(language)
    if order is not None:
        values.update(
            project_no=order.project_no,
            job_description=order.job_description,
            due_date=due_date_text(order.due_date, language),
            upload_link=links.order(order.project_no, for_customer=customer_side),
        )
    return values


def reply_address(settings: Settings, order: Order | None) -> str:
    """Where customers' replies should go: the order's mailbox, else ``[smtp] reply_to``.

    The order's mailbox is the one its customer last wrote to about it; for an order
    without mail yet, the first active mailbox with an ``address`` (client.ini order).
    """
    usable = {box.name: box.address for box in settings.mailboxes if box.active and box.address}
    if not usable:
        return settings.smtp.reply_to
    if order is not None and order.id is not None:
        last = (
            ReceivedMail.select(ReceivedMail.mailbox)
            .where((ReceivedMail.order == order) & ReceivedMail.mailbox.in_(list(usable)))
            .order_by(ReceivedMail.id.desc())
            .first()
        )
        if last is not None:
            return usable[last.mailbox]
    return next(iter(usable.values()))


def with_reference(mail: RenderedMail, project_no: str, language: str) -> RenderedMail:
    """The mail with ``[Auftrag <no>]`` (in its language) in front of its subject (once)."""
    reference = f"[{_REFERENCE_WORD.get(language, 'Auftrag')} {project_no}]"
    if reference in mail.subject:
        return mail
    return replace(mail, subject=f"{reference} {mail.subject}")


def render_for(
    addressee: Addressee, template_name: str, language: str, context: dict, order: Order | None
) -> RenderedMail:
    """Render ``template_name`` in ``language`` (with fallback) for ``addressee``."""
    template = find_template(template_name, language)
    mail = render_mail(template, active_signature(), context)
    if addressee.customer_side and order is not None:
        mail = with_reference(mail, order.project_no, template.language)
    return mail


def queue_for(
    settings: Settings,
    addressee: Addressee,
    mail: RenderedMail,
    *,
    kind: str,
    customer: Customer | None,
    order: Order | None,
    idempotency_key: str | None = None,
    sender: str = "",
) -> OutboxMail | None:
    """Queue ``mail`` for ``addressee`` unless ``idempotency_key`` was queued before."""
    if (
        idempotency_key is not None
        and OutboxMail.select().where(OutboxMail.idempotency_key == idempotency_key).exists()
    ):
        return None
    try:
        # A savepoint: a parallel run that queued the same key meanwhile loses only this mail.
        with database.atomic():
            return queue_mail(
                kind=kind,
                sender=sender or settings.smtp.email,
                recipients=[addressee.email],
                recipient_reason=addressee.reason,
                reply_to=reply_address(settings, order) if addressee.customer_side else "",
                mail=mail,
                customer=customer,
                order=order,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        return None
