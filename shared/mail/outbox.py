"""Put mails into the outbox, inside the caller's transaction.

A mail is only a row until the worker delivers it, so it commits or rolls back
together with the change that caused it, and SMTP being down loses nothing.
"""

from __future__ import annotations

from email.utils import make_msgid, parseaddr

from shared.mail.templates import RenderedMail
from shared.models import Customer, Order, OutboxMail


def message_domain(sender: str) -> str:
    """The domain part used in Message-IDs (the sender's, so replies thread at the shop).

    ``sender`` may be a whole From value (``Olga <olga@shop.example>``): only the address
    counts, or the closing bracket would end up inside the Message-ID.
    """
    address = parseaddr(sender)[1] or sender
    domain = address.rpartition("@")[2].strip()
    return domain if domain and "@" in address and "<" not in domain else "ptportal.invalid"


def queue_mail(
    *,
    kind: str,
    sender: str,
    recipients: list[str],
    mail: RenderedMail,
    recipient_reason: str = "",
    reply_to: str = "",
    customer: Customer | None = None,
    order: Order | None = None,
    idempotency_key: str | None = None,
) -> OutboxMail:
    """Store one mail for delivery; call inside ``write_transaction()``."""
    return OutboxMail.create(
        message_id=make_msgid(idstring=kind.replace(" ", "-"), domain=message_domain(sender)),
        kind=kind,
        idempotency_key=idempotency_key,
        sender=sender,
        recipients=",".join(recipients),
        recipient_reason=recipient_reason,
        reply_to=reply_to,
        subject=mail.subject,
        text_body=mail.text,
        html_body=mail.html,
        customer=customer,
        order=order,
    )


def order_of_sent_mail(message_id: str) -> int | None:
    """The order a mail the portal sent with ``message_id`` was about, if any.

    Every outbox row keeps its Message-ID (unique, indexed) and its order, so a reply's
    In-Reply-To or References finds the order again (issue 17 §3).
    """
    row = (
        OutboxMail.select(OutboxMail.order)
        .where((OutboxMail.message_id == message_id) & OutboxMail.order.is_null(False))
        .first()
    )
    return row.order_id if row else None
