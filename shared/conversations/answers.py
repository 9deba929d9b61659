"""Mails the portal sends a mail's sender by itself — at most one per address an hour.

The only such mail: the sender of a mail whose attachments the virus scan rejected is
told so, once per mail (template ``Anhang abgewiesen``). Nothing is ever sent to an
automatic reply or a delivery report (those are recorded only), and never twice within
``AUTO_ANSWER_INTERVAL`` to one address: two auto-responders cannot keep each other
talking through the portal (issue 17 §7).
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.links import PortalLinks
from shared.mail.addresses import normalise
from shared.mail.bounces import is_bounced
from shared.mail.defaults import ATTACHMENT_REJECTED_TEMPLATE
from shared.mail.templates import TemplateProblem, template_context
from shared.mail_intake.matching import may_answer_automatically
from shared.models import AutoAnswer, MessageFile, OrderFile, OrderMessage, ReceivedMail
from shared.notify.compose import customer_language, order_values, queue_for, render_for
from shared.notify.recipients import Addressee

log = logging.getLogger(__name__)


def may_answer(address: str, now: datetime | None = None) -> bool:
    """True when the portal has not answered ``address`` automatically within the hour."""
    row = AutoAnswer.get_or_none(AutoAnswer.address == normalise(address))
    return may_answer_automatically(row.answered_at if row else None, now or utcnow())


def record_answer(address: str, now: datetime | None = None) -> None:
    """Remember that ``address`` was answered now; inside the answer's transaction."""
    now = now or utcnow()
    updated = (
        AutoAnswer.update(answered_at=now).where(AutoAnswer.address == normalise(address)).execute()
    )
    if not updated:
        AutoAnswer.create(address=normalise(address), answered_at=now)


def tell_senders_of_rejected_attachments(
    settings: Settings, links: PortalLinks, now: datetime | None = None
) -> int:
    """Tell each mail's sender once that attachments were rejected; returns mails queued."""
    now = now or utcnow()
    due = (
        ReceivedMail.select(ReceivedMail.id)
        .join(OrderMessage, on=(OrderMessage.received_mail == ReceivedMail.id))
        .join(MessageFile)
        .join(OrderFile)
        .where(
            (OrderFile.state == OrderFile.STATE_REJECTED)
            & ReceivedMail.rejection_answered_at.is_null()
        )
        .distinct()
    )
    queued = 0
    for row in list(due):
        with write_transaction():
            mail = ReceivedMail.get_by_id(row.id)
            if mail.rejection_answered_at is not None:
                continue  # another worker answered meanwhile
            outcome = _answer(settings, links, mail, now)
            queued += outcome.startswith("sender told")
            mail.rejection_answered_at = now
            mail.note = "\n".join(part for part in (mail.note, outcome) if part)
            mail.save()
        log.info("mail %s with rejected attachments: %s", mail.message_id, outcome)
    return queued


def _rejected_files(mail: ReceivedMail) -> list[OrderFile]:
    return list(
        OrderFile.select()
        .join(MessageFile)
        .join(OrderMessage)
        .where((OrderMessage.received_mail == mail) & (OrderFile.state == OrderFile.STATE_REJECTED))
        .order_by(OrderFile.id)
    )


def _answer(settings: Settings, links: PortalLinks, mail: ReceivedMail, now: datetime) -> str:
    """Queue the notice to the sender, or say why not."""
    if mail.auto_reply or not mail.sender:
        return "sender not told: an automatic mail is never answered"
    if is_bounced(mail.sender):
        return f"sender not told: {mail.sender} is on the bounce list"
    if not may_answer(mail.sender, now):
        return f"sender not told: {mail.sender} was answered automatically within the hour"
    order = mail.order
    customer = order.customer if order else None
    language = customer_language(customer)
    lines = [f"- {file.display_name}: {file.signature}" for file in _rejected_files(mail)]
    values = order_values(links, order, customer, language)
    values.update(event_list="\n".join(lines), event_count=str(len(lines)))
    addressee = Addressee(mail.sender, "sender of the mail", customer_side=True)
    try:
        rendered = render_for(
            addressee,
            ATTACHMENT_REJECTED_TEMPLATE,
            language,
            template_context(**values),
            order,
        )
    except TemplateProblem as exc:
        return f"sender not told: {exc}"
    queue_for(
        settings,
        addressee,
        rendered,
        kind="attachment-rejected",
        customer=customer,
        order=order,
        idempotency_key=f"rejected:{mail.id}",
    )
    record_answer(mail.sender, now)
    return f"sender told: {mail.sender}"
