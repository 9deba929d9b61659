"""A clamd of our own for the demo: Debian's clamd with the shipped limits, offline.

It uses Debian's signature databases when freshclam has fetched them, otherwise
the EICAR test signatures shipped in ``shared/clamav/test-signatures`` (enough to
see a rejection, nothing more: production runs the system's clamd).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

SYSTEM_DATABASE = Path("/var/lib/clamav")


def clamd_binary() -> str | None:
    """Debian's clamd; /usr/sbin is often not on a normal user's PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("clamd", path=search)


def signature_directory() -> tuple[Path, bool]:
    """The databases to load, and whether they are the real ones."""
    if any(SYSTEM_DATABASE.glob("*.c[lv]d")):
        return SYSTEM_DATABASE, True
    return Path(str(resources.files("shared").joinpath("clamav/test-signatures"))), False


def write_clamd_conf(directory: Path) -> Path:
    """Write ``directory/clamd.conf``: local socket and files first, then the shipped limits."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    database, _real = signature_directory()
    local = [
        "# written by `ptportal demo`; the limits below come from shared/clamav/clamd.conf",
        "Foreground yes",
        f"LocalSocket {directory / 'clamd.sock'}",
        f"DatabaseDirectory {database}",
        f"TemporaryDirectory {directory / 'tmp'}",
        f"PidFile {directory / 'clamd.pid'}",
        f"LogFile {directory / 'clamd.log'}",
        "SelfCheck 0",
    ]
    shipped = resources.files("shared").joinpath("clamav/clamd.conf").read_text("utf-8")
    conf = directory / "clamd.conf"
    conf.write_text("\n".join(local) + "\n\n" + shipped, encoding="utf-8")
    return conf
