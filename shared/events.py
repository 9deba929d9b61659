"""Events that may be mailed (seed 003), and recording that one happened.

``notify()`` only writes a row inside the caller's transaction, so an event
exists exactly when its cause was committed; the worker batches and mails it
later (``shared.notify.sending``) to whom its rule names (``shared.notify.rules``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.clock import utcnow
from shared.models import (
    Customer,
    Notification,
    NotificationRule,
    Order,
    OrderFile,
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
ACTIVATION_UNDELIVERABLE = "activation_undeliverable"
CUSTOMER_MESSAGE = "customer_message"
STAFF_MESSAGE = "staff_message"
PROOF_DECIDED = "proof_decided"

CUSTOMER = NotificationRule.ROLE_CUSTOMER
OWNER = NotificationRule.ROLE_OWNER


@dataclass(frozen=True)
class EventKind:
    """One event that sends mail, with its built-in rule."""

    kind: str
    template_name: str
    roles: tuple[str, ...]
    active: bool = True
    # Mailed by its cause right away (and recorded already processed) instead of batched.
    immediate: bool = False


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
        # The customer asked for a new link that has nowhere to go: staff must add an address.
        EventKind(ACTIVATION_UNDELIVERABLE, "Aktivierungslink nicht zustellbar", (OWNER,)),
        # A customer wrote in the order's conversation (on the portal or by mail).
        EventKind(CUSTOMER_MESSAGE, "Neue Nachricht vom Kunden", (OWNER,)),
        # Staff wrote to the customer: the mail carries the message itself and goes out at
        # once, not batched (shared.conversations.messages); its rule says to whom.
        EventKind(STAFF_MESSAGE, "Nachricht zum Auftrag", (CUSTOMER,), immediate=True),
        # The customer approved or rejected a proof (Druckfreigabe): prepress goes on.
        EventKind(PROOF_DECIDED, "Druckfreigabe entschieden", (OWNER,)),
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
    if EVENTS[kind].immediate:
        raise ValueError(f"{kind} is mailed by its cause: record it with notify_done")
    if order is None and file is not None:
        order = file.order
    if customer is None and order is not None:
        customer = order.customer
    return Notification.create(
        kind=kind, customer=customer, order=order, file=file, ticket=ticket, detail=detail
    )


def notify_done(
    kind: str,
    *,
    order: Order | None = None,
    customer: Customer | None = None,
    detail: str = "",
    outcome: str = "",
) -> Notification:
    """Record an ``immediate`` event its cause has mailed already (the worker skips it)."""
    if kind not in EVENTS:
        raise ValueError(f"unknown notification event {kind!r}")
    if customer is None and order is not None:
        customer = order.customer
    return Notification.create(
        kind=kind,
        customer=customer,
        order=order,
        detail=detail,
        processed_at=utcnow(),
        outcome=outcome[:1000],
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
