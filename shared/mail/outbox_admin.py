"""What staff do with the outbox: look at it by state and send a failed mail again."""

from __future__ import annotations

from shared.clock import utcnow
from shared.errors import Conflict, NotFound
from shared.models import OutboxMail

QUEUED = "queued"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"
VIEWS = {
    QUEUED: (OutboxMail.STATUS_PENDING, OutboxMail.STATUS_SENDING),
    SENT: (OutboxMail.STATUS_SENT,),
    FAILED: (OutboxMail.STATUS_FAILED,),
    UNKNOWN: (OutboxMail.STATUS_UNKNOWN,),
}
RETRYABLE = (OutboxMail.STATUS_FAILED, OutboxMail.STATUS_UNKNOWN)


def outbox(view: str, limit: int = 200) -> list[OutboxMail]:
    """The newest mails in one view (queued, sent, failed, unknown)."""
    statuses = VIEWS.get(view, VIEWS[QUEUED])
    return list(
        OutboxMail.select()
        .where(OutboxMail.status.in_(statuses))
        .order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc())
        .limit(limit)
    )


def counts() -> dict[str, int]:
    """How many mails each view holds."""
    return {
        view: OutboxMail.select().where(OutboxMail.status.in_(statuses)).count()
        for view, statuses in VIEWS.items()
    }


def retry_mail(mail_id: int) -> OutboxMail:
    """Queue a failed (or delivery-unknown) mail again, with a fresh attempt budget."""
    mail = OutboxMail.get_or_none(OutboxMail.id == mail_id)
    if mail is None:
        raise NotFound("this mail does not exist")
    if mail.status not in RETRYABLE:
        raise Conflict("only failed mails or mails with unknown delivery can be sent again")
    OutboxMail.update(
        status=OutboxMail.STATUS_PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        last_error=f"sent again by staff; before: {mail.last_error}"[:1000],
    ).where(OutboxMail.id == mail.id, OutboxMail.status.in_(RETRYABLE)).execute()
    return OutboxMail.get_by_id(mail.id)
