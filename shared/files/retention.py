"""Delete files after the customer's ``hotfolder_delete_after_days`` (SPEC §Behaviour 8).

Every deletion is recorded as a FileEvent, so staff can see what went and when.
Uploads abandoned half-way are removed from staging after ``ABANDONED_AFTER``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared import audit
from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.files.intake import file_audit, file_path
from shared.files.preflighting import remove_previews
from shared.models import Customer, FileEvent, Order, OrderFile

log = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(days=7)
EVENT_RETENTION = "retention_deleted"
KEPT_STATES = (OrderFile.STATE_CLEAN, OrderFile.STATE_REJECTED, OrderFile.STATE_TOO_LARGE)


def due_for_deletion(now: datetime | None = None) -> list[OrderFile]:
    """Files older than their customer's retention, and uploads abandoned long ago."""
    now = now or utcnow()
    due: list[OrderFile] = []
    customers = Customer.select().where(Customer.hotfolder_delete_after_days > 0)
    for customer in customers:
        cutoff = now - timedelta(days=customer.hotfolder_delete_after_days)
        due += list(
            OrderFile.select(OrderFile, Order)
            .join(Order)
            .where(
                (Order.customer == customer)
                & OrderFile.state.in_(KEPT_STATES)
                & (OrderFile.created_at < cutoff)
            )
            .order_by(OrderFile.id)
        )
    due += list(
        OrderFile.select().where(
            (OrderFile.state == OrderFile.STATE_UPLOADING)
            & (OrderFile.created_at < now - ABANDONED_AFTER)
        )
    )
    return due


def delete_expired(settings: Settings, now: datetime | None = None) -> list[OrderFile]:
    """Delete what ``due_for_deletion`` lists; returns the files deleted."""
    deleted = []
    for file in due_for_deletion(now):
        path = file_path(settings, file)
        with write_transaction():
            if path is not None:
                path.unlink(missing_ok=True)
            file.state = OrderFile.STATE_DELETED
            file.deleted_at = utcnow()
            file.save()
            FileEvent.create(file=file, kind=EVENT_RETENTION, detail=str(path or ""))
            file_audit(audit.FILE_DELETE, file, "retention period over")
        remove_previews(settings, file)
        deleted.append(file)
        log.info("retention deleted %s (order %s)", path, file.order.project_no)
    return deleted
