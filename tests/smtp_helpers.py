"""Real SMTP servers for tests: aiosmtpd handlers that record, refuse, or demand TLS and AUTH."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    """One message as the server saw it."""

    peer: Any
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=policy.default)


@dataclass
class RecordingHandler:
    """Accepts everything and keeps each message; answers for RCPT/DATA can be overridden.

    ``rcpt_answers`` maps an address to the reply for its RCPT (e.g. "550 no such user");
    ``data_answer`` replaces the "250 OK" after DATA (e.g. "451 try later").
    """

    rcpt_answers: dict[str, str] = field(default_factory=dict)
    data_answer: str = ""
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        answer = self.rcpt_answers.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_answer:
            return self.data_answer
        self.received.append(
            Received(session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 OK"

    @property
    def connections(self) -> int:
        """How many distinct client connections delivered mail."""
        return len({item.peer for item in self.received})


@contextmanager
def smtp_server(handler: Any, port: int | None = None, **smtp_options: Any) -> Iterator[int]:
    """Run an aiosmtpd server on localhost for the ``with`` block; yields its port."""
    port = port or free_port()
    controller = Controller(handler, hostname=HOST, port=port, **smtp_options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class TlsFiles:
    """A private CA with a certificate for "localhost"; ``ca_file`` is what clients trust."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_tls(directory: Path) -> TlsFiles:
    """Issue a localhost certificate from a fresh trustme CA and write the CA to a file."""
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca_file=ca_file, server_context=context)


class PasswordCheck:
    """aiosmtpd authenticator accepting exactly one username and password."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username
            and auth_data.password == self.password
        )
        # handled=False makes aiosmtpd answer 535 itself; True would leave the client waiting.
        return AuthResult(success=ok, handled=False)


def starttls_options(tls: TlsFiles, username: str, password: str) -> dict[str, Any]:
    """Server options demanding STARTTLS before anything and AUTH over it."""
    return {
        "tls_context": tls.server_context,
        "require_starttls": True,
        "auth_require_tls": True,
        "authenticator": PasswordCheck(username, password),
        "auth_required": True,
    }
