"""What the ledger remembers of one job batchctl made."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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


def report_location(bucket: str, prefix: str | None, job_id: str) -> str:
    """Where a job's completion report lands: ``s3://bucket/prefix/job-<id>/manifest.json``."""
    base = (prefix or "").strip("/")
    key = f"{base}/job-{job_id}/manifest.json" if base else f"job-{job_id}/manifest.json"
    return json.dumps({"bucket": bucket, "key": key})
