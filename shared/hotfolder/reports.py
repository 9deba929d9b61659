"""What hotfolder agents report besides deliveries: heartbeats, problems, notifications.

- A **heartbeat** records the agent for staff (host, process, version, watch mode, queue
  length, token and address) and extends every lease it holds by the same span after
  which it would count as gone (``agents``): while it beats, its files stay its own.
- A **problem** (unwritable hotfolder, wrong checksum, unsafe name …) is recorded once per
  path and action and counted while it repeats, until the agent reports the path handled.
- An **XML job notification** the agent wrote is recorded with the deliveries it lists and,
  with ``[notifications] job_notification_email``, mailed through the outbox.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from html import escape

from peewee import Case

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.hotfolder.agents import lease_end
from shared.hotfolder.deliveries import files_with_orders, release_in_transaction
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail
from shared.models import (
    AgentError,
    AgentHeartbeat,
    ApiToken,
    Delivery,
    JobNotification,
    MailAttachment,
    Order,
    OrderFile,
)

MAIL_KIND = "job_notification"


# --- heartbeats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Beat:
    """What an agent says about itself with every heartbeat."""

    agent_id: str
    host: str
    pid: int
    version: str
    watch_mode: str
    queue_length: int
    heartbeat_seconds: float
    stopped: bool = False
    release: tuple[int, ...] = ()


def heartbeat(beat: Beat, token: ApiToken | None, address: str, now: datetime | None = None) -> int:
    """Record that the agent is alive (or stopped) and extend its leases; returns how many
    leases it holds. Files it names in ``release`` are given back."""
    now = now or utcnow()
    values = {
        "host": beat.host,
        "pid": beat.pid,
        "version": beat.version,
        "watch_mode": beat.watch_mode,
        "queue_length": beat.queue_length,
        "heartbeat_seconds": beat.heartbeat_seconds,
        "address": address,
        "token": token,
        "seen_at": now,
        "stopped_at": now if beat.stopped else None,
    }
    with write_transaction():
        row = AgentHeartbeat.get_or_none(AgentHeartbeat.agent_id == beat.agent_id)
        if row is None:
            AgentHeartbeat.create(agent_id=beat.agent_id, started_at=now, **values)
        else:
            if row.pid != beat.pid or row.stopped_at is not None:
                values["started_at"] = now  # started again
            AgentHeartbeat.update(values).where(AgentHeartbeat.id == row.id).execute()
        release_in_transaction(beat.agent_id, beat.release)
        held = Delivery.select(Delivery.id).where(
            (Delivery.claimed_by == beat.agent_id)
            & (Delivery.state == Delivery.STATE_INTENT)
            & Delivery.lease_until.is_null(False)
        )
        return (
            Delivery.update(lease_until=lease_end(beat.heartbeat_seconds, now))
            .where(Delivery.id.in_(held))
            .execute()
        )


# --- errors the agent met --------------------------------------------------------------------


def record_error(
    agent_id: str,
    action: str,
    path: str,
    reason: str,
    *,
    file_id: int | None = None,
    project_no: str = "",
) -> bool:
    """Record (or count again) an open problem of an agent for staff; True if it is new.

    With ``file_id`` the file's delivery carries the reason too (the staff page shows the
    file as "delivery failed" while its lease is open).
    """
    now = utcnow()
    file = OrderFile.get_or_none(OrderFile.id == file_id) if file_id else None
    order = file.order if file is not None else None
    if order is None and project_no:
        order = Order.get_or_none(Order.project_no == project_no)
    with write_transaction():
        if file is not None:
            Delivery.update(error=f"{path}: {reason}").where(
                (Delivery.file == file.id) & (Delivery.state == Delivery.STATE_INTENT)
            ).execute()
        open_error = AgentError.get_or_none(
            (AgentError.path == path)
            & (AgentError.action == action)
            & AgentError.resolved_at.is_null()
        )
        if open_error is not None:
            AgentError.update(
                occurrences=AgentError.occurrences + 1,
                last_seen_at=now,
                reason=reason,
                agent_id=agent_id,
            ).where(AgentError.id == open_error.id).execute()
            return False
        AgentError.create(
            agent_id=agent_id,
            action=action,
            path=path,
            reason=reason,
            order=order,
            file=file,
            created_at=now,
            last_seen_at=now,
        )
        return True


def resolve_errors(paths: Collection[str], file_ids: Collection[int] = ()) -> int:
    """Close the open problems of ``paths`` (they succeeded now); returns how many."""
    condition = AgentError.resolved_at.is_null() & AgentError.path.in_(list(paths))
    if file_ids:
        condition = AgentError.resolved_at.is_null() & (
            AgentError.path.in_(list(paths)) | AgentError.file.in_(list(file_ids))
        )
    if not AgentError.select().where(condition).exists():
        return 0  # the usual case: no write transaction for nothing
    with write_transaction():
        if file_ids:
            Delivery.update(error="").where(
                Delivery.file.in_(list(file_ids)) & (Delivery.state == Delivery.STATE_INTENT)
            ).execute()
        return AgentError.update(resolved_at=utcnow()).where(condition).execute()


# --- notifications the agent wrote ---------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """An XML job notification an agent wrote: its file name, the files it lists, its bytes."""

    file_name: str
    file_ids: tuple[int, ...]
    xml: bytes


def record_notifications(
    settings: Settings, agent_id: str, written: list[Written]
) -> list[JobNotification | str]:
    """Record XML job notifications an agent wrote and, if configured, mail each one; one
    transaction and a few statements for all. Per notification its row, or why it was
    refused.

    The same name reported again (the agent restarted before it heard the answer) is
    the same notification: nothing is mailed twice.
    """
    files = {file.id: file for file in files_with_orders({i for w in written for i in w.file_ids})}
    problems: dict[str, str] = {}
    for notification in written:
        listed = [files.get(file_id) for file_id in notification.file_ids]
        if not listed or None in listed:
            problems[notification.file_name] = "a file of this notification does not exist"
        elif len({file.order_id for file in listed}) > 1:
            problems[notification.file_name] = "the files of one notification belong to one order"
    valid = [n for n in written if n.file_name not in problems]
    names = [n.file_name for n in valid]
    address = settings.notifications.job_notification_email
    now = utcnow()
    with write_transaction():
        mine = JobNotification.claimed_by == agent_id
        known = {
            row.file_name
            for row in JobNotification.select().where(mine & JobNotification.file_name.in_(names))
        }
        new = [n for n in valid if n.file_name not in known]
        if new:
            JobNotification.insert_many(
                [
                    {
                        "order": files[n.file_ids[0]].order_id,
                        "claimed_by": agent_id,
                        "file_name": n.file_name,
                        "created_at": now,
                        "written_at": now,
                    }
                    for n in new
                ]
            ).execute()
        rows = {
            row.file_name: row
            for row in JobNotification.select().where(mine & JobNotification.file_name.in_(names))
        }
        if new:
            ties = [(file_id, rows[n.file_name].id) for n in new for file_id in n.file_ids]
            Delivery.update(notification=Case(Delivery.file, ties)).where(
                Delivery.file.in_([file_id for file_id, _row in ties])
                & (Delivery.state == Delivery.STATE_DONE)
            ).execute()
        if address:
            for notification in new:
                row = rows[notification.file_name]
                order = files[notification.file_ids[0]].order
                _mail(settings, row, order, notification.xml, len(notification.file_ids), address)
                row.save(only=[JobNotification.mail])
    return [problems.get(n.file_name) or rows[n.file_name] for n in written]


def _mail(
    settings: Settings,
    notification: JobNotification,
    order: Order,
    content: bytes,
    count: int,
    address: str,
) -> None:
    """Queue the internal mail with the XML attached (inside the caller's transaction)."""
    subject = f"Job notification {order.project_no}: {count} file(s) in the hotfolder"
    text = (
        f"Order {order.project_no} ({order.customer.name}, {order.customer.customer_no}): "
        f"{count} file(s) delivered to the hotfolder.\n"
        f"The job notification {notification.file_name} is attached.\n"
    )
    html = f"<p>{escape(text).replace(chr(10), '<br>')}</p>"
    mail = queue_mail(
        kind=MAIL_KIND,
        sender=settings.smtp.email,
        recipients=[address],
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
