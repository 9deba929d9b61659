"""Proof approval (Druckfreigabe): staff ask, the customer approves or rejects, the workflow reads.

1. ``request_proof``: staff pick a clean, scanned file of the order's ``In Bearbeitung``
   whose pages can be previewed. It becomes the next version (1, 2, …); every earlier
   version is superseded at that moment. The mail to the customer (template
   ``Druckfreigabe angefordert``, recipient chain ``customer_address``, link
   ``links.proof``) is queued in the same transaction: no proof without its mail.
2. ``decide``: the customer approves, or rejects with a comment, the newest version, once.
   A decision on a superseded or already decided version is refused (``ProofOutdated``,
   ``ProofDecided``: Conflict, the view answers 409 with the sentence). Recorded: the
   decision, its time, the login, the address it came from, the comment, and the SHA-256
   of the file the customer saw (taken when the proof was asked for; a file never
   changes its bytes). The event ``proof_decided`` tells the order's staff owner.
3. ``approval_record``: the newest proof of an order and its decision as JSON, for the
   workflow API (``GET /api/v1/orders/<no>/approval``).
4. ``approvals_to_place``: every decided version, once, for the hotfolder agents, which
   place ``shared.orders.workflow_xml.approval_document`` of it next to the jobs (in
   their notification folder) and say so (``approvals_placed``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from peewee import IntegrityError, fn

from shared.accounts.logins import customer_may_upload
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.events import PROOF_DECIDED, notify
from shared.files.access import may_preview
from shared.files.folders import FOLDER_IN_PROGRESS
from shared.files.preflighting import stored_preflight
from shared.links import PortalLinks
from shared.mail.defaults import PROOF_TEMPLATE
from shared.mail.templates import template_context
from shared.models import Customer, Order, OrderFile, PortalLogin, Proof, StaffUser
from shared.notify.compose import customer_language, order_values, queue_for, render_for
from shared.notify.recipients import customer_address

log = logging.getLogger(__name__)

MAX_COMMENT = 4000
MAIL_KIND = "proof-request"
STATE_PENDING = "pending"


class CustomerUnreachable(Conflict):
    """The customer cannot be asked: no portal login that may sign in (``reason`` "login"),
    or no usable email address (``reason`` "address")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProofOutdated(Conflict):
    """The proof has been superseded by a newer version; ``newest`` is that version."""

    def __init__(self, version: int, newest: int) -> None:
        super().__init__(f"proof version {version} was superseded by version {newest}")
        self.version = version
        self.newest = newest


class ProofDecided(Conflict):
    """The proof has been decided already; ``proof`` says how and when."""

    def __init__(self, proof: Proof) -> None:
        super().__init__(f"proof version {proof.version} was {proof.decision} already")
        self.proof = proof


def proof_state(proof: Proof) -> str:
    """approved / rejected / pending (undecided and newest) / superseded (undecided, older)."""
    if proof.decision:
        return proof.decision
    return "superseded" if proof.superseded_at else STATE_PENDING


def is_proof_candidate(file: OrderFile) -> bool:
    """A file staff may ask approval for: clean and scanned in In Bearbeitung, with pages to
    preview (its preflight is done)."""
    if file.folder != FOLDER_IN_PROGRESS or not may_preview(file, staff=False):
        return False
    stored = stored_preflight(file)
    return stored is not None and stored.pages > 0 and stored.has_thumbnail


def proof_candidates(order: Order) -> list[OrderFile]:
    """The order's files staff may ask approval for, newest first."""
    files = OrderFile.select().where(
        (OrderFile.order == order)
        & (OrderFile.folder == FOLDER_IN_PROGRESS)
        & (OrderFile.state == OrderFile.STATE_CLEAN)
    )
    newest_first = files.order_by(OrderFile.created_at.desc(), OrderFile.id.desc())
    return [file for file in newest_first if is_proof_candidate(file)]


