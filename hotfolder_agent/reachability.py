"""Whether the portal can be used right now, said once per change instead of once per try.

Every thread that talks to the portal reports here how its request went. The first
failure of a kind logs one clear line (portal unreachable, token refused, certificate
not trusted); the tries that follow are silent until the portal answers again, which
is logged once too. ``pause`` says how long a thread waits before its next try: growing
waits with jitter while the portal is unreachable, a long fixed wait while the token or
the certificate is refused (only an administrator can fix that: no hot loop).
"""

from __future__ import annotations

import logging
import threading

from hotfolder_agent.client import (
    CertificateRefused,
    PortalError,
    PortalUnavailable,
    TokenRefused,
    backoff,
)

log = logging.getLogger(__name__)

REACHABLE = "reachable"
UNREACHABLE = "unreachable"
TOKEN_REFUSED = "token_refused"
UNTRUSTED = "untrusted"
# How long to wait between tries while an administrator has to act.
REFUSED_PAUSE = 60.0


class Reachability:
    """The portal's state as the agent last saw it; thread-safe."""

    def __init__(self, origin: str, config: str) -> None:
        self.origin = origin
        self.config = config  # the client.ini, named in the messages
        self.state = REACHABLE
        self._failures = 0
        self._lock = threading.Lock()
        self.changed = threading.Event()  # set whenever the portal answers again

    @property
    def reachable(self) -> bool:
        return self.state == REACHABLE

    def ok(self) -> None:
        """A request went through."""
        with self._lock:
            was = self.state
            self.state = REACHABLE
            self._failures = 0
        if was != REACHABLE:
            log.info("action=connect the portal at %s answers again", self.origin)
            self.changed.set()

    def failed(self, exc: PortalError) -> float:
        """A request failed with ``exc``; returns the seconds to wait before the next try."""
        if isinstance(exc, TokenRefused):
            state = TOKEN_REFUSED
        elif isinstance(exc, CertificateRefused):
            state = UNTRUSTED
        elif isinstance(exc, PortalUnavailable):
            state = UNREACHABLE
        else:
            return 0.0
        with self._lock:
            was = self.state
            self.state = state
            self._failures = self._failures + 1 if was == state else 1
            failures = self._failures
        if was != state:
            self._say(state, exc)
        if state == UNREACHABLE:
            return backoff(failures)
        return REFUSED_PAUSE

    def _say(self, state: str, exc: PortalError) -> None:
        if state == UNREACHABLE:
            log.error(
                "action=connect the portal at %s cannot be reached (%s); "
                "retrying with growing pauses, nothing is lost meanwhile",
                self.origin,
                exc,
            )
        elif state == TOKEN_REFUSED:
            log.error(
                "action=connect the portal at %s refuses the agent token (%s): it is wrong, "
                "revoked or not of the kind 'Hotfolder agent'. Create an agent token on the "
                "portal's API tokens page, put it into [agent] token of %s (or "
                "$PTPORTAL_AGENT_TOKEN) and restart the agent. Waiting.",
                self.origin,
                exc,
                self.config,
            )
        else:
            log.error(
                "action=connect the portal's certificate at %s is not trusted (%s): give its "
                "CA in [agent] ca_file of %s and restart the agent. Waiting.",
                self.origin,
                exc,
                self.config,
            )
