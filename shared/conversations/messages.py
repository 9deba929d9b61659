"""An order's conversation: what customers and staff write on the portal (and mail brings).

- Customers see every message of their own order except internal notes; staff see all.
- A customer's message may bring files the customer uploaded for it (tus into
  ``Eingehend``, scanned like every upload); they are linked to the message.
- A staff message that is not an internal note goes out as a mail at once, to whom the
  rule of the event ``staff_message`` names (the customer along the one recipient chain,
  unless staff changed it): from the order owner's address where one is set, with
  ``[Auftrag <no>]`` in the subject, Reply-To the order's mailbox and a Message-ID the
  outbox keeps with the order, so that the reply finds the order again.
- A customer's message raises ``customer_message`` (for the owner, batched like every
  notification).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formataddr

from peewee import JOIN, fn

from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Invalid
from shared.events import CUSTOMER_MESSAGE, STAFF_MESSAGE, notify, notify_done
from shared.files.access import check_uploader, own_upload, visible_to_customer
from shared.files.folders import FOLDER_INCOMING
from shared.links import PortalLinks
from shared.mail.templates import TemplateProblem, template_context
from shared.mail_intake.bodies import sanitise_html
from shared.models import (
    MessageFile,
    MessageImage,
    Order,
    OrderFile,
    OrderMessage,
    OutboxMail,
    PortalLogin,
    ReceivedMail,
    StaffUser,
)
from shared.notify.compose import language_for, order_values, queue_for, render_for
from shared.notify.recipients import resolve
from shared.notify.rules import extra_staff_of, rule_for

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 20_000
MAX_FILES_PER_MESSAGE = 50
EXCERPT_CHARS = 300
# The newest messages a page shows; older ones stay in the database.
SHOWN_MESSAGES = 200


class EmptyMessage(Invalid):
    """Nothing written (and, for customers, no file attached)."""

    def __init__(self, what: str = "write a message or attach a file") -> None:
        super().__init__("body", what)


class MessageTooLong(Invalid):
    """More than ``MAX_BODY_CHARS`` characters."""

    def __init__(self) -> None:
        super().__init__("body", f"at most {MAX_BODY_CHARS} characters")


@dataclass(frozen=True)
class Entry:
    """One message as a page shows it: with its files and, if it came by mail, that mail."""

    message: OrderMessage
    files: list[OrderFile]
    mail: ReceivedMail | None


def clean_body(text: str) -> str:
    """The text as stored: line ends unified, surrounding blank space gone, length checked."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    text = "".join(char for char in text if char in "\n\t" or char.isprintable())
    if len(text) > MAX_BODY_CHARS:
        raise MessageTooLong()
    return text


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of ``text`` for a notification list."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def conversation(order: Order, *, for_customer: bool) -> list[Entry]:
    """The order's newest messages, oldest first, with their files (three queries)."""
    condition = OrderMessage.order == order
    if for_customer:
        condition &= OrderMessage.internal == False  # noqa: E712 (peewee expression)
    newest = list(
        OrderMessage.select(OrderMessage, ReceivedMail, OutboxMail)
        .join(ReceivedMail, JOIN.LEFT_OUTER)
        .switch(OrderMessage)
        .join(OutboxMail, JOIN.LEFT_OUTER)
        .where(condition)
        .order_by(OrderMessage.created_at.desc(), OrderMessage.id.desc())
        .limit(SHOWN_MESSAGES)
    )
    newest.reverse()
    files: dict[int, list[OrderFile]] = {message.id: [] for message in newest}
    if newest:
        shown = (OrderFile.state != OrderFile.STATE_DELETED) & MessageFile.message.in_(list(files))
        if for_customer:
            shown &= visible_to_customer()
        links = (
            MessageFile.select(MessageFile, OrderFile)
            .join(OrderFile)
            .where(shown)
            .order_by(OrderFile.id)
        )
        for link in links:
            files[link.message_id].append(link.file)
    return [
        Entry(
            message, files[message.id], message.received_mail if message.received_mail_id else None
        )
        for message in newest
    ]


