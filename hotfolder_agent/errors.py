"""Problems staff must see: recorded per path and action, counted while they repeat."""

from __future__ import annotations

import logging
from pathlib import Path

from shared.clock import utcnow
from shared.db import write_transaction
from shared.models import AgentError, Order, OrderFile

log = logging.getLogger(__name__)

ACTION_DELIVER = "deliver"
ACTION_MATCH = "match"
ACTION_NOTIFY = "notify"
ACTION_SEND = "send"
ACTION_PREPARE = "prepare"


def record_error(
    agent_id: str,
    action: str,
    path: Path | str,
    reason: str,
    order: Order | None = None,
    file: OrderFile | None = None,
) -> bool:
    """Record (or count again) an open error; True if it is new."""
    now = utcnow()
    with write_transaction():
        open_error = AgentError.get_or_none(
            (AgentError.path == str(path))
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
            path=str(path),
            reason=reason,
            order=order,
            file=file,
            created_at=now,
            last_seen_at=now,
        )
        return True


def resolve_errors(paths: list[Path | str]) -> int:
    """Close the open errors of ``paths`` (they succeeded now); returns how many."""
    names = [str(path) for path in paths]
    open_errors = AgentError.select().where(
        AgentError.path.in_(names) & AgentError.resolved_at.is_null()
    )
    if not open_errors.exists():
        return 0  # the usual case: no write transaction for nothing
    with write_transaction():
        return (
            AgentError.update(resolved_at=utcnow())
            .where(AgentError.path.in_(names) & AgentError.resolved_at.is_null())
            .execute()
        )
