"""What every part of the agent needs: settings, path layout, its identity, the task queue."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

from hotfolder_agent.layout import Layout
from shared.config import Settings
from shared.hotfolder.agents import silence_allowed
from shared.worker import BackgroundTasks


def new_agent_id() -> str:
    """``host:pid:random`` — unique per process, readable in logs and on the staff page."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class AgentContext:
    settings: Settings
    layout: Layout
    agent_id: str
    tasks: BackgroundTasks

    @property
    def stale_after(self) -> timedelta:
        """How long an agent may stay silent before its claims count as abandoned."""
        return silence_allowed(self.settings.agent.heartbeat_seconds)


def make_context(settings: Settings, tasks: BackgroundTasks | None = None) -> AgentContext:
    """A context with a fresh agent id."""
    return AgentContext(
        settings=settings,
        layout=Layout(settings),
        agent_id=new_agent_id(),
        tasks=tasks or BackgroundTasks(settings, links=None),
    )
