"""What the ledger remembers of one job batchctl made."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One job batchctl made, as the ledger remembers it."""

    target: str
    name: str
    generation: int
    job_id: str
    spec_hash: str
    status: JobStatus
    counts: Counts = field(default_factory=Counts)
    created: float = 0.0
    terminated: float | None = None
    immutable: str = ""
    staged: bool = False
    report: str | None = None
    slot: float | None = None  # the scheduled run this generation is (recurring jobs)
    failure: Failure | None = None  # read once the job is final with failures
    # Tasks per second of active time, kept once the job is Complete: `plan` estimates the
    # duration of the next job of the same operation on the same target from it.
    rate: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(target, name)."""
        return (self.target, self.name)


class LedgerView(NamedTuple):
    """What a plan needs of the ledger: each job's newest generation, and every job ID.

    Older generations matter to a plan only as IDs (a job the ledger knows is not adopted
    again); a ledger of ten generations per spec need not build them all on each pass.
    """

    latest: list[LedgerRecord]  # per (target, name), by (target, name)
    job_ids: frozenset[str]  # of every generation


def view_of(records: Iterable[LedgerRecord]) -> LedgerView:
    """The view of a ledger given as all its records (any order)."""
    latest: dict[tuple[str, str], LedgerRecord] = {}
    ids = set()
    for record in records:
        ids.add(record.job_id)
        held = latest.get(record.key)
        if held is None or record.generation > held.generation:
            latest[record.key] = record
    return LedgerView([latest[k] for k in sorted(latest)], frozenset(ids))


def report_location(bucket: str, prefix: str | None, job_id: str) -> str:
    """Where a job's completion report lands: ``s3://bucket/prefix/job-<id>/manifest.json``."""
    base = (prefix or "").strip("/")
    key = f"{base}/job-{job_id}/manifest.json" if base else f"job-{job_id}/manifest.json"
    return json.dumps({"bucket": bucket, "key": key})


# A person's confirmation of a job not created yet, on a service that has no confirmation
# of its own (GCS): (target, name, generation, spec hash). Kept as a history entry, so the
# ledger's format does not change and the approval is also the audit record of who gave it.
Approval = tuple[str, str, int, str]
APPROVE = "approve"


def approval_detail(generation: int, spec_hash: str, by: str) -> str:
    """The history detail of an approval."""
    return json.dumps({"generation": generation, "specHash": spec_hash, "by": by})


def approvals_in(history: Iterable[dict[str, object]]) -> frozenset[Approval]:
    """The approvals among history entries (others, and unreadable details, are skipped)."""
    found = set()
    for entry in history:
        if entry.get("action") != APPROVE:
            continue
        try:
            detail = json.loads(str(entry.get("detail") or ""))
            approval = (
                str(entry["target"]),
                str(entry["name"]),
                int(detail["generation"]),
                str(detail["specHash"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        found.add(approval)
    return frozenset(found)
