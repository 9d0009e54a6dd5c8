"""Observe: one paged ListJobs sweep per target maps every managed job to its spec.

A managed job is recognised by the marker at the end of its Description
(``[batchctl:<name>:<hash>]``); other jobs on the same account are left alone.
ListJobs carries the task counters, so no DescribeJob is needed to plan.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.backends.base import JobService
from runner.jobs.progress import Counts
from runner.reconcile.model import ObservedJob
from runner.spec.identity import parse_marker

PAGE = 1000


def observe(services: Mapping[str, JobService]) -> list[ObservedJob]:
    """Every managed job of every target in ``services``."""
    found: list[ObservedJob] = []
    for target, service in sorted(services.items()):
        token: str | None = None
        while True:
            page = service.list_jobs(next_token=token, max_results=PAGE)
            for job in page.jobs:
                marker = parse_marker(job.description)
                if marker is None:
                    continue
                found.append(
                    ObservedJob(
                        target=target,
                        job_id=job.job_id,
                        name=marker.name,
                        spec_hash=marker.spec_hash,
                        status=job.status,
                        priority=job.priority,
                        counts=Counts(
                            job.progress.total, job.progress.succeeded, job.progress.failed
                        ),
                        created=job.created_at.timestamp(),
                        terminated=job.terminated_at.timestamp() if job.terminated_at else None,
                    )
                )
            token = page.next_token
            if not token:
                break
    return found
