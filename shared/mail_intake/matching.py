"""Where an inbound mail belongs: an order, the staff inbox, the record only, the bounce list.

The rules, in this order (issue 17 §3, §4, §7):

1. A delivery report → ``bounce`` with the recipients it says failed (the bounce list
   decides what is permanent); a report naming no failed recipient is recorded only,
   one naming nobody at all goes to the inbox.
2. An auto-reply → ``record_only`` (never answered), with the order it would belong to.
3. In-Reply-To, then References (newest first), naming a Message-ID the portal sent →
   that order.
4. ``[Auftrag <project_no>]`` in the subject (also ``[Order …]``, ``[Commande …]``, any
   case, behind Re:/AW:/WG:/Fwd:) → that order.
5. A known sender (a contact's or customer's address) whose customers have exactly one
   open order → the inbox with that order suggested.
6. Anyone else → the inbox ("Posteingang").

Sender check (§4), for rules 3 and 4: the order is taken only when From is one of the
addresses of that order's customer. Otherwise the mail goes to the inbox — the order is
suggested, and the reason says why it was not taken — never straight into the order.
A closed order is not written into either: its mail goes to the inbox, suggested.

Addresses are compared case-insensitively on the whole address, local part included
(``shared.mail.addresses.normalise``, as the bounce list does): RFC 5321 lets a server
distinguish ``Anna@`` from ``anna@``, but no mail provider a print shop's customers use does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.mail.addresses import normalise
from shared.mail_intake.parsing import InboundMail

TO_ORDER = "to_order"
TO_INBOX = "to_inbox"
RECORD_ONLY = "record_only"
BOUNCE = "bounce"

# The portal answers one sender automatically at most this often (issue 17 §7).
AUTO_ANSWER_INTERVAL = timedelta(hours=1)

_SUBJECT_REFERENCE = re.compile(
    r"\[\s*(?:auftrag|order|commande)\s*(?:nr\.?|no\.?|n°|#)?\s*:?\s*([A-Za-z0-9][\w./-]*)\s*\]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class OrderFacts:
    """What matching needs to know about one order."""

    order_id: int
    project_no: str
    customer_addresses: frozenset[str]  # the customer's and its contacts' addresses
    open: bool


@dataclass(frozen=True)
class SenderFacts:
    """A known sender: the customers it is an address of, and their open orders."""

    customer_ids: tuple[int, ...]
    open_order_ids: tuple[int, ...]


@dataclass(frozen=True)
class Decision:
    """What to do with a mail; build it with the functions below, not by hand."""

    action: str
    reason: str
    order_id: int | None = None
    suggested_order_id: int | None = None
    addresses: tuple[str, ...] = field(default=())


def to_order(order_id: int, reason: str) -> Decision:
    return Decision(TO_ORDER, reason, order_id=order_id)


def to_inbox(reason: str, suggested_order_id: int | None = None) -> Decision:
    return Decision(TO_INBOX, reason, suggested_order_id=suggested_order_id)


def record_only(reason: str, order_id: int | None = None) -> Decision:
    return Decision(RECORD_ONLY, reason, order_id=order_id)


def bounce(addresses: Iterable[str]) -> Decision:
    found = tuple(dict.fromkeys(normalise(address) for address in addresses))
    return Decision(BOUNCE, "delivery report: " + ", ".join(found), addresses=found)


def subject_project_numbers(subject: str) -> tuple[str, ...]:
    """The order numbers a subject names as ``[Auftrag 4711]`` (or Order/Commande), in order."""
    return tuple(dict.fromkeys(_SUBJECT_REFERENCE.findall(subject or "")))


def decide(
    mail: InboundMail,
    order_for_sent_message_id: Callable[[str], OrderFacts | None],
    order_for_project_no: Callable[[str], OrderFacts | None],
    sender_facts: Callable[[str], SenderFacts | None],
) -> Decision:
    """Apply the rules of the module docstring to ``mail``, using the three look-ups."""
    if mail.delivery_report:
        if mail.failed_recipients:
            return bounce(mail.failed_recipients)
        if mail.delivery_statuses:
            return record_only("delivery report without a failed recipient (e.g. delayed)")
        return to_inbox("delivery report that names no recipient in a form we can read")
    matched = _named_order(mail, order_for_sent_message_id, order_for_project_no)
    if mail.auto_reply:
        taken = matched if matched and matched.action == TO_ORDER else None
        return record_only(
            f"automatic reply ({mail.auto_reply_reason})", taken.order_id if taken else None
        )
    if matched:
        return matched
    if mail.sender is None:
        return to_inbox("no sender address")
    known = sender_facts(normalise(mail.sender.address))
    if known and len(set(known.open_order_ids)) == 1:
        return to_inbox(
            "known sender with one open order", suggested_order_id=known.open_order_ids[0]
        )
    if known:
        return to_inbox(f"known sender with {len(set(known.open_order_ids))} open orders")
    return to_inbox("unknown sender")


def may_answer_automatically(last_answered_at: datetime | None, now: datetime) -> bool:
    """True when the portal has not answered this sender automatically within the hour."""
    return last_answered_at is None or now - last_answered_at >= AUTO_ANSWER_INTERVAL


def _named_order(
    mail: InboundMail,
    order_for_sent_message_id: Callable[[str], OrderFacts | None],
    order_for_project_no: Callable[[str], OrderFacts | None],
) -> Decision | None:
    """The decision for the order the mail names (rules 3 and 4 with the sender check)."""
    for message_id in (*mail.in_reply_to, *reversed(mail.references)):
        order = order_for_sent_message_id(message_id)
        if order:
            return _checked(mail, order, f"reply to portal mail {message_id}")
    for project_no in subject_project_numbers(mail.subject):
        order = order_for_project_no(project_no)
        if order:
            return _checked(mail, order, f"subject names order {project_no}")
    return None


def _checked(mail: InboundMail, order: OrderFacts, how: str) -> Decision:
    """§4: the order only when From is an address of its customer, and only while open."""
    sender = normalise(mail.sender.address) if mail.sender else ""
    addresses = {normalise(address) for address in order.customer_addresses}
    if not sender or sender not in addresses:
        return to_inbox(
            f"{how}, but the sender {sender or '(none)'} is not an address of its customer",
            suggested_order_id=order.order_id,
        )
    if not order.open:
        return to_inbox(f"{how}, but the order is closed", suggested_order_id=order.order_id)
    return to_order(order.order_id, how)
