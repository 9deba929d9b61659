"""What the agent's parts share: settings, state folder, paths, the portal, the stop flag,
and the queue through which threads hand results to the main loop."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from hotfolder_agent.client import PortalClient
from hotfolder_agent.layout import Layout
from hotfolder_agent.reachability import Reachability
from hotfolder_agent.state import StateFolder
from shared.config import AgentSettings


@dataclass
class Context:
    settings: AgentSettings
    state: StateFolder
    layout: Layout
    client: PortalClient
    reachability: Reachability
    stopping: threading.Event = field(default_factory=threading.Event)
    # (kind, payload) from the poller, the reporter and the download threads.
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)

    @property
    def agent_id(self) -> str:
        return self.state.agent_id

    def pause(self, exc: Exception) -> bool:
        """Wait as long as ``reachability`` says after ``exc``; True if the agent stops."""
        return self.stopping.wait(self.reachability.failed(exc))


def make_context(settings: AgentSettings) -> Context:
    """A context for ``settings`` (the state folder not opened yet)."""
    client = PortalClient(settings)
    return Context(
        settings=settings,
        state=StateFolder(settings.state_dir),
        layout=Layout(settings),
        client=client,
        reachability=Reachability(client.origin, str(settings.source)),
    )
