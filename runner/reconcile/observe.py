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
from runner.spec.gcpause import collector_paused
from runner.spec.identity import parse_marker

PAGE = 1000


def observe(services: Mapping[str, JobService]) -> list[ObservedJob]:
    """Every managed job of every target in ``services``."""
    with collector_paused():  # 100,000 jobs: see there
        return _observe(services)


def _observe(services: Mapping[str, JobService]) -> list[ObservedJob]:
    found: list[ObservedJob] = []
    for target, service in sorted(services.items()):
        token: str | None = None
        while True:
            page = service.list_jobs(next_token=token, max_results=PAGE)
            for job in page.jobs:
                marker = parse_marker(job.description)
                if marker is None:
                    continue
                progress = job.progress
                terminated = job.terminated_at
                found.append(
                    ObservedJob(
                        target,
                        job.job_id,
                        marker.name,
                        marker.spec_hash,
                        job.status,
                        job.priority,
                        Counts(progress.total, progress.succeeded, progress.failed),
                        job.created_at.timestamp(),
                        terminated.timestamp() if terminated else None,
                    )
                )
            token = page.next_token
            if not token:
                break
    return found