def proofs_of(order: Order) -> list[Proof]:
    """Every proof of the order, newest version first."""
    return list(Proof.select().where(Proof.order == order).order_by(Proof.version.desc()))


def newest_proof(order: Order) -> Proof | None:
    return Proof.select().where(Proof.order == order).order_by(Proof.version.desc()).first()


def get_proof(order: Order, version: int) -> Proof:
    proof = Proof.get_or_none((Proof.order == order) & (Proof.version == version))
    if proof is None:
        raise NotFound(f"order {order.project_no} has no proof version {version}")
    return proof


def request_proof(
    settings: Settings, links: PortalLinks, order: Order, file_id: int, staff: StaffUser
) -> Proof:
    """Step 1: the next proof version of ``order`` from file ``file_id``, and its mail."""
    with write_transaction():
        file = OrderFile.get_or_none((OrderFile.id == file_id) & (OrderFile.order == order))
        if file is None or not is_proof_candidate(file):
            raise Invalid(
                "file",
                "choose a clean file of In Bearbeitung whose preview is ready",
            )
        number = order.customer.customer_no
        if not customer_may_upload(order.customer):
            raise CustomerUnreachable("login", f"customer {number} cannot sign in to the portal")
        addressee = customer_address(order.customer, order)
        if addressee is None:
            raise CustomerUnreachable(
                "address",
                f"customer {number} has no usable email address "
                "(none stored, or all on the bounce list)",
            )
        version = (
            Proof.select(fn.MAX(Proof.version)).where(Proof.order == order).scalar() or 0
        ) + 1
        now = utcnow()
        Proof.update(superseded_at=now).where(
            (Proof.order == order) & Proof.superseded_at.is_null()
        ).execute()
        try:
            with write_transaction():
                proof = Proof.create(
                    order=order,
                    version=version,
                    file=file,
                    file_name=file.display_name,
                    file_size=file.size,
                    sha256=file.sha256,
                    requested_by=staff,
                    requested_by_name=staff.name or staff.username,
                    requested_at=now,
                )
        except IntegrityError:
            raise Conflict("another proof was asked for at the same moment; try again") from None
        language = customer_language(order.customer)
        values = order_values(links, order, order.customer, language)
        values.update(
            proof_link=links.proof(order.project_no, version, language),
            event_list=f"- {file.display_name} ({_version_word(language)} {version})",
            event_count="1",
        )
        mail = render_for(addressee, PROOF_TEMPLATE, language, template_context(**values), order)
        queue_for(
            settings,
            addressee,
            mail,
            kind=MAIL_KIND,
            customer=order.customer,
            order=order,
            idempotency_key=f"proof:{proof.id}",
        )
    log.info(
        "order=%s file=%s action=proof_requested version=%d by=%s",
        order.project_no,
        file.display_name,
        version,
        staff.username,
    )
    return proof


def _version_word(language: str) -> str:
    return {"en": "version", "fr": "version"}.get(language, "Version")


def decide(
    order: Order,
    version: int,
    login: PortalLogin,
    decision: str,
    comment: str,
    address: str,
) -> Proof:
    """Step 2: record the customer's decision on proof ``version`` of ``order``."""
    if decision not in Proof.DECISIONS:
        raise Invalid("decision", "approved or rejected")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise Invalid("comment", f"at most {MAX_COMMENT} characters")
    if decision == Proof.DECISION_REJECTED and not comment:
        raise Invalid("comment", "say what should be changed")
    with write_transaction():
        proof = get_proof(order, version)
        newest = newest_proof(order)
        if proof.decision:
            raise ProofDecided(proof)
        if proof.superseded_at is not None or newest.version != proof.version:
            raise ProofOutdated(proof.version, newest.version)
        now = utcnow()
        updated = (
            Proof.update(
                decision=decision,
                decided_at=now,
                decided_by=login,
                decided_by_username=login.username,
                decided_from=address[:100],
                decision_comment=comment,
                decision_sha256=proof.sha256,
            )
            .where((Proof.id == proof.id) & (Proof.decision == "") & Proof.superseded_at.is_null())
            .execute()
        )
        if not updated:
            raise ProofDecided(Proof.get_by_id(proof.id))
        proof = Proof.get_by_id(proof.id)
        detail = {
            "version": proof.version,
            "decision": decision,
            "file": proof.file_name,
            "comment": comment[:500],
        }
        notify(
            PROOF_DECIDED,
            order=order,
            file=proof.file if proof.file_id else None,
            detail=json.dumps(detail, ensure_ascii=False),
        )
    log.info(
        "order=%s file=%s action=proof_%s version=%d by=%s from=%s",
        order.project_no,
        proof.file_name,
        decision,
        proof.version,
        login.username,
        address,
    )
    return proof


