"""The staff inbox ("Posteingang"): mail no order took, for staff to assign or discard.

What lands here: mail from unknown senders, from known senders (the order suggested when
they have exactly one open order), mail naming an order whose sender is not an address of
that order's customer, mail for a closed order, mail over the limits (too large to fetch,
too many or too large attachments), and delivery reports nobody can read. Staff assign a
mail to an order (its text becomes a message there, its attachments files in Eingehend,
scanned like every upload) or to a customer (filed there; the sender may become one of
the customer's contacts), or discard it. Each decision is kept on the mail (who, when)
and handed to the audit log at one place, ``_audit``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from shared.accounts.customers import add_contact
from shared.clock import utcnow
from shared.config import Settings
from shared.conversations.importing import FileHandler, place_attachments
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.mail_intake.parsing import IntakeLimits, parse_mail
from shared.models import Customer, Order, OrderMessage, ReceivedMail, StaffUser
from shared.paging import PER_PAGE, Page, page_within

log = logging.getLogger(__name__)

FILTER_UNASSIGNED = "unassigned"
FILTER_SUGGESTED = "suggested"
FILTER_ASSIGNED = "assigned"
FILTER_DISCARDED = "discarded"
FILTERS = (FILTER_UNASSIGNED, FILTER_SUGGESTED, FILTER_ASSIGNED, FILTER_DISCARDED)

ACTION_ASSIGNED_ORDER = "assigned to order"
ACTION_ASSIGNED_CUSTOMER = "assigned to customer"
ACTION_DISCARDED = "discarded"

# Staff chose to take what the mail carries: the per-mailbox limits no longer apply.
_NO_LIMITS = IntakeLimits(max_attachments=10**6, max_total_attachment_bytes=2**62)


def _condition(name: str):
    if name == FILTER_SUGGESTED:
        return (ReceivedMail.inbox_state == ReceivedMail.INBOX_OPEN) & (
            ReceivedMail.suggested_order.is_null(False)
        )
    if name == FILTER_ASSIGNED:
        return ReceivedMail.inbox_state == ReceivedMail.INBOX_ASSIGNED
    if name == FILTER_DISCARDED:
        return ReceivedMail.inbox_state == ReceivedMail.INBOX_DISCARDED
    return (ReceivedMail.inbox_state == ReceivedMail.INBOX_OPEN) & (
        ReceivedMail.suggested_order.is_null()
    )


def inbox_page(name: str, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One filter's mail, newest first, paged."""
    if name not in FILTERS:
        raise Invalid("filter", "one of " + ", ".join(FILTERS))
    query = ReceivedMail.select().where(_condition(name))
    total = query.count()
    number = page_within(page, total, per_page)
    newest = query.order_by(ReceivedMail.received_at.desc(), ReceivedMail.id.desc())
    return Page(list(newest.paginate(number, per_page)), total, number, per_page)


def inbox_counts() -> dict[str, int]:
    """How many mails each filter holds, by filter name."""
    return {name: ReceivedMail.select().where(_condition(name)).count() for name in FILTERS}


def inbox_mail(mail_id: int) -> ReceivedMail | None:
    """A mail of the staff inbox (open, assigned or discarded), or None."""
    return ReceivedMail.get_or_none((ReceivedMail.id == mail_id) & (ReceivedMail.inbox_state != ""))


