"""Where order folders live: ``<order_root>/<customer_no>/<project_no>/<folder>``.

The one definition used by the portal and the hotfolder agent. Customer and
order numbers become directory names, so they are restricted to a safe
alphabet at the door (``SAFE_NUMBER``).
"""

from __future__ import annotations

import re
from pathlib import Path

FOLDER_INCOMING = "Eingehend"
FOLDER_IN_PROGRESS = "In Bearbeitung"
FOLDER_FINAL = "Final"
ORDER_FOLDERS = (FOLDER_INCOMING, FOLDER_IN_PROGRESS, FOLDER_FINAL)

SAFE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_safe_number(value: str) -> bool:
    """True if ``value`` can be a customer or order number (and so a directory name)."""
    return bool(SAFE_NUMBER.fullmatch(value)) and ".." not in value


def order_dir(order_root: Path, customer_no: str, project_no: str) -> Path:
    """The directory holding an order's three folders."""
    if not (is_safe_number(customer_no) and is_safe_number(project_no)):
        raise ValueError(f"unsafe customer or order number: {customer_no!r}/{project_no!r}")
    return order_root / customer_no / project_no


def create_order_folders(order_root: Path, customer_no: str, project_no: str) -> Path:
    """Create ``Eingehend``, ``In Bearbeitung`` and ``Final`` for an order (idempotent)."""
    base = order_dir(order_root, customer_no, project_no)
    for folder in ORDER_FOLDERS:
        (base / folder).mkdir(parents=True, exist_ok=True)
    return base