def conversation_version(order: Order, *, for_customer: bool) -> str:
    """Changes whenever what ``conversation`` shows changes: a new message, a file's scan.

    Two small queries, so a page polling for news re-renders only when there is some.
    """
    condition = OrderMessage.order == order
    if for_customer:
        condition &= OrderMessage.internal == False  # noqa: E712
    newest = OrderMessage.select(fn.MAX(OrderMessage.id)).where(condition).scalar() or 0
    files = (
        MessageFile.select(fn.COUNT(OrderFile.id), fn.MAX(OrderFile.scanned_at))
        .join(OrderFile)
        .switch(MessageFile)
        .join(OrderMessage)
        .where(condition & OrderFile.state.not_in(OrderFile.OPEN_STATES))
        .tuples()
        .first()
    )
    settled, last_scan = files or (0, None)
    return f"{newest}.{settled}.{last_scan or ''}".replace(" ", "T")


def visible_image(image_id: int, order: Order | None) -> MessageImage | None:
    """A mail's signature image, if the viewer may see it: staff (``order`` None) any,
    a customer one of a message of their ``order`` that is not internal."""
    query = MessageImage.select().where(MessageImage.id == image_id)
    if order is not None:
        query = (
            query.join(ReceivedMail)
            .join(OrderMessage, on=(OrderMessage.received_mail == ReceivedMail.id))
            .where((OrderMessage.order == order) & (OrderMessage.internal == False))  # noqa: E712
        )
    return query.first()


_CID_SOURCE = re.compile(r'src="cid:([^"]*)"', re.IGNORECASE)


def images_of(mails: Iterable[ReceivedMail]) -> dict[int, list[MessageImage]]:
    """The signature images of ``mails`` (one query), by mail id."""
    ids = [mail.id for mail in mails if mail.html_body]
    found: dict[int, list[MessageImage]] = {mail_id: [] for mail_id in ids}
    if ids:
        query = MessageImage.select(
            MessageImage.id,
            MessageImage.received_mail,
            MessageImage.content_id,
            MessageImage.content_type,
        ).where(MessageImage.received_mail.in_(ids))
        for image in query:
            found[image.received_mail_id].append(image)
    return found


def display_html(
    mail: ReceivedMail,
    image_url: Callable[[MessageImage], str],
    images: list[MessageImage] | None = None,
) -> str:
    """The mail's HTML as a page may show it: sanitised (again), its cid: images pointing
    at ``image_url`` of the stored image, other images gone; "" without an HTML body."""
    if not mail.html_body:
        return ""
    if images is None:
        images = images_of([mail]).get(mail.id, [])
    by_content_id = {image.content_id.lower(): image for image in images}
    clean = sanitise_html(mail.html_body)

    def source(match: re.Match) -> str:
        image = by_content_id.get(html.unescape(match.group(1)).strip("<> ").lower())
        return f'src="{html.escape(image_url(image))}"' if image else 'alt=""'

    return _CID_SOURCE.sub(source, clean)


def post_customer_message(
    order: Order, login: PortalLogin, body: str, upload_keys: Iterable[str] = ()
) -> OrderMessage:
    """The signed-in customer writes; ``upload_keys`` are their uploads to link (tus keys).

    Keys that are not this customer's uploads into this order's Eingehend, or that belong
    to another message already, are left out. Raises NotAllowed when the login may not
    use the portal (any more), Invalid for an empty or too long message.
    """
    body = clean_body(body)
    keys = list(dict.fromkeys(key for key in upload_keys if key))[:MAX_FILES_PER_MESSAGE]
    if not body and not keys:
        raise EmptyMessage()
    with write_transaction():
        check_uploader(order, login, FOLDER_INCOMING)
        files = _own_unlinked_uploads(order, login, keys)
        if not body and not files:
            raise EmptyMessage()
        customer = order.customer
        message = OrderMessage.create(
            order=order,
            author=OrderMessage.AUTHOR_CUSTOMER,
            source=OrderMessage.SOURCE_PORTAL,
            login=login,
            sender=customer.name,
            body=body,
        )
        for file in files:
            MessageFile.create(message=message, file=file)
        notify(CUSTOMER_MESSAGE, order=order, detail=_event_line(customer.name, body, files))
    log.info("order %s: message %s from the customer", order.project_no, message.id)
    return message


