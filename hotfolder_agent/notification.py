"""XML job notifications: one per order batch, written only after the batch's files are in place.

Delivered files of an order that finish within ``batch_window_seconds`` of the first
one share a notification (0: one per file). A ``JobNotification`` row is created and
the deliveries are tied to it before the XML is written, so a restart rewrites the
same file name instead of emitting a second notification. The XML is written to a
hidden temporary name, fsynced and renamed, and the folder fsynced, before it is
recorded as written; consumers see it whole or not at all.

What is due is handled together: the rows of all due notifications are created
in one transaction, their XMLs (``job_xml``) written as one set of files
(``fsutil.write_files``, in a worker process when the agent runs) and recorded
written in one transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from peewee import Case, Expression, Field, Model, fn

from hotfolder_agent import job_xml
from hotfolder_agent.claims import holder_is_gone
from hotfolder_agent.context import AgentContext
from hotfolder_agent.fsutil import write_files
from hotfolder_agent.seams import pause_at
from hotfolder_agent.workers import FileWorkers
from shared.clock import utcnow
from shared.db import write_transaction
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail
from shared.models import Delivery, JobNotification, MailAttachment, Order, OrderFile

log = logging.getLogger(__name__)

STEP_BEFORE_XML = "before_xml"
# Rows per statement when many are written at once (well below SQL parameter limits).
SQL_ROWS = 500
MAIL_KIND = "job_notification"


def _pending_deliveries() -> list[Delivery]:
    return list(
        Delivery.select(Delivery, OrderFile)
        .join(OrderFile)
        .where((Delivery.state == Delivery.STATE_DONE) & Delivery.notification.is_null())
        .order_by(Delivery.done_at, Delivery.id)
    )


def due_batches(window_seconds: float, now: datetime, force: bool = False) -> list[list[Delivery]]:
    """Delivered files without a notification, grouped into the batches that are due."""
    by_order: dict[int, list[Delivery]] = defaultdict(list)
    for row in _pending_deliveries():
        by_order[row.file.order_id].append(row)
    if window_seconds == 0:
        return [[row] for rows in by_order.values() for row in rows]
    window = timedelta(seconds=window_seconds)
    return [rows for rows in by_order.values() if force or rows[0].done_at + window <= now]


def next_due(window_seconds: float) -> datetime | None:
    """When the next batch becomes due, or None if nothing waits."""
    rows = _pending_deliveries()
    if not rows:
        return None
    return min(row.done_at for row in rows) + timedelta(seconds=window_seconds)


def open_notifications(ctx: AgentContext, batches: list[list[Delivery]]) -> list[JobNotification]:
    """Create a notification row per batch and tie its deliveries to it, in one transaction.

    Files another agent tied meanwhile are left out; a batch left empty gets no row.
    A few statements serve all batches: the rows are inserted together, each with
    a marker for a name so it can be found again (the ids are the database's to
    give), then named and tied in one statement each.
    """
    if not batches:
        return []
    project_no = dict(
        Order.select(Order.id, Order.project_no)
        .where(Order.id.in_({batch[0].file.order_id for batch in batches}))
        .tuples()
    )
    markers = [f".opening-{ctx.agent_id}-{number}" for number in range(len(batches))]
    with write_transaction():
        for part in _chunked(list(zip(markers, batches, strict=True)), SQL_ROWS):
            JobNotification.insert_many(
                {"order": batch[0].file.order_id, "claimed_by": ctx.agent_id, "file_name": marker}
                for marker, batch in part
            ).execute()
        ids = {}
        for part in _chunked(markers, SQL_ROWS):
            query = JobNotification.select(JobNotification.file_name, JobNotification.id)
            ids.update(query.where(JobNotification.file_name.in_(part)).tuples())
        names = [
            (ids[marker], f"{project_no[batch[0].file.order_id]}_{ids[marker]:06d}.xml")
            for marker, batch in zip(markers, batches, strict=True)
        ]
        for part in _chunked(names, SQL_ROWS):
            _set_each(JobNotification, JobNotification.file_name, part)
        ties = [
            (row.id, ids[marker])
            for marker, batch in zip(markers, batches, strict=True)
            for row in batch
        ]
        for part in _chunked(ties, SQL_ROWS):
            _set_each(Delivery, Delivery.notification, part, Delivery.notification.is_null())
        opened = list(
            JobNotification.select()
            .where(JobNotification.id.in_(list(ids.values())) & fn.EXISTS(_tied_deliveries()))
            .order_by(JobNotification.id)
        )
        empty = set(ids.values()) - {notification.id for notification in opened}
        if empty:
            JobNotification.delete().where(JobNotification.id.in_(list(empty))).execute()
    return opened


def _tied_deliveries():
    return Delivery.select(Delivery.id).where(Delivery.notification == JobNotification.id)


def _set_each(
    model: type[Model],
    field: Field,
    values: list[tuple[int, object]],
    condition: Expression | None = None,
) -> None:
    """One UPDATE giving each row (by id) its own value of ``field``."""
    where = model.id.in_([row_id for row_id, _value in values])
    if condition is not None:
        where &= condition
    model.update({field: Case(model.id, values)}).where(where).execute()


def _chunked(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def unwritten(ctx: AgentContext) -> list[JobNotification]:
    """Notifications whose XML is not written yet and that no live agent is writing."""
    return [
        notification
        for notification in JobNotification.select()
        .where(JobNotification.written_at.is_null())
        .order_by(JobNotification.id)
        if notification.claimed_by == ctx.agent_id
        or holder_is_gone(notification.claimed_by, ctx.agent_id, ctx.stale_after)
    ]


def _mail(ctx: AgentContext, notification: JobNotification, content: bytes, count: int) -> None:
    """Queue the internal mail with the XML attached (inside the caller's transaction)."""
    order = notification.order
    subject = f"Job notification {order.project_no}: {count} file(s) in the hotfolder"
    text = (
        f"Order {order.project_no} ({order.customer.name}, {order.customer.customer_no}): "
        f"{count} file(s) delivered to the hotfolder.\n"
        f"The job notification {notification.file_name} is attached.\n"
    )
    html = f"<p>{escape(text).replace(chr(10), '<br>')}</p>"
    mail = queue_mail(
        kind=MAIL_KIND,
        sender=ctx.settings.smtp.email,
        recipients=[ctx.settings.agent.notify_email],
        mail=RenderedMail(subject=subject, text=text, html=html),
        customer=order.customer,
        order=order,
        idempotency_key=f"job-notification-{notification.id}",
    )
    MailAttachment.create(
        mail=mail,
        file_name=notification.file_name,
        content_type="application/xml",
        content=content,
    )
    notification.mail = mail


def write_notifications(
    ctx: AgentContext, notifications: list[JobNotification], writer: FileWorkers | None = None
) -> list[Path]:
    """Write the XMLs (again, after a crash: same names, same content) and record them written.

    The files are written by ``writer``'s process when one is given.
    """
    if not notifications:
        return []
    pause_at(STEP_BEFORE_XML)
    documents = job_xml.documents(ctx, notifications)
    directory = ctx.settings.agent.notification_dir
    contents = {document.notification.file_name: document.content for document in documents}
    if writer is None:
        paths = write_files(directory, contents)
    else:
        paths = writer.submit(write_files, directory, contents).result()
    ids = [notification.id for notification in notifications]
    notify_email = ctx.settings.agent.notify_email
    with write_transaction():
        fresh = {
            notification_id
            for (notification_id,) in JobNotification.select(JobNotification.id)
            .where(JobNotification.id.in_(ids) & JobNotification.written_at.is_null())
            .tuples()
        }
        JobNotification.update(written_at=utcnow()).where(
            JobNotification.id.in_(list(fresh))
        ).execute()
        mailed = [document for document in documents if document.notification.id in fresh]
        if notify_email:
            for document in mailed:
                _mail(ctx, document.notification, document.content, document.count)
                document.notification.save(only=[JobNotification.mail])
    if notify_email and mailed:
        ctx.tasks.deliver_soon()
    for document in documents:
        log.info(
            "order=%s file=%s action=notified files=%d",
            document.notification.order.project_no,
            document.notification.file_name,
            document.count,
        )
    return paths


def flush(
    ctx: AgentContext,
    now: datetime | None = None,
    force: bool = False,
    writer: FileWorkers | None = None,
) -> list[Path]:
    """Write what is due: interrupted notifications first, then new batches."""
    now = now or utcnow()
    interrupted = unwritten(ctx)
    batches = due_batches(ctx.settings.agent.batch_window_seconds, now, force)
    return write_notifications(ctx, interrupted + open_notifications(ctx, batches), writer)
