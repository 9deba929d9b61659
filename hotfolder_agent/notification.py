"""Step 7: XML job notifications, one per order batch, written after the files are in place.

Files of an order confirmed within ``batch_window_seconds`` of the first share one
notification (0: one per file). Everything due at one moment is written together:

1. one record of all their batches — everything the XMLs hold, the files with their
   paths and times — goes to the state folder, durably (``notifications/<name>.json``).
   With ``batch_window_seconds = 0`` there is no such record: each file is its own
   batch, and its delivery record already holds everything its XML says;
2. each XML is written to a hidden temporary name, fsynced, renamed into
   ``notification_dir``, and the folder fsynced once: consumers see an XML whole or
   not at all;
3. the record is marked *written* (durably), and the delivery records of the files go:
   they are done;
4. the portal is told of each XML (recorded for staff, mailed if configured); once it
   has them all, the record goes.

Killed before 3, a restart writes the XMLs of the record again — same names
(``<order>_<first file id>.xml``), same bytes; after 3 it only tells the portal. Each
file is thus listed in exactly one XML, and no XML is written twice once it is marked.
Without a record (window 0) the delivery records play its part: the file is confirmed
again and its XML written again, the same bytes under the same name; what the portal
was not told before a crash it is not told then (its record of the notification and
the optional mail; the file itself is "in hotfolder" all the same).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hotfolder_agent.context import Context
from hotfolder_agent.fsutil import reason, write_files
from hotfolder_agent.reporter import ACTION_NOTIFY, Reporter
from hotfolder_agent.seams import pause_at
from hotfolder_agent.state import DELIVERIES, NOTIFICATIONS
from shared.orders.workflow_xml import job_notification_document

log = logging.getLogger(__name__)

STEP_BEFORE_XML = "before_xml"
RETRY_SECONDS = 30.0


@dataclass
class _Batch:
    opened: float  # monotonic
    jobs: list = field(default_factory=list)


def _timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


class Notifications:
    """Open batches per order, and the records of notifications being written or told."""

    def __init__(self, ctx: Context, reporter: Reporter) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self._open: dict[str, _Batch] = {}
        self._records: dict[str, dict] = {}  # record name -> record (step 1 done)
        self._untold: dict[str, set[str]] = {}  # record name -> XMLs the portal lacks
        self._retry_at = 0.0
        self.written: list[int] = []  # file ids done since the main loop last looked

    def recover(self) -> set[int]:
        """Finish the records of the last run; returns the file ids they hold."""
        records = self.ctx.state.read_all(NOTIFICATIONS)
        if records:
            log.info("action=recover notification records=%d", len(records))
        self._records.update(records)
        for name, record in records.items():
            if record.get("written"):  # killed before the portal heard of them: tell it
                self._untold[name] = {batch["name"] for batch in record["batches"]}
                for batch in record["batches"]:
                    ids = [item["file_id"] for item in batch["files"]]
                    self.reporter.notification(batch["name"], ids, job_notification_document(batch))
        self._write(force=True)
        return {
            item["file_id"]
            for record in records.values()
            for batch in record["batches"]
            for item in batch["files"]
        }

    def add(self, job) -> None:
        """A file is confirmed in its hotfolder: it joins its order's open batch (with
        ``batch_window_seconds = 0`` every file is a batch of its own)."""
        key = job.project_no if self.ctx.settings.batch_window_seconds else str(job.file_id)
        self._open.setdefault(key, _Batch(time.monotonic())).jobs.append(job)

    def next_due(self) -> float | None:
        """When (monotonic) the next batch is due, or None."""
        window = self.ctx.settings.batch_window_seconds
        moments = [batch.opened + window for batch in self._open.values()]
        if any(not record.get("written") for record in self._records.values()):
            moments.append(self._retry_at)
        return min(moments, default=None)

    def flush(self, force: bool = False) -> int:
        """Write every batch whose window is over (all of them with ``force``); returns how
        many."""
        window = self.ctx.settings.batch_window_seconds
        now = time.monotonic()
        due = [
            key
            for key, batch in self._open.items()
            if force or window == 0 or batch.opened + window <= now
        ]
        if due:
            batches = [self._batch(self._open.pop(key).jobs) for key in due]
            record = {"batches": batches, "written": False}
            name = batches[0]["name"].removesuffix(".xml")
            if window:
                try:
                    self.ctx.state.write(NOTIFICATIONS, name, record, durable=True)
                except OSError as exc:
                    # Written anyway: only a crash before the XMLs would lose them now.
                    self.reporter.problems.report(
                        ACTION_NOTIFY, self.ctx.state.directory, f"state folder: {reason(exc)}"
                    )
            self._records[name] = record
            force = True
        self._write(force)
        return len(due)

    def _batch(self, jobs: list) -> dict:
        first = min(jobs, key=lambda job: job.file_id)
        # A batch of one takes the file's delivery time, so that it is the same whenever
        # its XML is made.
        created = first.placed_at if len(jobs) == 1 else datetime.now(UTC)
        return {
            "name": f"{first.project_no}_{first.file_id:06d}.xml",
            "id": first.file_id,
            "created": _timestamp(created),
            "order": first.file.data["order"],
            "hotfolder": str(first.target_dir),
            "files": [
                {
                    "file_id": job.file_id,
                    "name": job.file.name,
                    "stored_name": job.file.stored_name,
                    "size": job.file.size,
                    "sha256": job.file.sha256,
                    "uploaded_at": job.file.data["uploaded_at"],
                    "delivered_at": _timestamp(job.placed_at),
                    "path": str(job.planned),
                    "preflight": job.file.data.get("preflight"),
                }
                for job in sorted(jobs, key=lambda job: job.file_id)
            ],
        }

    def _write(self, force: bool) -> None:
        """Steps 2–4 for every record not written yet."""
        pending = {name: r for name, r in self._records.items() if not r.get("written")}
        if not pending or (not force and time.monotonic() < self._retry_at):
            return
        contents = {
            batch["name"]: job_notification_document(batch)
            for record in pending.values()
            for batch in record["batches"]
        }
        directory: Path = self.ctx.settings.notification_dir
        pause_at(STEP_BEFORE_XML)
        try:
            write_files(directory, contents)
        except OSError as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.reporter.problems.report(ACTION_NOTIFY, directory, reason(exc))
            return
        self.reporter.problems.resolved([directory])
        file_ids = []
        for name, record in pending.items():
            record["written"] = True
            self._untold[name] = {batch["name"] for batch in record["batches"]}
            for batch in record["batches"]:
                ids = [item["file_id"] for item in batch["files"]]
                file_ids += ids
                log.info(
                    "order=%s file=%s action=notified files=%d",
                    batch["order"]["project_no"],
                    batch["name"],
                    len(ids),
                )
                self.reporter.notification(batch["name"], ids, contents[batch["name"]])
        try:
            if self.ctx.settings.batch_window_seconds:
                self.ctx.state.write_many(NOTIFICATIONS, pending)
            self.ctx.state.remove(DELIVERIES, [str(file_id) for file_id in file_ids], durable=True)
        except OSError as exc:
            self.reporter.problems.report(
                ACTION_NOTIFY, self.ctx.state.directory, f"state folder: {reason(exc)}"
            )
        self.written += file_ids

    def on_reported(self, xml_name: str) -> None:
        """The portal has one XML: a record whose XMLs it has all goes."""
        for name, untold in list(self._untold.items()):
            untold.discard(xml_name)
            if not untold:
                del self._untold[name]
                self._records.pop(name, None)
                self.ctx.state.remove(NOTIFICATIONS, [name])  # none with a window of 0
