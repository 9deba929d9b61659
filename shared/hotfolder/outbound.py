"""Staff files back to the customer: a hotfolder agent uploads what staff dropped.

The agent sends a file from an order's drop folder (``_to_customer/In Bearbeitung`` or
``…/Final``) with tus, like a browser; the upload is the portal's usual one
(``shared.files.receiving``) and the worker scans it like any upload, so nothing reaches
the customer unscanned. An ``OutboundTransfer`` row ties the upload to the agent token
that started it (only that token may continue it) and shows staff what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.clock import utcnow
from shared.config import Settings
from shared.db import write_transaction
from shared.errors import NotFound
from shared.files.access import staff_upload_folder
from shared.files.receiving import start_upload
from shared.models import ApiToken, Order, OrderFile, OutboundTransfer


@dataclass(frozen=True)
class Dropped:
    """A file staff dropped into an order's drop folder, as the agent announces it."""

    project_no: str
    customer_no: str
    folder: str
    filename: str
    size: int
    source: str  # its path on the agent's host
    agent_id: str


def start_outbound(settings: Settings, token: ApiToken, dropped: Dropped) -> OrderFile:
    """Start the upload of a dropped file into the order's folder (In Bearbeitung or Final);
    only ``token`` may continue it. NotFound for an order that is not the customer's."""
    order = Order.get_or_none(Order.project_no == dropped.project_no)
    if order is None or (dropped.customer_no and order.customer.customer_no != dropped.customer_no):
        raise NotFound(dropped.project_no)
    folder = staff_upload_folder(dropped.folder)
    file = start_upload(
        settings,
        order,
        dropped.filename,
        dropped.size,
        folder=folder,
        source=Path(dropped.source) if dropped.source else None,
    )
    with write_transaction():
        OutboundTransfer.create(
            source_path=dropped.source,
            order=order,
            folder=folder,
            size=dropped.size,
            claimed_by=dropped.agent_id,
            file=file,
            token=token,
        )
    return file


def outbound_received(file: OrderFile) -> None:
    """Every byte of a dropped file arrived: it is in the portal (and goes to the scan)."""
    with write_transaction():
        OutboundTransfer.update(state=OutboundTransfer.STATE_SENT, done_at=utcnow()).where(
            (OutboundTransfer.file == file.id)
            & (OutboundTransfer.state != OutboundTransfer.STATE_SENT)
        ).execute()
