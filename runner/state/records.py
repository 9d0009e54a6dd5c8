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
