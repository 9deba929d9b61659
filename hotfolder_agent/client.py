"""The agent's one way to the portal: HTTPS with its agent token, nothing else.

Built on the standard library's ``http.client`` (maintained with Python itself, nothing
to pin): one keep-alive connection per thread, TLS verified against the system's CAs
plus ``[agent] ca_file``, host name included. A download reads straight into the
caller's buffer (``readinto``), so memory stays flat whatever the file size.

Every failure is one of a few kinds, so callers decide without looking at details:
``PortalUnavailable`` (not reachable, timeout, 5xx, a connection that broke: try again
later), ``TokenRefused`` (401/403: the token is wrong, revoked or not an agent token),
``CertificateRefused`` (the portal's certificate is not trusted), ``BadAnswer`` (any
other answer the agent cannot use) and ``Interrupted`` (the agent is stopping).

``interrupt`` shuts every open connection down: a thread blocked in a long poll or in
the middle of a download returns at once, so the agent stops within seconds.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.config import AgentSettings

log = logging.getLogger(__name__)

# http.client sends a file body in pieces of this size (its default is 8 KiB).
SEND_BLOCK_BYTES = 1024 * 1024
USER_AGENT = "ptportal-agent"


class PortalError(Exception):
    """The portal could not be used for a request; ``str()`` says why."""


class PortalUnavailable(PortalError):
    """Not reachable, too slow, a server error or a broken connection: try again later."""


class TokenRefused(PortalError):
    """401/403: the agent token is wrong, revoked, or not an agent token."""


class CertificateRefused(PortalError):
    """The portal's TLS certificate is not trusted (or not for its host name)."""


class BadAnswer(PortalError):
    """An answer the agent cannot use (unexpected status, not JSON …); ``status`` if any."""

    def __init__(self, message: str, status: int = 0, body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class Interrupted(PortalError):
    """The agent is stopping: no more requests."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: dict


def tls_context(settings: AgentSettings) -> ssl.SSLContext:
    """Verified TLS: the system's CAs plus ``ca_file``, host names checked."""
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def backoff(attempt: int, first: float = 1.0, cap: float = 60.0) -> float:
    """Seconds to wait before try ``attempt`` (1, 2 …): doubling, capped, full jitter.

    The jitter spreads agents (and threads) that failed together so they do not come
    back together.
    """
    return random.uniform(first / 2, min(cap, first * 2 ** max(attempt - 1, 0)))


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


class PortalClient:
    """Requests to ``[agent] portal_url`` with the agent token, one connection per thread."""

    def __init__(self, settings: AgentSettings) -> None:
        parts = urlsplit(settings.portal_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.base_path = parts.path.rstrip("/")
        self.timeout = settings.timeout_seconds
        self._token = settings.token
        self._context = tls_context(settings) if self.scheme == "https" else None
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self._interrupted = False

    @property
    def origin(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}"

    # --- connections ------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._interrupted:
            raise Interrupted("the agent is stopping")
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._context is not None:
                connection = http.client.HTTPSConnection(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=self._context,
                    blocksize=SEND_BLOCK_BYTES,
                )
            else:
                connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout, blocksize=SEND_BLOCK_BYTES
                )
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        return connection

    def close(self) -> None:
        """Close this thread's connection (after an error, or when the thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            with self._lock:
                self._open.discard(connection)
            with suppress(OSError):
                connection.close()

    def interrupt(self) -> None:
        """Stop: every open connection is shut down, blocked reads return, no new request."""
        self._interrupted = True
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            sock = connection.sock
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def resume(self) -> None:
        """Allow requests again after ``interrupt`` (the last heartbeat when stopping)."""
        self._interrupted = False

    # --- requests ----------------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        # English answers: they go into the agent's log, read by an administrator.
        headers = {
            "Authorization": f"Bearer {self._token}",
            "User-Agent": USER_AGENT,
            "Accept-Language": "en",
        }
        headers.update(extra or {})
        return headers

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        timeout: float | None,
    ) -> http.client.HTTPResponse:
        """Send a request and read the status line; one retry on a reused connection that
        the server had closed meanwhile (keep-alive timeout)."""
        for attempt in (1, 2):
            connection = self._connection()
            reused = connection.sock is not None
            try:
                if connection.sock is None:
                    connection.connect()
                connection.sock.settimeout(timeout or self.timeout)
                connection.request(method, self.base_path + path, body=body, headers=headers)
                return connection.getresponse()
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise CertificateRefused(_message(exc)) from None
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                ssl.SSLEOFError,
                ssl.SSLZeroReturnError,
            ) as exc:
                self.close()
                if self._interrupted:
                    raise Interrupted("the agent is stopping") from None
                rewindable = body is None or isinstance(body, bytes)
                if reused and attempt == 1 and rewindable:
                    continue
                raise PortalUnavailable(_message(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if self._interrupted:
                    raise Interrupted("the agent is stopping") from None
                raise PortalUnavailable(_message(exc)) from None
        raise AssertionError("unreachable")

    def _check(self, response: http.client.HTTPResponse, body: dict) -> None:
        status = response.status
        if status in (401, 403):
            raise TokenRefused(f"{status}: {body.get('error') or response.reason}")
        if status >= 500 or status in (408, 429):
            raise PortalUnavailable(f"{status}: {body.get('error') or response.reason}")

    def _read_json(self, response: http.client.HTTPResponse) -> dict:
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if self._interrupted:
                raise Interrupted("the agent is stopping") from None
            raise PortalUnavailable(_message(exc)) from None
        if response.will_close:
            self.close()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            if response.status >= 500:
                return {}
            raise BadAnswer(f"{response.status}: not JSON", response.status) from None
        return data if isinstance(data, dict) else {}

    def call(
        self,
        method: str,
        path: str,
        data: dict | None = None,
        *,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> dict:
        """A JSON request; the JSON answer, or one of the errors above."""
        body = None if data is None else json.dumps(data).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(method, path, body, self._headers(headers), timeout)
        answer = self._read_json(response)
        self._check(response, answer)
        if response.status not in ok:
            message = answer.get("error") or response.reason
            raise BadAnswer(f"{response.status}: {message}", response.status, answer)
        return answer

    def raw(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Answer:
        """A request with any body (tus); its status, headers and JSON (if any)."""
        response = self._send(method, path, body, self._headers(headers), timeout)
        answer = self._read_json(response)
        self._check(response, answer)
        return Answer(response.status, response.headers, answer)

    @contextmanager
    def stream(
        self, path: str, headers: dict[str, str] | None = None, json_body: dict | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        """GET ``path`` (POST ``json_body``) and hand over the open response to read from.

        Errors while reading are the caller's to turn into ``PortalUnavailable`` (see
        ``broken``); the connection is closed afterwards unless the body was read whole.
        """
        headers = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        method = "GET" if body is None else "POST"
        response = self._send(method, path, body, self._headers(headers), None)
        if response.status >= 400 or response.status in (401, 403):
            answer = self._read_json(response)
            self._check(response, answer)
            message = answer.get("error") or response.reason
            raise BadAnswer(f"{response.status}: {message}", response.status, answer)
        try:
            yield response
        finally:
            if not response.isclosed() or response.will_close:
                self.close()

    def broken(self, exc: BaseException) -> PortalError:
        """The error for a body that broke off while being read (``stream``)."""
        self.close()
        if self._interrupted:
            return Interrupted("the agent is stopping")
        return PortalUnavailable(f"the answer broke off: {_message(exc)}")
