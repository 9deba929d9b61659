"""The agent's heartbeat in the database: staff see it, other agents judge claims by it."""

from __future__ import annotations

import logging
import os
import socket
import threading
from importlib.metadata import PackageNotFoundError, version

from peewee import DatabaseError, InterfaceError

from hotfolder_agent.context import AgentContext
from shared.clock import utcnow
from shared.db import database, write_transaction
from shared.models import AgentHeartbeat

log = logging.getLogger(__name__)


def agent_version() -> str:
    """The installed ptportal version, as staff see it next to the heartbeat."""
    try:
        return version("ptportal")
    except PackageNotFoundError:
        return "unknown"


def beat(ctx: AgentContext, stopped: bool = False) -> None:
    """Record that this agent is alive now (or that it stopped)."""
    now = utcnow()
    with write_transaction():
        updated = (
            AgentHeartbeat.update(seen_at=now, stopped_at=now if stopped else None)
            .where(AgentHeartbeat.agent_id == ctx.agent_id)
            .execute()
        )
        if not updated:
            AgentHeartbeat.create(
                agent_id=ctx.agent_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=agent_version(),
                watch_mode=ctx.settings.agent.watch_mode,
                started_at=now,
                seen_at=now,
                stopped_at=now if stopped else None,
            )


class Heartbeat(threading.Thread):
    """Beats every ``heartbeat_seconds`` on its own thread, so a long copy does not silence it."""

    def __init__(self, ctx: AgentContext) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.ctx = ctx
        self._stop_event = threading.Event()

    def run(self) -> None:
        interval = self.ctx.settings.agent.heartbeat_seconds
        while True:
            try:
                beat(self.ctx)
            except (DatabaseError, InterfaceError) as exc:
                log.warning("action=heartbeat database unreachable: %s", exc)
            finally:
                database.close()
            if self._stop_event.wait(interval):
                return

    def stop(self) -> None:
        """Stop beating; the last beat says the agent stopped."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=10)
        try:
            beat(self.ctx, stopped=True)
        except (DatabaseError, InterfaceError) as exc:
            log.warning("action=heartbeat could not record the stop: %s", exc)
