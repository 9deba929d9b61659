"""Events that may be mailed (seed 003), and recording that one happened.

``notify()`` only writes a row inside the caller's transaction, so an event
exists exactly when its cause was committed; the worker batches and mails it
later (``shared.notify.sending``) to whom its rule names (``shared.notify.rules``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
