"""A development SMTP server that keeps every received mail as a ``.eml`` file."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


class EmlMailbox:
    """aiosmtpd handler writing each message to ``<directory>/<UTC timestamp>-<counter>.eml``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message exactly as received."""
        path = self.store(envelope.original_content)
        log.info("caught mail from %s to %s as %s", envelope.mail_from, envelope.rcpt_tos, path)
        return "250 OK"

    def store(self, content: bytes) -> Path:
        """Write ``content`` atomically so a reader never sees half a mail."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.directory / f"{stamp}-{next(self._counter):04d}.eml"
        # The temporary name does not end in .eml, so globbing readers skip it.
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def serve(directory: Path, host: str, port: int) -> Controller:
    """Start catching mail on ``host:port`` (a real free port; 0 does not work) and return."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(EmlMailbox(directory), hostname=host, port=port)
    controller.start()
    return controller


def run_forever(directory: Path, host: str, port: int) -> None:
    """Catch mail until SIGINT or SIGTERM, then stop the server cleanly."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        # Only set the flag here; the main thread logs and stops.
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    controller = None
    try:
        controller = serve(directory, host, port)
        log.info("catching mail on %s:%d into %s", host, port, directory)
        # Wait in slices so the signal handler gets to run promptly.
        while not stop.wait(1):
            pass
    finally:
        if controller is not None:
            log.info("stopping mail catcher")
            controller.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
