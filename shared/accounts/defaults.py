"""The "ptportal" system defaults (seed 004, Systemstandards) and how they apply.

They say how new portal logins are named and in which state they start, what a new
customer gets (hotfolder, days until its files are deleted) and what the portal shows
customers on their order pages. Changing them affects new customers only, or, when an
admin chooses so after seeing the preview, the existing customers too: their hotfolder
switch and deletion days are set to the new values. Existing logins keep their usernames
and states (renaming or deactivating them would lock people out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shared import audit
from shared.clock import utcnow
from shared.db import write_transaction
from shared.errors import Invalid
from shared.models import Customer, PortalLogin, SystemDefault

MAX_DELETE_AFTER_DAYS = 3650
PREVIEW_ROWS = 50
# The defaults that existing customers can be brought in line with.
CUSTOMER_FIELDS = ("create_hotfolder", "hotfolder_delete_after_days")


@dataclass(frozen=True)
class DefaultsDraft:
    """What the defaults form holds."""

    username_from: str
    login_state: str
    create_hotfolder: bool
    hotfolder_delete_after_days: int
    show_job_description: bool
    show_due_date: bool
    show_tickets: bool

    @classmethod
    def of(cls, row: SystemDefault) -> DefaultsDraft:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CustomerChange:
    """One existing customer and what applying the defaults would change for it."""

    customer: Customer
    changes: dict[str, tuple[object, object]]


@dataclass(frozen=True)
class Preview:
    """How many existing customers would change, and the first of them."""

    total: int
    rows: list[CustomerChange]


def check_defaults(draft: DefaultsDraft) -> None:
    """Raise Invalid naming the first field that cannot be stored."""
    if draft.username_from not in SystemDefault.USERNAME_SCHEMES:
        raise Invalid("username_from", "customer_no or email")
    if draft.login_state not in PortalLogin.STATES:
        raise Invalid("login_state", "active or inactive")
    if not 0 <= draft.hotfolder_delete_after_days <= MAX_DELETE_AFTER_DAYS:
        raise Invalid("hotfolder_delete_after_days", f"from 0 to {MAX_DELETE_AFTER_DAYS}")


def _differs(draft: DefaultsDraft):
    return (Customer.create_hotfolder != draft.create_hotfolder) | (
        Customer.hotfolder_delete_after_days != draft.hotfolder_delete_after_days
    )


def preview(draft: DefaultsDraft) -> Preview:
    """What applying ``draft`` to the existing customers would change (nothing is written)."""
    check_defaults(draft)
    query = Customer.select().where(_differs(draft)).order_by(Customer.customer_no)
    rows = []
    for customer in query.limit(PREVIEW_ROWS):
        changes = {
            name: (getattr(customer, name), getattr(draft, name))
            for name in CUSTOMER_FIELDS
            if getattr(customer, name) != getattr(draft, name)
        }
        rows.append(CustomerChange(customer, changes))
    return Preview(query.count(), rows)


def save_defaults(draft: DefaultsDraft, *, apply_to_existing: bool) -> int:
    """Store the defaults; with ``apply_to_existing`` also set them on every customer.

    Returns how many existing customers were changed. Both go into the audit log.
    """
    check_defaults(draft)
    with write_transaction():
        row = SystemDefault.portal()
        before = asdict(DefaultsDraft.of(row))
        for name, value in asdict(draft).items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        row.save()
        changed = audit.changes(before, asdict(draft))
        if changed:
            audit.record(audit.DEFAULTS_UPDATE, "system defaults ptportal", changed)
        applied = 0
        if apply_to_existing:
            applied = (
                Customer.update(
                    create_hotfolder=draft.create_hotfolder,
                    hotfolder_delete_after_days=draft.hotfolder_delete_after_days,
                    updated_at=utcnow(),
                )
                .where(_differs(draft))
                .execute()
            )
            audit.record(
                audit.DEFAULTS_APPLY,
                "system defaults ptportal",
                f"{applied} existing customers set to create_hotfolder="
                f"{draft.create_hotfolder}, hotfolder_delete_after_days="
                f"{draft.hotfolder_delete_after_days}",
            )
    return applied


def set_two_factor_required(required: bool) -> None:
    """Admins require (or stop requiring) a second factor of every staff user."""
    with write_transaction():
        row = SystemDefault.portal()
        if row.staff_two_factor_required == required:
            return
        row.staff_two_factor_required = required
        row.updated_at = utcnow()
        row.save()
        audit.record(
            audit.DEFAULTS_UPDATE,
            "system defaults ptportal",
            f"staff_two_factor_required: {not required} → {required}",
        )


def portal_shows() -> SystemDefault:
    """The defaults row, for what customer pages show (job description, due date, tickets)."""
    return SystemDefault.portal()