def _own_unlinked_uploads(order: Order, login: PortalLogin, keys: list[str]) -> list[OrderFile]:
    found = []
    for key in keys:
        file = own_upload(key, customer=login.customer)
        if file is None or file.order_id != order.id:
            continue
        if MessageFile.select().where(MessageFile.file == file).exists():
            continue
        found.append(file)
    return found


def _event_line(author: str, body: str, files: list[OrderFile]) -> str:
    names = ", ".join(file.display_name for file in files)
    text = excerpt(body) if body else ""
    parts = [part for part in (text, f"[{names}]" if names else "") if part]
    return f"{author}: {' '.join(parts)}"


def post_staff_message(
    settings: Settings,
    links: PortalLinks,
    order: Order,
    staff: StaffUser,
    body: str,
    *,
    internal: bool = False,
) -> OrderMessage:
    """Staff write; unless it is an internal note, the message goes out as mail now.

    The message is kept even when no mail can be made (event switched off, no usable
    address, a broken template): ``mail_outcome`` says what happened, for staff to see.
    """
    body = clean_body(body)
    if not body:
        raise EmptyMessage("write a message")
    with write_transaction():
        message = OrderMessage.create(
            order=order,
            author=OrderMessage.AUTHOR_STAFF,
            source=OrderMessage.SOURCE_PORTAL,
            internal=internal,
            staff=staff,
            sender=staff.name or staff.username,
            body=body,
        )
        if not internal:
            _mail_to_customer(settings, links, message, staff)
    log.info(
        "order %s: %s %s by %s (%s)",
        order.project_no,
        "internal note" if internal else "message",
        message.id,
        staff.username,
        message.mail_outcome or "not mailed",
    )
    return message


def owner_sender(settings: Settings, order: Order) -> str:
    """From of a staff message: the order owner's address where set, else the portal's."""
    owner = order.owner if order.owner_id else None
    if owner is not None and owner.active and owner.email:
        return formataddr((owner.name, owner.email))
    return settings.smtp.email


def _mail_to_customer(
    settings: Settings, links: PortalLinks, message: OrderMessage, staff: StaffUser
) -> None:
    """Queue the message's mail as the ``staff_message`` rule says; record the outcome."""
    order = message.order
    customer = order.customer
    rule = rule_for(STAFF_MESSAGE, customer)
    rows: list[tuple[bool, OutboxMail]] = []
    if not rule.active:
        outcome = "not mailed: the event is switched off"
    else:
        try:
            rows = _queue_message_mails(settings, links, message, rule, staff)
            outcome = "mailed to " + ", ".join(row.recipients for _, row in rows) if rows else ""
            outcome = outcome or "not mailed: no usable recipient"
        except TemplateProblem as exc:
            log.error("message %s not mailed: %s", message.id, exc)
            outcome = f"not mailed: {exc}"
    # The mail that stands for the message: the customer's, else the first one queued.
    customer_rows = [row for customer_side, row in rows if customer_side]
    message.outbox_mail = (customer_rows or [row for _, row in rows] or [None])[0]
    message.mail_outcome = outcome
    message.save()
    notify_done(STAFF_MESSAGE, order=order, detail=excerpt(message.body), outcome=outcome)


def _queue_message_mails(
    settings: Settings, links: PortalLinks, message: OrderMessage, rule, staff: StaffUser
) -> list[tuple[bool, OutboxMail]]:
    """(customer side?, row) of every mail queued for the message."""
    order = message.order
    customer = order.customer
    sender = owner_sender(settings, order)
    mails = []
    # Everything is rendered before anything is queued: a broken template queues nothing.
    for addressee in resolve(rule, customer, order, extra_staff_of(rule)):
        language = language_for(settings, addressee, customer)
        values = order_values(links, order, customer, language, addressee.customer_side)
        values.update(message_text=message.body, message_author=staff.name or staff.username)
        context = template_context(**values)
        mails.append(
            (addressee, render_for(addressee, rule.template_name, language, context, order))
        )
    rows = []
    for addressee, mail in mails:
        row = queue_for(
            settings,
            addressee,
            mail,
            kind="message",
            customer=customer,
            order=order,
            idempotency_key=f"message:{message.id}:{addressee.email.lower()}",
            sender=sender,
        )
        if row is not None:
            rows.append((addressee.customer_side, row))
    return rows
