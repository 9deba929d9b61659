"""Deliver clean uploads into their orders' hotfolders, exactly once, surviving a crash anywhere.

Files ready together go through the steps together; each step is safe to repeat
after a kill:

1. claim: a ``Delivery`` row (unique per file) says *intent* and which agent holds
   it (one transaction for the batch);
2. copy each file to a hidden temporary name in its target folder, hashing on the
   way, and verify size and SHA-256 against the upload record; then fsync every
   copy (``copying``: the writeback started while the next file was copied);
3. record the chosen names (one transaction), link each copy into place (never
   overwriting: a taken name gets a numbered suffix), unlink the temporary name,
   then fsync each target folder once;
4. record *done* with time and path for the batch (one transaction). The XML
   notification comes later (``notification``).

A file that fails (unreadable, changed since upload, hotfolder not writable)
leaves the batch with its reason and the others go on. A lone file is a batch of
one: nothing waits for a batch to fill. A restart finds the intent rows and looks
at the temporary names and the recorded targets to tell which step was last done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path

from hotfolder_agent.context import AgentContext
from hotfolder_agent.copying import (
    Copied,
    CopyJob,
    DeliveryFailed,
    HotfolderUnwritable,
    copy_all,
)
from hotfolder_agent.fsutil import place_without_overwrite, reason, sync_directory
from hotfolder_agent.records import ClaimLost, claim_deliveries, record_done, record_plans
from hotfolder_agent.seams import pause_at
from hotfolder_agent.workers import FileWorkers
from shared.files.intake import folder_path
from shared.files.names import free_name
from shared.models import Delivery, OrderFile

STEP_LINKED = "linked"
STEP_BEFORE_RECORD = "before_record"

DELIVERED = "delivered"
ALREADY_DELIVERED = "already_delivered"
CLAIMED_ELSEWHERE = "claimed_elsewhere"
CLAIM_LOST = "claim_lost"
FAILED = "failed"

# A batch is bounded so that its unsynced copies stay a small share of memory and
# its last file is not held back long by its first.
BATCH_FILES = 64
BATCH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    status: str
    path: Path | None = None
    failure: DeliveryFailed | None = None


@dataclass
class _Job:
    """One file on its way through a batch."""

    file: OrderFile
    row: Delivery
    copy: CopyJob
    placed: Path | None = None

    @property
    def target_dir(self) -> Path:
        return self.copy.target_dir

    @property
    def temp(self) -> Path:
        return self.copy.temp


def batches(files: Iterable[OrderFile]) -> Iterator[list[OrderFile]]:
    """``files`` in batches of at most ``BATCH_FILES`` files and ``BATCH_BYTES`` (or one file)."""
    batch: list[OrderFile] = []
    size = 0
    for file in files:
        if batch and (len(batch) == BATCH_FILES or size + file.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield batch


class Batch:
    """Files between their claim and their record.

    ``start`` claims the files and has them copied and fsynced, in ``copier``'s
    worker processes when given; ``finish`` waits for the copies and does the rest. Meanwhile the
    caller finishes earlier batches: their links, records and XML overlap this
    batch's reading, hashing, writing and fsyncs.
    """

    def __init__(self, files: list[OrderFile]) -> None:
        self.files = files
        self.outcomes: dict[int, Outcome] = {}
        self._jobs: list[_Job] = []
        self._copies: Future[list[Copied]] | None = None

    @classmethod
    def start(
        cls, ctx: AgentContext, files: list[OrderFile], copier: FileWorkers | None = None
    ) -> Batch:
        """Claim the files and start copying them to their temporary names."""
        batch = cls(files)
        batch._jobs = _claimed(ctx, files, batch.outcomes)
        copies = [job.copy for job in batch._jobs]
        if copier is None:
            batch._copies = Future()
            batch._copies.set_result(copy_all(copies))
        else:
            batch._copies = copier.submit(copy_all, copies)
        return batch

    def finish(self, ctx: AgentContext) -> list[Outcome]:
        """Link the durable copies into place and record them done; one outcome per file."""
        copied = []
        for job, result in zip(self._jobs, self._copies.result(), strict=True):
            if result.failure is not None:
                self.outcomes[job.file.id] = Outcome(FAILED, failure=result.failure)
            elif result.placed is not None:
                job.placed = result.placed
            else:
                copied.append(job)
        _place(ctx, copied, self.outcomes)
        placed = [
            job for job in self._jobs if job.placed is not None and job.file.id not in self.outcomes
        ]
        pause_at(STEP_BEFORE_RECORD)
        record_done([(job.row, job.file, job.placed) for job in placed])
        for job in placed:
            self.outcomes[job.file.id] = Outcome(DELIVERED, job.placed)
        return [self.outcomes[file.id] for file in self.files]

    def close(self) -> None:
        """A batch not to be finished: wait until its copier has let go of the files."""
        if self._copies is not None:
            wait([self._copies])


def deliver_batch(ctx: AgentContext, files: list[OrderFile]) -> list[Outcome]:
    """Copy ``files`` into their orders' hotfolders unless done already; one outcome per file."""
    return Batch.start(ctx, files).finish(ctx)


