"""Who gets the mail of a notification event: the global rule, or a customer's override."""

from __future__ import annotations

from collections.abc import Iterable

from shared import audit
from shared.clock import utcnow
from shared.errors import Invalid
from shared.events import EVENTS
from shared.mail.addresses import check_email
from shared.models import Customer, NotificationRule, NotificationRuleStaff, StaffUser


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
    chosen = {staff.id: staff for staff in extra_staff}.values()
    for staff in chosen:
        NotificationRuleStaff.create(rule=row, staff=staff)
    audit.record(
        audit.RULE_SAVE,
        f"notification {kind}" + (f" for customer {customer.customer_no}" if customer else ""),
        f"active={active}; roles={row.roles}; staff="
        + ",".join(staff.username for staff in chosen)
        + f"; addresses={row.extra_addresses}; template={row.template_name}",
        customer_no=customer.customer_no if customer else "",
    )
    return row


def delete_override(kind: str, customer: Customer) -> bool:
    """Drop a customer's override so the global rule applies again."""
    override = customer_override(kind, customer)
    if override is None:
        return False
    override.delete_instance(recursive=True)
    audit.record(
        audit.RULE_DELETE,
        f"notification {kind} for customer {customer.customer_no}",
        "back to the rule for everybody",
        customer_no=customer.customer_no,
    )
    return True
