"""Notification events (seed 003): what can be mailed, to whom, and recording that it happened.

``notify()`` only writes a row inside the caller's transaction, so an event
exists exactly when its cause was committed; the worker batches and mails it
later (``shared.notify.sending``). Who gets the mail is a ``NotificationRule``:
the global one per event, or a customer's override.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.accounts.customers import check_email
from shared.clock import utcnow
from shared.errors import Invalid
from shared.models import (
    Customer,
    Notification,
    NotificationRule,
    NotificationRuleStaff,
    Order,
    OrderFile,
    StaffUser,
    Ticket,
)

LOGIN_CREATED = "login_created"
LINK_REQUESTED = "link_requested"
PASSWORD_SET = "password_set"
UPLOAD_RECEIVED = "upload_received"
FILE_REJECTED = "file_rejected"
FILES_DELIVERED = "files_delivered"
FILE_FINAL = "file_final"
UPLOAD_REQUEST = "upload_request"
DEADLINE_ALERT = "deadline_alert"

CUSTOMER = NotificationRule.ROLE_CUSTOMER
OWNER = NotificationRule.ROLE_OWNER


@dataclass(frozen=True)
class EventKind:
    """One event that sends mail, with its built-in rule."""

    kind: str
    template_name: str
    roles: tuple[str, ...]
    active: bool = True


EVENTS: dict[str, EventKind] = {
    event.kind: event
    for event in (
        EventKind(LOGIN_CREATED, "Portalzugang angelegt", (OWNER,)),
        # Off by default: customers ask for links often, staff rarely need to know.
        EventKind(LINK_REQUESTED, "Neuer Aktivierungslink angefordert", (OWNER,), False),
        EventKind(PASSWORD_SET, "Passwort gesetzt", (OWNER,)),
        EventKind(UPLOAD_RECEIVED, "Upload eingegangen", (OWNER,)),
        EventKind(FILE_REJECTED, "Datei abgelehnt", (CUSTOMER, OWNER)),
        EventKind(FILES_DELIVERED, "Dateien an Hotfolder übergeben", (OWNER,)),
        EventKind(FILE_FINAL, "Datei in Final bereitgestellt", (CUSTOMER,)),
        EventKind(UPLOAD_REQUEST, "Upload-Aufforderung", (CUSTOMER,)),
        EventKind(DEADLINE_ALERT, "Terminwarnung", (CUSTOMER, OWNER)),
    )
}


def notify(
    kind: str,
    *,
    order: Order | None = None,
    customer: Customer | None = None,
    file: OrderFile | None = None,
    ticket: Ticket | None = None,
    detail: str = "",
) -> Notification:
    """Record that ``kind`` happened; call inside the caller's ``write_transaction()``."""
    if kind not in EVENTS:
        raise ValueError(f"unknown notification event {kind!r}")
    if order is None and file is not None:
        order = file.order
    if customer is None and order is not None:
        customer = order.customer
    return Notification.create(
        kind=kind, customer=customer, order=order, file=file, ticket=ticket, detail=detail
    )


def notify_files(kind: str, files: Iterable[tuple[OrderFile, str]]) -> None:
    """``notify`` for many files at once, as one INSERT: (file, detail) pairs.

    Call inside the caller's ``write_transaction()``; each file's order (with its
    customer id) should be loaded already.
    """
    if kind not in EVENTS:
        raise ValueError(f"unknown notification event {kind!r}")
    rows = [
        {
            "kind": kind,
            "customer": file.order.customer_id,
            "order": file.order_id,
            "file": file.id,
            "detail": detail,
        }
        for file, detail in files
    ]
    if rows:
        Notification.insert_many(rows).execute()


def _default_rule(kind: str, customer: Customer | None = None) -> NotificationRule:
    event = EVENTS[kind]
    return NotificationRule(
        kind=kind,
        customer=customer,
        active=event.active,
        roles=",".join(event.roles),
        template_name=event.template_name,
    )


def global_rule(kind: str) -> NotificationRule:
    """The rule for everybody; the built-in one (not yet saved) until staff change it."""
    if kind not in EVENTS:
        raise Invalid("kind", f"unknown notification event {kind!r}")
    row = NotificationRule.get_or_none(
        (NotificationRule.kind == kind) & NotificationRule.customer.is_null()
    )
    return row or _default_rule(kind)


def customer_override(kind: str, customer: Customer) -> NotificationRule | None:
    """The customer's own rule for ``kind``, if staff made one."""
    return NotificationRule.get_or_none(
        (NotificationRule.kind == kind) & (NotificationRule.customer == customer)
    )


def rule_for(kind: str, customer: Customer | None) -> NotificationRule:
    """What applies to ``customer``: the override, else the global rule."""
    if customer is not None:
        override = customer_override(kind, customer)
        if override is not None:
            return override
    return global_rule(kind)


def overrides(kind: str) -> list[NotificationRule]:
    """Every customer override of ``kind``, by customer number."""
    return list(
        NotificationRule.select(NotificationRule, Customer)
        .join(Customer)
        .where(NotificationRule.kind == kind)
        .order_by(Customer.customer_no)
    )


def extra_staff_of(rule: NotificationRule) -> list[StaffUser]:
    """The additional staff users of a stored rule (a built-in rule has none)."""
    if rule.id is None:
        return []
    return list(
        StaffUser.select()
        .join(NotificationRuleStaff)
        .where(NotificationRuleStaff.rule == rule)
        .order_by(StaffUser.name)
    )


def parse_addresses(text: str) -> list[str]:
    """Free addresses typed by staff (commas, semicolons or lines); raise Invalid on a bad one."""
    found: list[str] = []
    for part in text.replace(";", ",").replace("\n", ",").split(","):
        address = check_email("extra_addresses", part)
        if address and address.lower() not in {a.lower() for a in found}:
            found.append(address)
    return found


def save_rule(
    kind: str,
    customer: Customer | None,
    *,
    active: bool,
    roles: Iterable[str],
    extra_staff: Iterable[StaffUser],
    extra_addresses: str,
    template_name: str,
) -> NotificationRule:
    """Store the global rule (``customer=None``) or a customer's override; inside a transaction."""
    if kind not in EVENTS:
        raise Invalid("kind", f"unknown notification event {kind!r}")
    roles = [role for role in NotificationRule.ROLES if role in set(roles)]
    addresses = parse_addresses(extra_addresses)
    if not template_name.strip():
        raise Invalid("template_name", "required")
    row = customer_override(kind, customer) if customer else global_rule(kind)
    if row is None:
        row = _default_rule(kind, customer)
    row.active = active
    row.roles = ",".join(roles)
    row.extra_addresses = ",".join(addresses)
    row.template_name = template_name.strip()
    row.updated_at = utcnow()
    row.save()
    NotificationRuleStaff.delete().where(NotificationRuleStaff.rule == row).execute()
    for staff in {staff.id: staff for staff in extra_staff}.values():
        NotificationRuleStaff.create(rule=row, staff=staff)
    return row


def delete_override(kind: str, customer: Customer) -> bool:
    """Drop a customer's override so the global rule applies again."""
    override = customer_override(kind, customer)
    if override is None:
        return False
    override.delete_instance(recursive=True)
    return True
