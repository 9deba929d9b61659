"""What the workflow (API) and the hotfolder agent read about an order's files: JSON.

The agent talks to the portal over HTTPS and holds no database connection, so every
piece of data it writes into its XML comes from here, as JSON; the XML itself is built
from that JSON by ``shared.orders.workflow_xml``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.files.preflighting import preflight_record
from shared.models import Order, OrderFile


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def file_record(file: OrderFile, language: str = "de") -> dict[str, Any]:
    """One file: names, folder, size, SHA-256, state, times, and its preflight (or None)."""
    return {
        "id": file.id,
        "name": file.display_name,
        "stored_name": file.stored_name,
        "folder": file.folder,
        "size": file.size,
        "sha256": file.sha256,
        "state": file.state,
        "uploaded_at": _timestamp(file.received_at or file.created_at),
        "preflight": preflight_record(file, language),
    }


def order_files_record(order: Order, language: str = "de") -> dict[str, Any]:
    """Every file of the order that still exists, oldest first."""
    files = (
        OrderFile.select()
        .where((OrderFile.order == order) & (OrderFile.state != OrderFile.STATE_DELETED))
        .order_by(OrderFile.created_at, OrderFile.id)
    )
    return {
        "project_no": order.project_no,
        "files": [file_record(file, language) for file in files],
    }