# --- for the workflow ---------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def proof_record(proof: Proof) -> dict[str, Any]:
    """One proof and its decision as JSON."""
    record: dict[str, Any] = {
        "version": proof.version,
        "state": proof_state(proof),
        "file": {
            "name": proof.file_name,
            "stored_name": proof.file.stored_name if proof.file_id else None,
            "folder": FOLDER_IN_PROGRESS,
            "size": proof.file_size,
            "sha256": proof.sha256,
        },
        "requested_at": _timestamp(proof.requested_at),
        "requested_by": proof.requested_by_name,
        "superseded_at": _timestamp(proof.superseded_at),
        "decision": None,
    }
    if proof.decision:
        record["decision"] = {
            "result": proof.decision,
            "decided_at": _timestamp(proof.decided_at),
            "login": proof.decided_by_username,
            "address": proof.decided_from,
            "comment": proof.decision_comment,
            "sha256": proof.decision_sha256,
        }
    return record


def approval_record(order: Order) -> dict[str, Any] | None:
    """The order's newest proof with its decision, as the workflow reads it; None when no
    proof was ever asked for.

    ``state`` is approved, rejected or pending; ``decision`` holds time (UTC), login,
    address, comment and the SHA-256 of the approved file.
    """
    proof = newest_proof(order)
    return None if proof is None else _approval_of(order, proof)


def _approval_of(order: Order, proof: Proof) -> dict[str, Any]:
    customer = order.customer
    return {
        "order": {
            "number": order.project_no,
            "job_description": order.job_description,
            "due_date": order.due_date.isoformat() if order.due_date else None,
            "customer": {"number": customer.customer_no, "name": customer.name},
        },
        "proof": proof_record(proof),
    }


# --- for the hotfolder agents: the approval file next to the jobs --------------------------


def approvals_to_place(limit: int = 100) -> list[tuple[Proof, dict[str, Any]]]:
    """Decided proofs of customers with a hotfolder whose approval file no agent has placed
    yet, oldest decision first, each with its ``approval_record`` (every decided version
    once: a rejection tells the workflow as much as an approval)."""
    query = (
        Proof.select(Proof, Order, Customer)
        .join(Order)
        .join(Customer)
        .where(
            (Proof.decision != "")
            & Proof.approval_placed_at.is_null()
            & (Customer.create_hotfolder == True)  # noqa: E712  (SQL, not Python)
        )
        .order_by(Proof.decided_at, Proof.id)
        .limit(limit)
    )
    return [(proof, _approval_of(proof.order, proof)) for proof in query]


def approval_file_name(proof: Proof) -> str:
    """``<order>_proof-<version>.xml`` (order numbers are file-name safe)."""
    return f"{proof.order.project_no}_proof-{proof.version}.xml"


def approvals_placed(agent_id: str, proof_ids: list[int]) -> int:
    """An agent placed these approval files: no agent places them again. Returns how many
    were new."""
    with write_transaction():
        placed = (
            Proof.update(approval_placed_at=utcnow())
            .where(Proof.id.in_(proof_ids) & Proof.approval_placed_at.is_null())
            .execute()
        )
    log.info("action=approvals_placed agent=%s proofs=%s new=%d", agent_id, proof_ids, placed)
    return placed
