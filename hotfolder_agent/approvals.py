"""Approval files (Druckfreigabe): the customer's decision on a proof, placed next to the jobs.

The reporter thread asks the portal for decided proofs whose approval file no agent has
placed yet (``GET /api/v1/agent/approvals``, every heartbeat); the main loop writes each
as ``<order>_proof-<version>.xml`` (``<proofApproval>`` of job-notification.xsd) into
``notification_dir`` — hidden name, fsync, rename, like the job notifications — and the
reporter tells the portal (``POST /api/v1/agent/approvals/placed``), which hands it out
no more. Killed in between, the portal hands it out again and the same bytes are written
under the same name (the document's time is the decision's), so the internal workflow
sees each decision once, whole.

The answer comes from another host: a name that is not ``<order>_proof-<n>.xml`` or a
record that makes no document is reported as a problem and not written.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from hotfolder_agent.context import Context
from hotfolder_agent.fsutil import reason, write_files
from hotfolder_agent.reporter import ACTION_NOTIFY, Reporter
from shared.orders.workflow_xml import approval_document

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}_proof-[1-9][0-9]{0,8}\.xml")


class _Unusable(ValueError):
    """An approval the agent does not write; ``subject`` names it in the problem report."""

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(message)
        self.subject = subject


def _document(entry: object) -> tuple[int, str, bytes]:
    """(proof id, file name, XML) of one answer entry; _Unusable says what is wrong."""
    if not isinstance(entry, dict):
        raise _Unusable("approval", "an approval is not an object")
    proof_id, name, record = entry.get("id"), entry.get("file_name"), entry.get("record")
    if isinstance(proof_id, bool) or not isinstance(proof_id, int) or proof_id < 1:
        raise _Unusable("approval", "the proof id is not a positive whole number")
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        message = f"proof {proof_id}: unsafe approval file name {name!r}"
        raise _Unusable(f"proof {proof_id}", message)
    try:
        decided = datetime.strptime(record["proof"]["decision"]["decided_at"], "%Y-%m-%dT%H:%M:%SZ")
        return proof_id, name, approval_document(record, created=decided)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        message = f"proof {proof_id}: the approval cannot be written: {exc!r}"
        raise _Unusable(name, message) from None


class Approvals:
    """Writes the approval files the portal hands out; remembers those it told the portal
    of until the portal has heard (so they are not written twice meanwhile)."""

    def __init__(self, ctx: Context, reporter: Reporter) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self._told: set[int] = set()

    def place(self, entries: list) -> None:
        """Write the approvals of one portal answer and tell the portal which are placed."""
        directory = self.ctx.settings.notification_dir
        documents: dict[str, bytes] = {}
        ids = []
        for entry in entries:
            try:
                proof_id, name, content = _document(entry)
            except _Unusable as exc:
                self.reporter.problems.report(ACTION_NOTIFY, directory / exc.subject, str(exc))
                continue
            if proof_id not in self._told:
                documents[name] = content
                ids.append(proof_id)
        if not documents:
            return
        try:
            write_files(directory, documents)
        except OSError as exc:
            self.reporter.problems.report(ACTION_NOTIFY, directory, reason(exc))
            return
        for name in documents:
            log.info("order=%s file=%s action=approval_placed", name.split("_proof-")[0], name)
        self._told.update(ids)
        self.reporter.approvals_placed(ids)

    def on_reported(self, proof_ids: list[int]) -> None:
        """The portal heard of these: it will not hand them out again."""
        self._told.difference_update(proof_ids)
