"""Who a mail goes to, with escalation (SPEC §Behaviour 6, seed 003): the one recipient chain.

Levels, first usable wins: order contact → customer (favorite contact, else the
customer's email) → the order's staff owner → every admin. An address is
unusable when none is stored, it is on the bounce list, or its staff user is
disabled. Each address carries the reason it was chosen, including every level
that was skipped on the way, so the outbox can say who got the mail and why.

``customer_address`` is the customer part alone (activation mails, manual sends);
``customer_contact`` goes on to staff when the customer has no usable address.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.mail.addresses import normalise
from shared.mail.bounces import bounced
from shared.models import Contact, Customer, NotificationRule, Order, StaffUser

REASON_LIMIT = 255  # recipient_reason is a VARCHAR(255) on PostgreSQL


@dataclass(frozen=True)
class Addressee:
    """One address to mail; ``customer_side`` mails get the customer's language and Reply-To."""

    email: str
    reason: str
    customer_side: bool
    staff: StaffUser | None = None


def _reason(level: str, skipped: list[str]) -> str:
    text = level if not skipped else f"{level} (escalated: {'; '.join(skipped)})"
    return text[:REASON_LIMIT]


def _staff_problem(staff: StaffUser) -> str:
    """Why ``staff`` cannot be mailed, or "" if they can."""
    if not staff.active:
        return "is disabled"
    if not staff.email:
        return "has no email address"
    if bounced([staff.email]):
        return "is on the bounce list"
    return ""


def admins(skipped: list[str]) -> list[Addressee]:
    """Every active admin with a usable address (the last level)."""
    rows = StaffUser.select().where(
        (StaffUser.role == StaffUser.ROLE_ADMIN) & (StaffUser.active == True)  # noqa: E712
    )
    found = [row for row in rows.order_by(StaffUser.id) if not _staff_problem(row)]
    if not found:
        skipped.append("no admin with a usable address")
        return []
    reason = _reason("admin", skipped)
    return [Addressee(row.email, reason, False, row) for row in found]


def owner_of(customer: Customer | None, order: Order | None) -> StaffUser | None:
    """The order's staff owner; for events without an order, the owner of the latest order."""
    if order is not None:
        return order.owner if order.owner_id else None
    if customer is None:
        return None
    latest = (
        Order.select()
        .where((Order.customer == customer) & Order.owner.is_null(False))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .first()
    )
    return latest.owner if latest else None


def staff_owner(customer: Customer | None, order: Order | None, skipped: list[str]):
    """The owner level, escalating to admins."""
    owner = owner_of(customer, order)
    if owner is None:
        skipped.append("no staff owner")
        return admins(skipped)
    problem = _staff_problem(owner)
    if not problem:
        return [Addressee(owner.email, _reason("staff owner", skipped), False, owner)]
    skipped.append(f"staff owner {owner.username} {problem}")
    return admins(skipped)


def _customer_candidates(customer: Customer, order: Order | None) -> list[tuple[str, str]]:
    candidates = []
    if order is not None and order.contact_id:
        candidates.append(("order contact", order.contact.email))
    favorite = (
        Contact.select()
        .where((Contact.customer == customer) & (Contact.favorite == True))  # noqa: E712
        .first()
    )
    if favorite is not None:
        candidates.append(("favorite contact", favorite.email))
    candidates.append(("customer email", customer.email))
    return candidates


def customer_address(
    customer: Customer, order: Order | None, skipped: list[str] | None = None
) -> Addressee | None:
    """The order contact, else the favorite contact, else the customer's email: the first
    one stored and not on the bounce list; None if there is none (skipped levels noted)."""
    skipped = [] if skipped is None else skipped
    for level, email in _customer_candidates(customer, order):
        if not email:
            continue
        if bounced([email]):
            skipped.append(f"{level} {email} is on the bounce list")
            continue
        return Addressee(email, _reason(level, skipped), True)
    return None


def customer_contact(
    customer: Customer | None, order: Order | None, skipped: list[str]
) -> list[Addressee]:
    """``customer_address``, escalating to the staff owner and admins when there is none."""
    if customer is None:
        skipped.append("no customer")
        return staff_owner(customer, order, skipped)
    found = customer_address(customer, order, skipped)
    if found is not None:
        return [found]
    skipped.append(f"customer {customer.customer_no} has no usable address")
    return staff_owner(customer, order, skipped)


def all_staff(skipped: list[str]) -> list[Addressee]:
    """Every active staff user with a usable address; admins if there is none."""
    found = [row for row in StaffUser.select().order_by(StaffUser.id) if not _staff_problem(row)]
    if not found:
        skipped.append("no staff user with a usable address")
        return admins(skipped)
    reason = _reason("all staff", skipped)
    return [Addressee(row.email, reason, False, row) for row in found]


def additional_staff(staff: StaffUser) -> list[Addressee]:
    problem = _staff_problem(staff)
    if not problem:
        return [Addressee(staff.email, "additional staff", False, staff)]
    return admins([f"additional staff {staff.username} {problem}"])


def resolve(
    rule: NotificationRule,
    customer: Customer | None,
    order: Order | None,
    extra_staff: list[StaffUser],
) -> list[Addressee]:
    """Every address ``rule`` names for this customer and order, once each (first reason wins)."""
    found: list[Addressee] = []
    for role in rule.role_list:
        if role == NotificationRule.ROLE_CUSTOMER:
            found += customer_contact(customer, order, [])
        elif role == NotificationRule.ROLE_OWNER:
            found += staff_owner(customer, order, [])
        elif role == NotificationRule.ROLE_STAFF:
            found += all_staff([])
        elif role == NotificationRule.ROLE_ADMINS:
            found += admins([])
    for staff in extra_staff:
        found += additional_staff(staff)
    unusable = bounced(rule.address_list)
    found += [
        Addressee(address, "additional address", False)
        for address in rule.address_list
        if normalise(address) not in unusable
    ]
    unique: dict[str, Addressee] = {}
    for addressee in found:
        unique.setdefault(normalise(addressee.email), addressee)
    return list(unique.values())
