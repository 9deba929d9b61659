"""The audit log: who did what, when and from where. Append-only.

Every domain records its own changes with ``record()`` inside the transaction of the
change, so an entry exists exactly when the change was committed (a refused or rolled
back change leaves none). Who acts is set once per unit of work, not passed through
every call: the portal sets it per request (the signed-in staff user or customer login,
the API token, or nobody yet, with the client's address), the ``ptportal`` command per
command; the worker and the agent act as ``system``.

Nothing edits or deletes entries except the retention (``delete_expired``), run daily by
the worker after ``[audit] retention_days``.

The mailbox feature records its assignments with
``record(MAILBOX_ASSIGN, target=..., customer_no=..., detail=...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from peewee import Expression

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import AuditEntry
from shared.paging import PER_PAGE, Page, page_within

# Who acts.
ACTOR_STAFF = "staff"
ACTOR_CUSTOMER = "customer"
ACTOR_API = "api"
ACTOR_COMMAND = "command"
ACTOR_SYSTEM = "system"
ACTOR_ANONYMOUS = "anonymous"
ACTOR_KINDS = (
    ACTOR_STAFF,
    ACTOR_CUSTOMER,
    ACTOR_API,
    ACTOR_COMMAND,
    ACTOR_SYSTEM,
    ACTOR_ANONYMOUS,
)

# What happened: "<area>.<verb>"; the staff page filters by area.
SIGN_IN = "sign_in.success"
SIGN_IN_FAILED = "sign_in.failure"
STAFF_SIGN_IN = "sign_in.staff_success"
STAFF_SIGN_IN_FAILED = "sign_in.staff_failure"
SECOND_FACTOR_FAILED = "sign_in.second_factor_failure"
RECOVERY_CODE_USED = "sign_in.recovery_code_used"
FILE_DOWNLOAD = "file.download"
FILE_UPLOAD = "file.upload"
FILE_RELEASE = "file.release"
FILE_DELETE = "file.delete"
CUSTOMER_CREATE = "customer.create"
CUSTOMER_UPDATE = "customer.update"
CONTACT_SAVE = "customer.contact_save"
CONTACT_DELETE = "customer.contact_delete"
LOGIN_CREATE = "login.create"
LOGIN_UPDATE = "login.update"
LOGIN_STATE = "login.state"
LOGIN_LINK_SENT = "login.link_sent"
LOGIN_PASSWORD_SET = "login.password_set"
DEFAULTS_UPDATE = "defaults.update"
DEFAULTS_APPLY = "defaults.apply"
RULE_SAVE = "notification.rule_save"
RULE_DELETE = "notification.rule_delete"
TEMPLATE_SAVE = "template.save"
SIGNATURE_SAVE = "template.signature_save"
TOKEN_CREATE = "token.create"
TOKEN_REVOKE = "token.revoke"
MAILBOX_ASSIGN = "mailbox.assign"
ORDER_CREATE = "order.create"
ORDER_UPDATE = "order.update"
ORDER_STATE = "order.state"
TICKET_ADD = "order.ticket_add"
STAFF_CREATE = "staff.create"
STAFF_UPDATE = "staff.update"
STAFF_LINK_SENT = "staff.link_sent"
STAFF_PASSWORD_SET = "staff.password_set"
TWO_FACTOR_ENABLE = "staff.two_factor_enable"
TWO_FACTOR_DISABLE = "staff.two_factor_disable"
RECOVERY_CODES_NEW = "staff.recovery_codes_new"

AREAS = (
    "sign_in",
    "file",
    "customer",
    "login",
    "order",
    "defaults",
    "notification",
    "template",
    "token",
    "mailbox",
    "staff",
)

# Column widths: VARCHAR(255) on PostgreSQL.
_SHORT = 255
_DETAIL = 4000


@dataclass(frozen=True)
class Actor:
    """Who acts: a kind (staff, customer, api, command, system, anonymous), a name (the
    username or token name) and the client's address when there is one."""

    kind: str
    name: str = ""
    address: str = ""

    def as_(self, kind: str, name: str) -> Actor:
        """The same client, now known as ``kind`` ``name`` (e.g. after a password check)."""
        return replace(self, kind=kind, name=name)


SYSTEM = Actor(ACTOR_SYSTEM, "worker")

_actor: ContextVar[Actor | Callable[[], Actor]] = ContextVar("audit_actor", default=SYSTEM)


def current_actor() -> Actor:
    """Who acts now (``system`` when nobody said)."""
    found = _actor.get()
    return found() if callable(found) else found


@contextlib.contextmanager
def acting_as(actor: Actor | Callable[[], Actor]) -> Iterator[None]:
    """Within the block, records name ``actor`` (or what the callable answers when asked)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def set_actor(actor: Actor | Callable[[], Actor]):
    """Set who acts until ``reset_actor(token)``: for frameworks with begin/end hooks."""
    return _actor.set(actor)


def reset_actor(token) -> None:
    _actor.reset(token)


def record(
    action: str,
    target: str = "",
    detail: str = "",
    *,
    customer_no: str = "",
    actor: Actor | None = None,
) -> AuditEntry:
    """Append one entry; inside the caller's write transaction when there is one."""
    who = actor or current_actor()
    with write_transaction():
        return AuditEntry.create(
            actor_kind=who.kind[:_SHORT],
            actor_name=who.name[:_SHORT],
            address=who.address[:_SHORT],
            action=action[:_SHORT],
            target=target[:_SHORT],
            customer_no=customer_no[:_SHORT],
            detail=detail[:_DETAIL],
        )


def changes(before: dict, after: dict) -> str:
    """``field: old → new`` for every field whose value differs, for an entry's detail."""
    return "; ".join(
        f"{name}: {before.get(name)!s} → {value!s}"
        for name, value in after.items()
        if before.get(name) != value
    )


@dataclass(frozen=True)
class AuditFilter:
    """What the staff page narrows the log to; empty fields do not narrow."""

    area: str = ""
    actor: str = ""
    customer_no: str = ""
    text: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Expression]:
        found = []
        if self.area in AREAS:
            found.append(AuditEntry.action.startswith(self.area + "."))
        if self.actor:
            found.append(AuditEntry.actor_name ** f"%{self.actor[:100]}%")
        if self.customer_no:
            found.append(AuditEntry.customer_no == self.customer_no[:100])
        if self.text:
            pattern = f"%{self.text[:100]}%"
            found.append((AuditEntry.target**pattern) | (AuditEntry.detail**pattern))
        if self.since is not None:
            found.append(AuditEntry.created_at >= self.since)
        if self.until is not None:
            found.append(AuditEntry.created_at < self.until)
        return found


def _matching(filters: AuditFilter):
    conditions = filters.conditions()
    query = AuditEntry.select()
    return query.where(*conditions) if conditions else query


def search(filters: AuditFilter, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """A page of matching entries, newest first."""
    query = _matching(filters)
    total = query.count()
    number = page_within(page, total, per_page)
    newest_first = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    return Page(list(newest_first.paginate(number, per_page)), total, number, per_page)


def every_entry(filters: AuditFilter) -> Iterator[AuditEntry]:
    """Every matching entry, oldest first, fetched as it is read (for the CSV export)."""
    query = _matching(filters).order_by(AuditEntry.created_at, AuditEntry.id)
    yield from query.iterator()


def delete_expired(retention_days: int, now: datetime | None = None) -> int:
    """The retention: drop entries older than ``retention_days``; returns how many went."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    with write_transaction():
        return AuditEntry.delete().where(AuditEntry.created_at < cutoff).execute()
