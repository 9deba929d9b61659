"""One IMAP connection to a configured mailbox: verified TLS, readable errors, exactly once.

TLS verifies the certificate and the host name exactly as SMTP does (``open_smtp``): the
system's CAs or the mailbox's ``ca_file``; ``starttls`` never falls back to plain text.
Every failure — refused connection, untrusted certificate, wrong password, missing folder,
a server that drops us — becomes ``MailboxError`` with one readable line.

How the worker imports a mail exactly once (issue 17 §6):

1. ``unprocessed()`` lists the messages not yet marked processed (not \\Deleted, without
   the keyword ``$PtportalProcessed``), each with UIDVALIDITY, UID, size and Message-ID.
2. The caller skips what its database already holds (UIDVALIDITY+UID, or the Message-ID
   from another mailbox).
3. ``fetch_to_file`` writes one message to a file with BODY.PEEK — the mail is not even
   marked \\Seen yet — refusing before the download when it is over the size limit.
4. The caller parses, stages and commits.
5. Only then ``mark_processed`` moves it to the processed folder (MOVE, or COPY +
   \\Deleted + UID EXPUNGE) or, where it cannot be moved, flags it \\Seen + keyword.
   A crash between 4 and 5 leaves the mail where it was; step 2 skips it next time and
   step 5 is repeated, so nothing is imported twice.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from shared.config import SECURITY_SSL, MailboxSettings
from shared.mail_intake.message_ids import first_message_id

log = logging.getLogger(__name__)

KEYWORD_PROCESSED = "$PtportalProcessed"
# RFC 2177: a client must re-issue IDLE at least every 29 minutes or the server may log it out.
IDLE_MAX_SECONDS = 29 * 60
# How often a waiting IDLE looks at the stop event: the longest a stop request waits.
STOP_CHECK_SECONDS = 0.5
# A partial FETCH of this size at a time keeps a 100 MB mail out of memory.
FETCH_CHUNK_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 60
# Also the wait for the greeting: a STARTTLS port answered with TLS (or the reverse) stays silent.
CONNECT_TIMEOUT_SECONDS = 15
# The most of a header block fetched on its own (a mail too large to fetch whole).
HEADER_LIMIT_BYTES = 64 * 1024
# Listing asks for this many messages per FETCH, so one command stays reasonably small.
LIST_BATCH = 500

MOVED = "moved"
FLAGGED = "flagged"

# dovecot appends "(0.001 + 0.000 secs)." to its answers; staff need not read that.
_TIMING = re.compile(r"\s*\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)\.?")


class MailboxError(Exception):
    """A mailbox cannot be read or changed; ``str()`` is one line for the admin or the log."""


@dataclass(frozen=True)
class MessageRef:
    """A message in the selected folder, as ``unprocessed()`` found it."""

    uidvalidity: int
    uid: int
    size: int
    message_id: str


@dataclass(frozen=True)
class Fetched:
    """What ``fetch_to_file`` did: ``path`` holds the message, or ``skipped`` says why not."""

    ref: MessageRef
    size: int
    path: Path | None
    skipped: str = ""


@dataclass(frozen=True)
class Marked:
    """What ``mark_processed`` did: ``how`` is MOVED or FLAGGED; ``reason`` why it flagged."""

    how: str
    reason: str = ""


class MailboxConnection:
    """A logged-in connection with the mailbox's folder selected; use ``open_mailbox``."""

    def __init__(self, settings: MailboxSettings, client: IMAPClient) -> None:
        self.settings = settings
        self._client = client
        self._capabilities = {c.decode().upper() for c in client.capabilities()}
        self.uidvalidity = 0

    @property
    def idle_supported(self) -> bool:
        return "IDLE" in self._capabilities

    @property
    def move_supported(self) -> bool:
        return "MOVE" in self._capabilities

    def __enter__(self) -> MailboxConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out; a connection that is already gone is fine."""
        _logout(self._client)

    def folder_exists(self, folder: str) -> bool:
        with self._errors(f"look up folder {folder!r}"):
            return bool(self._client.folder_exists(folder))

    def select(self) -> int:
        """Select the mailbox's folder; return its UIDVALIDITY."""
        folder = self.settings.folder
        if not self.folder_exists(folder):
            raise MailboxError(f"{self._where}: folder {folder!r} does not exist")
        with self._errors(f"open folder {folder!r}"):
            answer = self._client.select_folder(folder)
        self.uidvalidity = int(answer[b"UIDVALIDITY"])
        return self.uidvalidity

    def unprocessed(self) -> list[MessageRef]:
        """Messages in the folder that are not yet marked processed, oldest UID first."""
        with self._errors("list messages"):
            uids = sorted(self._client.search(["NOT", "DELETED", "UNKEYWORD", KEYWORD_PROCESSED]))
            refs = []
            for start in range(0, len(uids), LIST_BATCH):
                batch = uids[start : start + LIST_BATCH]
                answer = self._client.fetch(
                    batch, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
                )
                refs.extend(
                    MessageRef(
                        uidvalidity=self.uidvalidity,
                        uid=uid,
                        size=int(answer[uid][b"RFC822.SIZE"]),
                        message_id=_message_id(answer[uid]),
                    )
                    for uid in batch
                    if uid in answer
                )
        return refs

    def fetch_to_file(self, ref: MessageRef, target: Path, max_bytes: int | None = None) -> Fetched:
        """Write the message's RFC822 bytes to ``target``, or skip it when it is too large.

        The size (RFC822.SIZE) is checked before anything is downloaded; the body then
        comes in partial FETCHes into ``target.part`` and is renamed to ``target`` once
        complete, so ``target`` never holds half a message.
        """
        limit = self.settings.max_mail_bytes if max_bytes is None else max_bytes
        self._check_uidvalidity(ref)
        size = self._current_size(ref)
        if size > limit:
            log.info(
                "%s: UID %d is %d bytes, over the limit of %d: not fetched",
                self._where,
                ref.uid,
                size,
                limit,
            )
            return Fetched(ref, size, None, f"the mail is {size} bytes, over the limit of {limit}")
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as out, self._errors(f"fetch UID {ref.uid}"):
                received = 0
                while received < size:
                    piece = self._fetch_piece(ref.uid, received)
                    if not piece:
                        break
                    out.write(piece)
                    received += len(piece)
            if received != size:
                raise MailboxError(
                    f"{self._where}: UID {ref.uid} announced {size} bytes but sent {received}"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return Fetched(ref, size, target)

    def fetch_headers(self, ref: MessageRef, max_bytes: int = HEADER_LIMIT_BYTES) -> bytes:
        """The message's header block (at most ``max_bytes``), e.g. of a mail too large to fetch."""
        self._check_uidvalidity(ref)
        with self._errors(f"fetch the headers of UID {ref.uid}"):
            answer = self._client.fetch([ref.uid], [f"BODY.PEEK[HEADER]<0.{max_bytes}>"])
        return (answer.get(ref.uid) or {}).get(b"BODY[HEADER]<0>") or b""

    def mark_processed(self, ref: MessageRef) -> Marked:
        """Move the message to the processed folder; flag it where that is not possible.

        Call only after the import is committed. Without a processed folder, or when the
        server refuses the move (folder missing, no permission, quota), the message stays
        and gets \\Seen plus ``$PtportalProcessed``, which ``unprocessed()`` leaves out.
        """
        self._check_uidvalidity(ref)
        target = self.settings.processed_folder
        if not target:
            self._flag(ref)
            return Marked(FLAGGED, "no processed folder configured")
        try:
            if self.move_supported:
                self._client.move([ref.uid], target)
            else:
                self._client.copy([ref.uid], target)
                self._client.add_flags([ref.uid], [b"\\Deleted"])
                if "UIDPLUS" in self._capabilities:
                    self._client.uid_expunge([ref.uid])
                else:
                    # Plain EXPUNGE also removes other \Deleted mail in the folder;
                    # without UIDPLUS there is no narrower command.
                    self._client.expunge()
        except IMAPClientError as exc:
            reason = f"cannot move to {target!r}: {_server_text(exc)}"
            log.warning("%s: UID %d %s; flagging it instead", self._where, ref.uid, reason)
            self._flag(ref)
            return Marked(FLAGGED, reason)
        except OSError as exc:
            raise MailboxError(f"{self._where}: move UID {ref.uid}: {_reason(exc)}") from None
        return Marked(MOVED)

    def append(self, message: bytes) -> None:
        """Put ``message`` into the mailbox's folder (a test mail, the demo's sample mail)."""
        with self._errors("append a message"):
            self._client.append(self.settings.folder, message)

    def wait_for_mail(self, stop: threading.Event, timeout_seconds: float | None = None) -> bool:
        """Wait until the server announces new mail (True), or timeout/``stop`` (False).

        With IDLE the server wakes us as soon as mail arrives; the wait never lasts longer
        than 29 minutes (RFC 2177). Without IDLE this just sleeps the poll interval, and
        the caller lists the folder again either way. Another thread stops the wait by
        setting ``stop``; it ends within ``STOP_CHECK_SECONDS``.
        """
        if not self.idle_supported:
            stop.wait(min(timeout_seconds or self.settings.poll_interval_seconds, IDLE_MAX_SECONDS))
            return False
        timeout = min(timeout_seconds or IDLE_MAX_SECONDS, IDLE_MAX_SECONDS)
        deadline = time.monotonic() + timeout
        news = False
        with self._errors("wait for new mail (IDLE)"):
            self._client.idle()
            try:
                while not stop.is_set() and not news:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    answers = self._client.idle_check(timeout=min(STOP_CHECK_SECONDS, remaining))
                    news = any(_announces_mail(answer) for answer in answers)
            finally:
                self._client.idle_done()
        return news

    # -- internals -------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"mailbox {self.settings.name} ({self.settings.host})"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn whatever the server or the network raises into one MailboxError line."""
        try:
            yield
        except MailboxError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise MailboxError(f"{self._where}: cannot {doing}: {_reason(exc)}") from None

    def _check_uidvalidity(self, ref: MessageRef) -> None:
        if ref.uidvalidity != self.uidvalidity:
            raise MailboxError(
                f"{self._where}: UIDVALIDITY of {self.settings.folder!r} is {self.uidvalidity}, "
                f"not {ref.uidvalidity}: list the folder again"
            )

    def _current_size(self, ref: MessageRef) -> int:
        with self._errors(f"read the size of UID {ref.uid}"):
            answer = self._client.fetch([ref.uid], ["RFC822.SIZE"])
        if ref.uid not in answer:
            raise MailboxError(f"{self._where}: UID {ref.uid} is no longer in the folder")
        return int(answer[ref.uid][b"RFC822.SIZE"])

    def _fetch_piece(self, uid: int, offset: int) -> bytes:
        answer = self._client.fetch([uid], [f"BODY.PEEK[]<{offset}.{FETCH_CHUNK_BYTES}>"])
        return (answer.get(uid) or {}).get(f"BODY[]<{offset}>".encode()) or b""

    def _flag(self, ref: MessageRef) -> None:
        with self._errors(f"flag UID {ref.uid}"):
            self._client.add_flags([ref.uid], [b"\\Seen", KEYWORD_PROCESSED.encode()])
            flags = self._client.get_flags([ref.uid]).get(ref.uid, ())
        if KEYWORD_PROCESSED.encode() not in flags:
            # The server accepted the STORE but keeps no keywords: the mail would be
            # imported again on every pass, so this must stop the worker's loop.
            raise MailboxError(
                f"{self._where}: the server does not keep the keyword {KEYWORD_PROCESSED}; "
                "configure a processed folder we may move mail to"
            )


def open_mailbox(settings: MailboxSettings) -> MailboxConnection:
    """Connect, secure the connection, log in and select the folder; MailboxError on failure."""
    where = f"mailbox {settings.name} ({settings.host}:{settings.port})"
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    timeout = SocketTimeout(connect=CONNECT_TIMEOUT_SECONDS, read=TIMEOUT_SECONDS)
    client: IMAPClient | None = None
    try:
        if settings.security == SECURITY_SSL:
            client = IMAPClient(
                settings.host, settings.port, ssl=True, ssl_context=context, timeout=timeout
            )
        else:
            client = IMAPClient(settings.host, settings.port, ssl=False, timeout=timeout)
            client.starttls(context)
        client.login(settings.user, settings.password)
    except LoginError as exc:
        _logout(client)
        raise MailboxError(
            f"{where}: login as {settings.user} refused: {_server_text(exc)}"
        ) from None
    except (IMAPClientError, OSError) as exc:
        _logout(client)
        raise MailboxError(f"{where}: cannot connect: {_reason(exc)}") from None
    connection = MailboxConnection(settings, client)
    try:
        connection.select()
    except MailboxError:
        connection.close()
        raise
    return connection


def connection_test(settings: MailboxSettings) -> tuple[bool, str]:
    """Check a mailbox the way the worker will use it; (ok, one paragraph for the admin)."""
    try:
        with open_mailbox(settings) as mailbox:
            waiting = len(mailbox.unprocessed())
            lines = [
                f"Logged in to {settings.host}:{settings.port} as {settings.user} "
                f"({settings.security}, certificate verified).",
                f"Folder {settings.folder!r}: {waiting} mails waiting.",
            ]
            ok = True
            if not settings.processed_folder:
                lines.append(f"Processed mail stays in the folder, flagged {KEYWORD_PROCESSED}.")
            elif mailbox.folder_exists(settings.processed_folder):
                lines.append(f"Processed mail is moved to {settings.processed_folder!r}.")
            else:
                ok = False
                lines.append(
                    f"Folder {settings.processed_folder!r} for processed mail does not exist: "
                    "create it, or set processed_folder = - to flag mail instead of moving it."
                )
            if mailbox.idle_supported:
                lines.append("The server offers IDLE: new mail is read as soon as it arrives.")
            else:
                lines.append(
                    f"The server offers no IDLE: the folder is read every "
                    f"{settings.poll_interval_seconds} s."
                )
    except MailboxError as exc:
        return False, str(exc)
    return ok, " ".join(lines)


def _logout(client: IMAPClient | None) -> None:
    if client is not None:
        with suppress(IMAPClientError, OSError):
            client.logout()


def _message_id(fetched: dict) -> str:
    """The Message-ID from a ``BODY[HEADER.FIELDS (MESSAGE-ID)]`` answer, or ""."""
    raw = fetched.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]") or b""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    try:
        return first_message_id(str(headers.get("Message-ID", "")))
    except Exception:  # a malformed header must not stop the listing; parsing sees it later
        return ""


def _announces_mail(answer: tuple) -> bool:
    """True for ``(n, b'EXISTS')`` and ``(n, b'RECENT')``; keepalives and flags are not news."""
    return len(answer) >= 2 and answer[1] in (b"EXISTS", b"RECENT")


def _server_text(exc: Exception) -> str:
    """The server's own words from an imapclient error, without dovecot's timings."""
    text = str(exc)
    match = re.fullmatch(r"b'(.*)'", text) or re.fullmatch(r'b"(.*)"', text)
    if match:
        text = match.group(1)
    text = re.sub(r"^\w+ failed: ", "", text)
    return _TIMING.sub("", text).strip() or type(exc).__name__


def _reason(exc: BaseException) -> str:
    """One readable line for a network, TLS or protocol failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (wrong host or port, or the server is down)"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError):
        return "no answer in time (does security = ssl or starttls match this port?)"
    if isinstance(exc, IMAPClientError):
        return _server_text(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc)
