"""Delivering clean uploads into the internal hotfolders: the numbered protocol.

Every file the portal leases to this agent goes through these steps, and the agent's
state folder (``state``) says how far it got, so that an agent killed at any step and
started again finishes exactly that step: one copy and one XML per file, nothing
half-placed, nothing outside the customer's hotfolder.

0. **lease** — the portal reserves the file for this agent (``poller``); heartbeats keep
   the lease, an agent silent for three beats loses it to another.
1. **download** to a hidden temporary name in the target hotfolder; record *downloading*.
2. **fsync** the copy.
3. **verify** size and SHA-256 against the portal's (1–3: ``download``, on a thread).
4. **plan** the name (the portal's stored name, checked; taken → ``name (2).pdf``) and
   record it durably with the copy's inode — a restart knows where to look. One plan
   record serves all files planned together (``deliveries/plan-<first id>.json``).
5. **link** into place without overwriting (``os.link`` fails on an existing name),
   unlink the temporary name, fsync the folder.
6. **confirm** to the portal: path, time and SHA-256 (``reporter``).
7. **XML** job notification, written last (``notification``); then the record goes.

A restart reads the records: *downloading* continues the download where the bytes on
disk end; *planned* looks at the disk — both names on one file (killed between link
and unlink): unlink the temporary one; only the placed name with the recorded inode:
placed; only the temporary copy: place it (after the portal confirmed the lease). A
placed file is confirmed again (the portal takes the same path twice). Files the
portal gave to another agent meanwhile are let go: the temporary copy, and a placed
copy that is provably ours (same inode), are removed.

Steps 1–3 run on up to ``[agent] downloads`` threads (their fsyncs overlap); the main
loop does steps 4–6 for every file verified meanwhile together — one durable plan
record, one fsync per hotfolder, one confirmation request — and step 7 for all files
confirmed together.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hotfolder_agent.client import Interrupted
from hotfolder_agent.context import Context
from hotfolder_agent.download import (
    BUNDLE_FILE_BYTES,
    DownloadFailed,
    Gone,
    HotfolderUnwritable,
    bundles,
    fetch,
    fetch_many,
    temp_name,
)
from hotfolder_agent.fsutil import place_without_overwrite, reason, sync_directory
from hotfolder_agent.layout import UnsafeAnswer
from hotfolder_agent.poller import Slots
from hotfolder_agent.remote import RemoteFile
from hotfolder_agent.reporter import ACTION_DELIVER, Reporter
from hotfolder_agent.seams import pause_at
from hotfolder_agent.state import DELIVERIES
from shared.files.names import free_name

log = logging.getLogger(__name__)

STEP_VERIFIED = "verified"
STEP_PLANNED = "planned"
STEP_LINKED = "linked"
STEP_PLACED = "placed"

EVENT_WORKED = "worked"

# Where a file is in this run.
WAITING = "waiting"  # to be downloaded (or its lease to be confirmed after a restart)
VERIFIED = "verified"  # a durable, verified copy under its temporary name, to be placed
WORKING = "working"  # on a download thread (steps 1–3)
PLACED = "placed"  # linked into its hotfolder; folder sync and confirmation to come
CONFIRMING = "confirming"
CONFIRMED = "confirmed"  # waiting for its XML
UNSAFE = "unsafe"  # the portal's answer was refused; held, not retried in this run

# A failed file is tried again after this long, doubling up to RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 600.0

RECORD_DOWNLOADING = "downloading"
RECORD_PLANNED = "planned"
PLAN_PREFIX = "plan-"


@dataclass
class Job:
    """One file on its way; ``file`` is None until the portal answered after a restart."""

    file_id: int
    state: str
    file: RemoteFile | None = None
    target_dir: Path | None = None
    temp: Path | None = None
    planned: Path | None = None
    inode: int | None = None
    placed_at: datetime | None = None
    leased: bool = False  # the portal confirmed the lease in this run
    plan: str = ""  # the plan record its step 4 is in
    failures: int = 0
    retry_at: float = 0.0

    @property
    def project_no(self) -> str:
        return self.file.project_no if self.file else "-"


def _timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def _stat(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        return os.stat(path)
    except OSError:
        return None


class Names:
    """The names taken in each hotfolder, shared by the download threads.

    Names are compared case-insensitively (a hotfolder shared over SMB holds
    ``Report.pdf`` and ``report.pdf`` as one file). A folder is listed once and kept up
    to date with the names chosen here; the list may still miss a file someone else put
    there meanwhile, which is safe: linking never overwrites, it fails, and the folder is
    listed again (``forget``).
    """

    MAX_FOLDERS = 1000

    def __init__(self) -> None:
        self._taken: dict[Path, set[str]] = {}
        self._lock = threading.Lock()

    def choose(self, directory: Path, name: str) -> str:
        """``name``, or ``name (2).ext``… if taken; reserved for the caller at once."""
        with self._lock:
            taken = self._taken.get(directory)
            if taken is None:
                if len(self._taken) >= self.MAX_FOLDERS:
                    self._taken.clear()
                try:
                    taken = {entry.name.casefold() for entry in os.scandir(directory)}
                except FileNotFoundError:
                    taken = set()
                self._taken[directory] = taken
            if name.casefold() in taken:
                name = free_name(directory, name, also_taken=taken)
            taken.add(name.casefold())
            return name

    def forget(self, directory: Path) -> None:
        with self._lock:
            self._taken.pop(directory, None)


class Deliveries:
    """The files in hand and their steps; everything but downloads runs on the main loop."""

    def __init__(
        self, ctx: Context, slots: Slots, reporter: Reporter, pool: Executor, notifications
    ) -> None:
        self.ctx = ctx
        self.slots = slots
        self.reporter = reporter
        self.problems = reporter.problems
        self.pool = pool
        self.notifications = notifications
        self.names = Names()
        self.jobs: dict[int, Job] = {}
        self.plans: dict[str, set[int]] = {}  # plan record -> its files not done yet

    # --- what the main loop and the reporter ask -------------------------------------------

    def queue_length(self) -> int:
        return sum(1 for job in self.jobs.values() if job.state != UNSAFE)

    def releasable(self) -> list[int]:
        """Files nothing of which is placed: when stopping, others may take them."""
        return [
            job.file_id for job in self.jobs.values() if job.state in (WAITING, VERIFIED, WORKING)
        ]

    def _record(self, job: Job) -> dict:
        """Step 1's record: what the portal said about the file, where its copy goes."""
        return {
            "step": RECORD_DOWNLOADING,
            "file": job.file.data,
            "target_dir": str(job.target_dir),
            "temp": str(job.temp),
        }

    @staticmethod
    def _planned(job: Job) -> dict:
        """Step 4's entry in a plan record."""
        return {
            "planned": str(job.planned),
            "inode": job.inode,
            "placed_at": _timestamp(job.placed_at),
        }

    def _prepare(self, job: Job, file: RemoteFile) -> None:
        """Where the file goes; UnsafeAnswer if the portal's names cannot be paths."""
        target_dir, _name = self.ctx.layout.target(
            file.customer_no, file.project_no, file.stored_name
        )
        job.file = file
        job.target_dir = target_dir
        job.temp = target_dir / temp_name(file.id, self.ctx.state.key)

    # --- a restart ---------------------------------------------------------------------------

    def recover(self, notified: set[int]) -> list[int]:
        """Take up the records of the last run; returns the files whose lease to ask for."""
        records = self.ctx.state.read_all(DELIVERIES)
        plans = {name: r for name, r in records.items() if name.startswith(PLAN_PREFIX)}
        planned: dict[int, tuple[str, dict]] = {}
        for plan, record in sorted(plans.items(), key=lambda item: item[1].get("written", "")):
            for file_id, entry in (record.get("files") or {}).items():
                planned[int(file_id)] = (plan, entry)  # a later plan wins (a new name)
        records = {name: r for name, r in records.items() if name not in plans}
        finished = [name for name in records if name.isdigit() and int(name) in notified]
        self.ctx.state.remove(DELIVERIES, finished, durable=True)  # their XML is written
        reclaim = []
        for name, record in records.items():
            if name in finished:
                continue
            try:
                job = Job(int(name), WAITING)
                self._prepare(job, RemoteFile.from_json(record.get("file")))
            except (ValueError, UnsafeAnswer) as exc:
                log.warning("action=recover record %s of the state folder unusable (%s)", name, exc)
                self.ctx.state.remove(DELIVERIES, [name])
                continue
            if job.file_id in planned:
                job.plan, entry = planned[job.file_id]
                self.plans.setdefault(job.plan, set()).add(job.file_id)
                self._recover_planned(job, entry)
            self.jobs[job.file_id] = job
            if job.state in (WAITING, VERIFIED):
                reclaim.append(job.file_id)
        self.slots.hold(list(self.jobs))
        empty = [plan for plan in plans if plan not in self.plans]
        self.ctx.state.remove(DELIVERIES, empty)  # all of their files are done
        # Placed files are synced and confirmed by the first ``tick``.
        placed = [job for job in self.jobs.values() if job.state == PLACED]
        if self.jobs:
            log.info(
                "action=recover files=%d to reclaim=%d to confirm=%d",
                len(self.jobs),
                len(reclaim),
                len(placed),
            )
        return reclaim

    def _recover_planned(self, job: Job, record: dict) -> None:
        """Killed after step 4: the disk tells whether the link (step 5) happened."""
        planned = Path(str(record.get("planned", "")))
        inode = record.get("inode")
        job.planned, job.inode = planned, inode
        try:
            job.placed_at = datetime.strptime(str(record.get("placed_at")), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            job.placed_at = datetime.now(UTC).replace(tzinfo=None)
        temp_stat, planned_stat = _stat(job.temp), _stat(planned)
        if temp_stat and planned_stat and os.path.samestat(temp_stat, planned_stat):
            job.temp.unlink()  # killed between link and unlink
            sync_directory(planned.parent)
            job.state = PLACED
        elif temp_stat:
            job.state = VERIFIED  # not linked yet: placed once the lease is confirmed
        elif planned_stat and planned_stat.st_ino == inode:
            job.state = PLACED
        else:
            log.warning(
                "order=%s file=%s action=recover the placed copy is gone; fetching it again",
                job.project_no,
                planned.name,
            )
            job.state = WAITING
            job.planned = job.inode = job.placed_at = None
            self._unplan(job)

    # --- leases (from the poller) ---------------------------------------------------------------

    def on_leases(self, answer: dict) -> None:
        starting: list[Job] = []
        for entry in answer.get("files") or []:
            file_id = entry.get("id") if isinstance(entry, dict) else None
            try:
                file = RemoteFile.from_json(entry)
            except UnsafeAnswer as exc:
                self._unsafe(file_id, None, str(exc))
                continue
            job = self.jobs.get(file.id)
            if job is None:
                job = self.jobs[file.id] = Job(file.id, WAITING)
            try:
                self._prepare(job, file)
            except UnsafeAnswer as exc:
                self._unsafe(file.id, file, str(exc))
                continue
            job.leased = True
            if job.state == WAITING:
                starting.append(job)
            else:
                self.slots.give_back()
        if starting:
            self._start(starting)  # in the slots the poller took for them
        for refusal in answer.get("refused") or []:
            if isinstance(refusal, dict) and refusal.get("file_id") in self.jobs:
                self._refused(self.jobs[refusal["file_id"]], refusal)

    def _unsafe(self, file_id: object, file: RemoteFile | None, why: str) -> None:
        """A file the agent will not write: reported, kept leased so it is not offered again."""
        self.slots.give_back()
        if not isinstance(file_id, int):
            log.error("action=deliver the portal's answer holds an unusable entry: %s", why)
            return
        self.jobs[file_id] = Job(file_id, UNSAFE, file=file)
        self.problems.report(
            ACTION_DELIVER,
            f"portal file {file_id}",
            f"not delivered, the portal's answer is unsafe: {why}",
            file_id=file_id,
            project_no=file.project_no if file else "",
        )

    def _refused(self, job: Job, refusal: dict) -> None:
        """The portal answered a reclaim: delivered by us already, or not ours any more."""
        mine = refusal.get("mine") is True
        path = refusal.get("path")
        if (
            refusal.get("reason") == "delivered"
            and mine
            and job.planned
            and path == str(job.planned)
        ):
            if job.placed_at is None:
                job.placed_at = datetime.now(UTC).replace(tzinfo=None)
            self._confirmed(job)  # confirmed before the kill, only the record was older
            return
        self._let_go(job, f"the portal gave it elsewhere ({refusal.get('reason')})")

    def _let_go(self, job: Job, why: str) -> None:
        """Another agent has (or delivered) the file: remove what is provably ours of it."""
        if job.temp is not None:
            job.temp.unlink(missing_ok=True)
        placed = _stat(job.planned)
        if placed is not None and job.inode is not None and placed.st_ino == job.inode:
            job.planned.unlink()
            sync_directory(job.planned.parent)
            why += f"; removed this agent's copy {job.planned}"
        log.warning(
            "order=%s file=%s action=let_go %s",
            job.project_no,
            job.file.stored_name if job.file else job.file_id,
            why,
        )
        self._forget(job)

    def _forget(self, job: Job) -> None:
        self.ctx.state.remove(DELIVERIES, [str(job.file_id)])
        self._unplan(job)
        self.slots.drop([job.file_id])
        self.jobs.pop(job.file_id, None)

    def _unplan(self, job: Job) -> None:
        """The file is out of its plan record; the record goes with its last file."""
        files = self.plans.get(job.plan)
        if files is not None:
            files.discard(job.file_id)
            if not files:
                del self.plans[job.plan]
                self.ctx.state.remove(DELIVERIES, [job.plan])
        job.plan = ""

    # --- steps 1–3: on a download thread ---------------------------------------------------

    def _start(self, jobs: list[Job]) -> None:
        """Hand the jobs to the download threads (in slots taken for them): small files
        several to a request, the others alone, and any begun before alone (resumed)."""
        sizes = []
        for job in jobs:
            job.state = WORKING
            begun = _stat(job.temp) is not None
            sizes.append((job, BUNDLE_FILE_BYTES + 1 if begun else job.file.size))
        together, alone = bundles(sizes)
        for group in together:
            self.pool.submit(self._work, group)
        for job in alone:
            self.pool.submit(self._work, [job])

    def _work(self, jobs: list[Job]) -> None:
        """On a download thread: steps 1–3; each outcome goes to the main loop.

        The record of step 1 need not be durable: after a crash the portal hands the file
        back to this agent and the temporary copy is found by its name; the record only
        lets a restarted agent remove that copy should another agent have the file by
        then.
        """
        outcomes: dict[int, object] = {}
        try:
            for job in jobs:
                self.ctx.state.write(DELIVERIES, str(job.file_id), self._record(job))
            if len(jobs) > 1:
                outcomes = fetch_many(self.ctx.client, [(job.file, job.temp) for job in jobs])
        except OSError as exc:
            failed = DownloadFailed(self.ctx.state.directory, f"state folder: {reason(exc)}")
            outcomes = {job.file_id: failed for job in jobs}
        for job in jobs:
            if job.file_id not in outcomes:
                outcomes[job.file_id] = self._fetch_alone(job)
            self.ctx.events.put((EVENT_WORKED, (job, outcomes[job.file_id])))

    def _fetch_alone(self, job: Job) -> object:
        try:
            fetch(self.ctx.client, job.file, job.temp, pause=self.ctx.pause)
            return None
        except (Interrupted, Gone, DownloadFailed) as exc:
            return exc
        except Exception as exc:  # a bug with one file must not end the thread
            log.exception("order=%s file=%s action=deliver failed", job.project_no, job.file_id)
            return DownloadFailed(job.temp, f"unexpected error: {exc}")

    def on_worked(self, job: Job, outcome: object) -> None:
        self.slots.give_back()
        if job.file_id not in self.jobs:
            return
        if outcome is None:
            job.state = VERIFIED  # placed (steps 4 and 5) by the next ``tick``
            job.retry_at = 0.0
            return
        job.state = WAITING
        if isinstance(outcome, Gone):
            self._let_go(job, f"the portal no longer hands it out ({outcome})")
        elif isinstance(outcome, DownloadFailed):
            self._failed(job, outcome.path, outcome.reason)

    # --- steps 4 and 5: on the main loop, for all files verified meanwhile ------------------

    def _place(self, jobs: list[Job]) -> None:
        """Plan the names (one durable plan record for all), link each copy into place."""
        pause_at(STEP_VERIFIED)
        # The time of the plan is the files' delivery time (linking follows at once): kept
        # in the record, an XML written again after a crash is the same, byte for byte.
        now = datetime.now(UTC).replace(tzinfo=None)
        planned = []
        for job in jobs:
            temp = _stat(job.temp)
            if temp is None:
                job.state = WAITING  # the copy vanished: fetch it again
                continue
            job.inode, job.placed_at = temp.st_ino, now
            job.planned = job.target_dir / self.names.choose(job.target_dir, job.file.stored_name)
            planned.append(job)
        if not planned or not self._write_plan(planned):
            return
        pause_at(STEP_PLANNED)
        linked = []
        for job in planned:
            try:
                self._link(job)
                job.state = PLACED  # confirmed once its folder is synced
                linked.append(job)
            except HotfolderUnwritable as exc:
                self._failed(job, exc.path, exc.reason)
        self._sync_and_confirm(linked)

    def _write_plan(self, jobs: list[Job]) -> bool:
        """Step 4's record for ``jobs``, on disk before any of them is linked."""
        plan = f"{PLAN_PREFIX}{min(job.file_id for job in jobs)}-{time.monotonic_ns()}"
        record = {
            "written": f"{time.time():.6f}",
            "files": {str(job.file_id): self._planned(job) for job in jobs},
        }
        try:
            self.ctx.state.write(DELIVERIES, plan, record, durable=True)
        except OSError as exc:
            for job in jobs:
                self._failed(job, self.ctx.state.directory, f"state folder: {reason(exc)}")
            return False
        for job in jobs:
            self._unplan(job)
            job.plan = plan
        self.plans[plan] = {job.file_id for job in jobs}
        return True

    def _link(self, job: Job) -> None:
        """Step 5: the durable copy gets its planned name; a name taken meanwhile, a new plan."""
        while True:
            try:
                place_without_overwrite(
                    job.temp, job.planned, after_link=lambda: pause_at(STEP_LINKED)
                )
                return
            except FileExistsError:
                # Taken meanwhile (staff, another agent): a new plan, recorded first.
                self.names.forget(job.target_dir)
                job.planned = job.target_dir / self.names.choose(
                    job.target_dir, job.file.stored_name
                )
                if not self._write_plan([job]):
                    raise HotfolderUnwritable(
                        job.target_dir, "the plan cannot be recorded"
                    ) from None
            except OSError as exc:
                raise HotfolderUnwritable(job.target_dir, reason(exc)) from None

    # --- the main loop's turn -----------------------------------------------------------------

    def tick(self) -> int:
        """Start downloads that are due, place what is verified, confirm what is placed;
        returns how many files it moved on."""
        now = time.monotonic()
        starting = []
        for job in self.jobs.values():
            if job.state == WAITING and job.leased and job.retry_at <= now:
                if self.slots.free() <= len(starting):
                    break
                starting.append(job)
        if starting:
            self.slots.take(len(starting))
            self._start(starting)
        worked = len(starting)
        ready = [
            job
            for job in self.jobs.values()
            if job.state == VERIFIED and job.leased and job.retry_at <= now
        ]
        if ready:
            self._place(ready)
        due = [job for job in self.jobs.values() if job.state == PLACED and job.retry_at <= now]
        if due:
            self._sync_and_confirm(due)
        return worked + len(ready) + len(due)

    def tick_due(self) -> float | None:
        """When (monotonic) ``tick`` has something to do next, or None."""
        moments = [
            job.retry_at
            for job in self.jobs.values()
            if (job.state in (WAITING, VERIFIED) and job.leased) or job.state == PLACED
        ]
        return min(moments, default=None)

    def _failed(self, job: Job, path: Path, why: str) -> None:
        """Report a problem with a file and try its step again later."""
        job.failures += 1
        delay = min(RETRY_FIRST_SECONDS * 2 ** (job.failures - 1), RETRY_MAX_SECONDS)
        job.retry_at = time.monotonic() + delay
        self.problems.report(
            ACTION_DELIVER,
            path,
            f"{why} (tried again in {delay:.0f} s)",
            file_id=job.file_id,
            project_no=job.project_no,
        )

    def _sync_and_confirm(self, jobs: list[Job]) -> None:
        """fsync each folder once (the new names are durable), then confirm (step 6)."""
        placed = []
        for directory in {job.target_dir for job in jobs}:
            in_folder = [job for job in jobs if job.target_dir == directory]
            try:
                sync_directory(directory)
                placed += in_folder
            except OSError as exc:
                for job in in_folder:
                    self._failed(job, directory, reason(exc))
        if placed:
            pause_at(STEP_PLACED)
            self._confirm(placed)
            self.problems.forget([job.temp for job in placed])
            self.problems.resolved([job.target_dir for job in placed])

    # --- step 6: confirm ----------------------------------------------------------------------

    def _confirm(self, jobs: list[Job]) -> None:
        for job in jobs:
            job.state = CONFIRMING
        self.reporter.confirm(
            [
                {
                    "file_id": job.file_id,
                    "path": str(job.planned),
                    "placed_at": _timestamp(job.placed_at),
                    "sha256": job.file.sha256,
                }
                for job in jobs
            ]
        )

    def on_confirmed(self, file_ids: list[int], answer: dict) -> None:
        outcomes = {
            item.get("file_id"): item
            for item in answer.get("deliveries") or []
            if isinstance(item, dict)
        }
        for file_id in file_ids:
            job = self.jobs.get(file_id)
            if job is None or job.state != CONFIRMING:
                continue
            outcome = outcomes.get(file_id)
            if outcome is None:
                # Refused as a whole (a 4xx): try again later rather than lose the file.
                job.state = PLACED
                self._failed(job, job.planned, f"the portal refused the confirmation: {answer}")
                continue
            if outcome.get("outcome") == "confirmed":
                self._confirmed(job)
            else:
                self._let_go(job, outcome.get("message") or str(outcome.get("outcome")))

    def _confirmed(self, job: Job) -> None:
        job.state = CONFIRMED
        self.slots.drop([job.file_id])
        log.info(
            "order=%s file=%s action=delivered path=%s",
            job.project_no,
            job.file.stored_name,
            job.planned,
        )
        self.notifications.add(job)

    # --- step 7 is the notifications' ----------------------------------------------------------

    def notified(self, file_ids: list[int]) -> None:
        """Their XML is written: the files are done (their records went with it)."""
        for file_id in file_ids:
            job = self.jobs.pop(file_id, None)
            if job is not None:
                self._unplan(job)
