"""Where things go on the agent's side: order hotfolders and their drop folders.

The hotfolder of an order is ``<hotfolder_root>/<hotfolder_pattern>`` (default
``<customer_no>/<project_no>``); staff drop files for the customer into
``<hotfolder>/<outbound_folder>/In Bearbeitung`` or ``…/Final``.

Customer and order numbers and file names come from the portal's answers. They are
checked before anything is written (``shared.files.folders.is_safe_number``,
``shared.files.names.is_stored_name``) and every target must lie inside
``hotfolder_root`` once symbolic links are resolved: whatever the portal says, the
agent writes nowhere else.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

from shared.config import AgentSettings
from shared.files.folders import FOLDER_FINAL, FOLDER_IN_PROGRESS, SAFE_NUMBER, is_safe_number
from shared.files.names import is_stored_name

SENT_FOLDER = "sent"
CHECK_SECONDS = 10.0
OUTBOUND_FOLDERS = (FOLDER_IN_PROGRESS, FOLDER_FINAL)
# Litter that file managers and office programs leave in shared folders.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


class UnsafeAnswer(Exception):
    """The portal named a customer, order or file the agent must not write (``../``, NUL …)."""


def is_ignored_name(name: str) -> bool:
    """Hidden files, temporary copies and desktop litter are never taken."""
    return name.startswith((".", "~$")) or name.casefold() in _IGNORED_NAMES


@dataclass(frozen=True)
class OutboundPath:
    """A file staff dropped into an order's outbound folder for ``folder``."""

    customer_no: str | None
    project_no: str
    folder: str
    name: str
    path: Path


def _pattern_regex(pattern: str) -> str:
    """The hotfolder pattern as a regex with named groups for the placeholders."""
    regex = ""
    seen: set[str] = set()
    for literal, field, _spec, _conversion in Formatter().parse(pattern):
        regex += re.escape(literal)
        if field:
            regex += f"(?P={field})" if field in seen else f"(?P<{field}>{SAFE_NUMBER.pattern})"
            seen.add(field)
    return regex


class Layout:
    """Paths of the agent's hotfolders and drop folders."""

    def __init__(self, settings: AgentSettings) -> None:
        self.hotfolder_root = settings.hotfolder_root
        self.pattern = settings.hotfolder_pattern
        self.outbound_folder = settings.outbound_folder
        folders = "|".join(re.escape(folder) for folder in OUTBOUND_FOLDERS)
        self._inside: dict[Path, float] = {}  # folders found inside, until when
        self._outbound = re.compile(
            _pattern_regex(self.pattern)
            + "/"
            + re.escape(self.outbound_folder)
            + f"/(?P<folder>{folders})/(?P<name>[^/]+)"
        )

    def hotfolder_dir(self, customer_no: str, project_no: str) -> Path:
        """The internal hotfolder of an order; UnsafeAnswer for numbers that are no names."""
        if not (is_safe_number(customer_no) and is_safe_number(project_no)):
            raise UnsafeAnswer(f"unsafe customer or order number {customer_no!r}/{project_no!r}")
        directory = self.hotfolder_root / self.pattern.format(
            customer_no=customer_no, project_no=project_no
        )
        self.check_inside(directory)
        return directory

    def target(self, customer_no: str, project_no: str, stored_name: str) -> tuple[Path, str]:
        """The hotfolder and the checked file name for a file the portal announced."""
        directory = self.hotfolder_dir(customer_no, project_no)
        if not isinstance(stored_name, str) or not is_stored_name(stored_name):
            raise UnsafeAnswer(f"unsafe file name {stored_name!r}")
        return directory, stored_name

    def check_inside(self, path: Path) -> None:
        """UnsafeAnswer unless ``path`` (symbolic links resolved) lies in hotfolder_root.

        A folder found inside is not resolved again for ``CHECK_SECONDS`` (each check is a
        system call per path component, and every file of an order has the same folder).
        """
        now = time.monotonic()
        if self._inside.get(path, 0.0) > now:
            return
        root = os.path.realpath(self.hotfolder_root)
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root:
            raise UnsafeAnswer(f"{path} lies outside {self.hotfolder_root}")
        if len(self._inside) > 10_000:
            self._inside.clear()
        self._inside[path] = now + CHECK_SECONDS

    def outbound_dir(self, customer_no: str, project_no: str, folder: str) -> Path:
        """Where staff drop files for the order's portal folder ``folder``."""
        return self.hotfolder_dir(customer_no, project_no) / self.outbound_folder / folder

    def outbound(self, path: Path) -> OutboundPath | None:
        """``path`` as a file in some order's outbound folder, or None (``sent`` included)."""
        try:
            relative = path.relative_to(self.hotfolder_root).as_posix()
        except ValueError:
            return None
        match = self._outbound.fullmatch(relative)
        if match is None or is_ignored_name(match["name"]):
            return None
        groups = match.groupdict()
        return OutboundPath(
            groups.get("customer_no"), groups["project_no"], groups["folder"], groups["name"], path
        )

    def outbound_files(self) -> Iterator[Path]:
        """Every file waiting in an outbound folder."""
        glob = self.pattern.format(customer_no="*", project_no="*")
        for folder in OUTBOUND_FOLDERS:
            for path in self.hotfolder_root.glob(f"{glob}/{self.outbound_folder}/{folder}/*"):
                if path.is_file() and self.outbound(path) is not None:
                    yield path
