"""Building planner inputs from short YAML snippets."""

from __future__ import annotations

import time

from runner.jobs.progress import Counts
from runner.jobs.status import JobStatus
from runner.reconcile.controller import desired_jobs
from runner.reconcile.model import DesiredJob, ObservedJob
from runner.spec.checks import check_all
from runner.spec.loader import SourceFile, parse_sources
from runner.state.records import LedgerRecord

NOW = time.time()


def job_yaml(name: str, extra: str = "", *, op: str = "{tag: {tags: {a: b}}}") -> str:
    """A BatchJob document; ``extra`` is added under spec (indented two spaces)."""
    lines = [
        "apiVersion: batchctl/v1",
        "kind: BatchJob",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  manifest: {generate: {bucket: logs}}",
        f"  operation: {op}",
    ]
    lines += [f"  {line}" for line in extra.strip().splitlines() if line.strip()]
    return "\n".join(lines)


def desired(*documents: str) -> list[DesiredJob]:
    """DesiredJobs from YAML documents (validated)."""
    specs = parse_sources([SourceFile("specs.yaml", "\n---\n".join(documents).encode())])
    errors = specs.errors + check_all(specs)
    assert errors == [], [str(e) for e in errors]
    return desired_jobs(specs)


def by_name(items: list[DesiredJob], name: str) -> DesiredJob:
    """The desired job called ``name``."""
    return next(d for d in items if d.key[1] == name)


def observed(
    item: DesiredJob,
    job_id: str,
    status: JobStatus,
    *,
    total: int = 0,
    succeeded: int = 0,
    failed: int = 0,
    priority: int | None = None,
    spec_hash: str | None = None,
    created: float = NOW,
) -> ObservedJob:
    """What ListJobs would show for a job of ``item``."""
    return ObservedJob(
        target=item.key[0],
        job_id=job_id,
        name=item.key[1],
        spec_hash=spec_hash or item.spec_hash,
        status=status,
        priority=item.job.spec.priority if priority is None else priority,
        counts=Counts(total, succeeded, failed),
        created=created,
    )


def recorded(
    item: DesiredJob,
    job_id: str,
    status: JobStatus = JobStatus.NEW,
    *,
    generation: int = 1,
    spec_hash: str | None = None,
    immutable: str | None = None,
    total: int = 0,
    succeeded: int = 0,
    failed: int = 0,
) -> LedgerRecord:
    """The ledger's record of a job of ``item``."""
    return LedgerRecord(
        target=item.key[0],
        name=item.key[1],
        generation=generation,
        job_id=job_id,
        spec_hash=spec_hash or item.spec_hash,
        status=status,
        counts=Counts(total, succeeded, failed),
        created=NOW,
        immutable=item.immutable if immutable is None else immutable,
    )