def deliver(ctx: AgentContext, file: OrderFile) -> Outcome:
    """Deliver one file; raise its ``DeliveryFailed`` or ``ClaimLost``."""
    [outcome] = deliver_batch(ctx, [file])
    if outcome.failure is not None:
        raise outcome.failure
    if outcome.status == CLAIM_LOST:
        raise ClaimLost(file.stored_name)
    return outcome


def _claimed(ctx: AgentContext, files: list[OrderFile], outcomes: dict[int, Outcome]) -> list[_Job]:
    rows, first_claims = claim_deliveries(ctx, files)
    jobs = []
    for file in files:
        row = rows.get(file.id)
        if row is None:
            outcomes[file.id] = Outcome(CLAIMED_ELSEWHERE)
        elif row.state == Delivery.STATE_DONE:
            outcomes[file.id] = Outcome(ALREADY_DELIVERED, Path(row.hotfolder_path))
        else:
            order = file.order
            copy = CopyJob(
                file_id=file.id,
                size=file.size,
                sha256=file.sha256,
                source=folder_path(ctx.settings, file) / file.stored_name,
                target_dir=ctx.layout.hotfolder_dir(order.customer.customer_no, order.project_no),
                planned=row.hotfolder_path,
                fresh=file.id in first_claims,
            )
            jobs.append(_Job(file, row, copy))
    return jobs


def _each(
    jobs: list[_Job], outcomes: dict[int, Outcome], step: Callable[[_Job], None]
) -> list[_Job]:
    """Run ``step`` on every job; a job that fails gets its outcome and drops out."""
    kept = []
    for job in jobs:
        try:
            step(job)
        except DeliveryFailed as failure:
            outcomes[job.file.id] = Outcome(FAILED, failure=failure)
        except ClaimLost:
            outcomes[job.file.id] = Outcome(CLAIM_LOST)
        except OSError as exc:
            failure = DeliveryFailed(job.temp, reason(exc))
            outcomes[job.file.id] = Outcome(FAILED, failure=failure)
        else:
            kept.append(job)
    return kept


def _place(ctx: AgentContext, jobs: list[_Job], outcomes: dict[int, Outcome]) -> None:
    """Record the chosen names, link the copies into place, fsync each folder once."""
    taken: dict[Path, set[str]] = {}  # names in each folder, and those chosen in this batch
    plans = []
    for job in jobs:
        plans.append((job.row, job.target_dir / _choose_name(job, taken)))
    lost = record_plans(ctx, plans)
    for job in jobs:
        if job.row.id in lost:
            outcomes[job.file.id] = Outcome(CLAIM_LOST)
    linked = _each(
        [job for job in jobs if job.row.id not in lost],
        outcomes,
        lambda job: _link(ctx, job, taken),
    )
    for directory in {job.target_dir for job in linked}:
        try:
            sync_directory(directory)
        except OSError as exc:
            failure = HotfolderUnwritable(directory, reason(exc))
            for job in linked:
                if job.target_dir == directory:
                    job.placed = None
                    outcomes[job.file.id] = Outcome(FAILED, failure=failure)


def _choose_name(job: _Job, taken: dict[Path, set[str]]) -> str:
    """The file's own name if free, else ``name (2)``…; the folder is listed once per batch.

    ``taken`` holds the casefolded names seen or chosen per folder. It may be out
    of date; that is safe, because linking never overwrites a name that exists.
    """
    names = taken.get(job.target_dir)
    if names is None:
        try:
            names = {entry.name.casefold() for entry in os.scandir(job.target_dir)}
        except FileNotFoundError:
            names = set()
        taken[job.target_dir] = names
    name = job.file.stored_name
    if name.casefold() in names:
        name = free_name(job.target_dir, name, also_taken=names)
    names.add(name.casefold())
    return name


def _link(ctx: AgentContext, job: _Job, taken: dict[Path, set[str]]) -> None:
    """Give the durable copy its recorded name; a name taken meanwhile means a new plan."""
    target = Path(job.row.hotfolder_path)
    while True:
        try:
            place_without_overwrite(job.temp, target, after_link=lambda: pause_at(STEP_LINKED))
        except FileExistsError:
            target = job.target_dir / _choose_name(job, taken)
            if record_plans(ctx, [(job.row, target)]):
                raise ClaimLost(str(target)) from None
            continue
        except OSError as exc:
            raise HotfolderUnwritable(target, reason(exc)) from None
        job.placed = target
        return
