"""Which path is which on the agent's side: order hotfolders, outbound drop folders, Eingehend.

The portal's order folders come from ``shared.files.folders`` (one definition for both
processes); the hotfolder of an order is ``<hotfolder_root>/<hotfolder_pattern>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

from shared.config import Settings
from shared.files.folders import (
    FOLDER_FINAL,
    FOLDER_IN_PROGRESS,
    FOLDER_INCOMING,
    SAFE_NUMBER,
    is_safe_number,
    order_dir,
)

SENT_FOLDER = "sent"
OUTBOUND_FOLDERS = (FOLDER_IN_PROGRESS, FOLDER_FINAL)
# Litter that file managers and office programs leave in shared folders.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


def is_ignored_name(name: str) -> bool:
    """Hidden files, temporary copies and desktop litter are never taken."""
    return name.startswith((".", "~$")) or name.casefold() in _IGNORED_NAMES


@dataclass(frozen=True)
class IncomingPath:
    """A file in an order's ``Eingehend`` folder."""

    customer_no: str
    project_no: str
    name: str
    path: Path


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
    """Paths of the portal's order folders and of the agent's hotfolders, both ways."""

    def __init__(self, settings: Settings) -> None:
        self.order_root = settings.storage.order_root
        agent = settings.agent
        self.hotfolder_root = agent.hotfolder_root
        self.pattern = agent.hotfolder_pattern
        self.outbound_folder = agent.outbound_folder
        folders = "|".join(re.escape(folder) for folder in OUTBOUND_FOLDERS)
        self._outbound = re.compile(
            _pattern_regex(self.pattern)
            + "/"
            + re.escape(self.outbound_folder)
            + f"/(?P<folder>{folders})/(?P<name>[^/]+)"
        )

    def hotfolder_dir(self, customer_no: str, project_no: str) -> Path:
        """The internal hotfolder of an order."""
        if not (is_safe_number(customer_no) and is_safe_number(project_no)):
            raise ValueError(f"unsafe customer or order number: {customer_no!r}/{project_no!r}")
        return self.hotfolder_root / self.pattern.format(
            customer_no=customer_no, project_no=project_no
        )

    def outbound_dir(self, customer_no: str, project_no: str, folder: str) -> Path:
        """Where staff drop files for the order's portal folder ``folder``."""
        return self.hotfolder_dir(customer_no, project_no) / self.outbound_folder / folder

    def incoming_dir(self, customer_no: str, project_no: str) -> Path:
        return order_dir(self.order_root, customer_no, project_no) / FOLDER_INCOMING

    def incoming(self, path: Path) -> IncomingPath | None:
        """``path`` as a file in some order's Eingehend, or None."""
        try:
            parts = path.relative_to(self.order_root).parts
        except ValueError:
            return None
        if len(parts) != 4 or parts[2] != FOLDER_INCOMING or is_ignored_name(parts[3]):
            return None
        customer_no, project_no, _folder, name = parts
        if not (is_safe_number(customer_no) and is_safe_number(project_no)):
            return None
        return IncomingPath(customer_no, project_no, name, path)

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

    def order_dirs(self) -> Iterator[tuple[str, str]]:
        """(customer_no, project_no) of every order folder on disk that has an Eingehend."""
        for customer in _subdirectories(self.order_root):
            if not is_safe_number(customer.name):
                continue
            for order in _subdirectories(customer):
                if is_safe_number(order.name) and (order / FOLDER_INCOMING).is_dir():
                    yield customer.name, order.name

    def outbound_files(self) -> Iterator[Path]:
        """Every file waiting in an outbound folder."""
        glob = self.pattern.format(customer_no="*", project_no="*")
        for folder in OUTBOUND_FOLDERS:
            for path in self.hotfolder_root.glob(f"{glob}/{self.outbound_folder}/{folder}/*"):
                if path.is_file() and self.outbound(path) is not None:
                    yield path


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