def assign_to_order(
    settings: Settings,
    mail: ReceivedMail,
    order: Order,
    staff: StaffUser,
    *,
    internal: bool = False,
    on_file: FileHandler | None = None,
) -> OrderMessage:
    """The mail becomes a message of ``order``; its attachments files in Eingehend.

    Staff decide here: neither the sender check nor the attachment limits apply. An
    ``internal`` message is for staff only. The held raw mail is removed after the commit.
    """
    if mail.inbox_state not in (ReceivedMail.INBOX_OPEN, ReceivedMail.INBOX_DISCARDED):
        raise Conflict("this mail has been assigned already")
    held = Path(mail.held_path) if mail.held_path else None
    work = Path(tempfile.mkdtemp(prefix="assign-", dir=_work_root(settings)))
    links: list[Path] = []
    try:
        parsed = parse_mail(held, work, _NO_LIMITS) if held and held.is_file() else None
        with write_transaction():
            fresh = ReceivedMail.get_by_id(mail.id)
            if fresh.inbox_state not in (ReceivedMail.INBOX_OPEN, ReceivedMail.INBOX_DISCARDED):
                raise Conflict("this mail has been assigned already")
            message = OrderMessage.create(
                order=order,
                author=OrderMessage.AUTHOR_CUSTOMER,
                source=OrderMessage.SOURCE_MAIL,
                internal=internal,
                sender=_sender_text(fresh),
                body=fresh.text_body or fresh.subject,
                received_mail=fresh,
            )
            files = (
                place_attachments(settings, message, fresh, parsed.print_attachments, links)
                if parsed
                else []
            )
            _handled(fresh, ReceivedMail.INBOX_ASSIGNED, staff, order=order)
            _audit(ACTION_ASSIGNED_ORDER, staff, fresh, order.project_no)
    except BaseException:
        for path in links:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if held is not None:
        held.unlink(missing_ok=True)
    for file in files:
        (on_file or (lambda _id: None))(file.id)
    return message


def assign_to_customer(
    mail: ReceivedMail, customer: Customer, staff: StaffUser, *, add_sender: bool = False
) -> ReceivedMail:
    """File the mail under ``customer``; ``add_sender`` makes the sender one of its contacts."""
    with write_transaction():
        fresh = ReceivedMail.get_by_id(mail.id)
        if fresh.inbox_state not in (ReceivedMail.INBOX_OPEN, ReceivedMail.INBOX_DISCARDED):
            raise Conflict("this mail has been assigned already")
        fresh.customer = customer
        _handled(fresh, ReceivedMail.INBOX_ASSIGNED, staff)
        detail = customer.customer_no
        if add_sender and fresh.sender:
            add_contact(customer, fresh.sender, fresh.sender_name, field="sender")
            detail += f", {fresh.sender} added as contact"
        _audit(ACTION_ASSIGNED_CUSTOMER, staff, fresh, detail)
    return fresh


def discard(mail: ReceivedMail, staff: StaffUser) -> ReceivedMail:
    """Put the mail aside; it stays listed under "discarded" (and may still be assigned)."""
    with write_transaction():
        fresh = ReceivedMail.get_by_id(mail.id)
        if fresh.inbox_state != ReceivedMail.INBOX_OPEN:
            raise Conflict("only unassigned mail can be discarded")
        _handled(fresh, ReceivedMail.INBOX_DISCARDED, staff)
        _audit(ACTION_DISCARDED, staff, fresh, "")
    return fresh


def _handled(mail: ReceivedMail, state: str, staff: StaffUser, order: Order | None = None) -> None:
    mail.inbox_state = state
    mail.handled_by = staff
    mail.handled_at = utcnow()
    if order is not None:
        mail.order = order
    mail.save()


def _audit(action: str, staff: StaffUser, mail: ReceivedMail, detail: str) -> None:
    """The one place the staff inbox's decisions are handed to the audit log.

    Called inside the decision's transaction. Until ``shared.audit`` is connected here,
    the decision is logged; it is also kept on the mail itself (``handled_by``,
    ``handled_at``, ``inbox_state``).
    """
    log.info(
        "staff inbox: %s %s mail %s from %s%s",
        staff.username,
        action,
        mail.message_id,
        mail.sender or "(no sender)",
        f" ({detail})" if detail else "",
    )


def _sender_text(mail: ReceivedMail) -> str:
    if mail.sender_name:
        return f"{mail.sender_name} <{mail.sender}>"
    return mail.sender


def _work_root(settings: Settings) -> Path:
    root = settings.storage.staging_root / "mail-work"
    root.mkdir(parents=True, exist_ok=True)
    return root
