"""The JobService protocol: the five job calls every backend answers.

As small as S3 Control's job API: create, list, describe, update priority,
update status. Errors are the typed errors of ``runner.jobs.errors``, so a
caller knows whether a retry can help without knowing the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from runner.jobs.models import JobDetail, JobPage, JobRequest, JobSummary
from runner.jobs.status import JobStatus
from runner.spec.models import CsvManifest
from runner.stores.base import ObjectStore


@runtime_checkable
class KeepsTaskResults(Protocol):
    """A service that keeps every task's result (``local``): errors are counted, not read.

    Cloud services only write them to a completion report, which the reconciler reads.
    """

    def written_report(self, job_id: str) -> tuple[str, str] | None:
        """(bucket, manifest.json key) of the completion report, once written."""
        ...

    def top_error(self, job_id: str) -> tuple[str, int] | None:
        """The commonest error code of the job's failed tasks, and how many had it."""
        ...


@runtime_checkable
class KeepsEvents(Protocol):
    """A service that keeps every status change of a job with its time (``local``).

    Cloud services show only the current status; their timeline is the ledger's.
    """

    def job_events(self, job_id: str) -> list[tuple[datetime, str | None, str, str | None]]:
        """(time, old status, new status, reason) of each change, oldest first."""
        ...


@runtime_checkable
class DeletesJobs(Protocol):
    """A service whose finished jobs are deleted by the caller (``gcs``'s DeleteJob).

    S3 Batch Operations and COS drop a job from ListJobs 90 days after it ends and have no
    delete. ``--prune`` deletes the finished job of a removed spec here; the ledger keeps it.
    """

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job."""
        ...


@runtime_checkable
class RunsItsEngine(Protocol):
    """A service whose jobs move only while something here runs its engine (``local``).

    Cloud services run their own; the reconciler starts this one for a block with
    ``running()``, which yields None when it runs here or who serves it elsewhere.
    """

    def running(self) -> AbstractContextManager[object | None]:
        """Run the engine for the block (see LocalBackend.running)."""
        ...

    def worker_running(self) -> bool:
        """Whether some process runs the engine now."""
        ...


class JobService(Protocol):
    """A batch-operations service."""

    def create_job(self, request: JobRequest) -> str:
        """Create a job; return its ID. Idempotent on ``request.client_request_token``."""
        ...

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """One page of jobs."""
        ...

    def describe_job(self, job_id: str) -> JobDetail:
        """One job in full."""
        ...

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """Change a job's priority."""
        ...

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """Confirm (Ready) or cancel (Cancelled) a job."""
        ...

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Upload a manifest kept in the repository; return it as a CSV manifest pinned by ETag."""
        ...

    def report_store(self) -> ObjectStore:
        """The object store the service writes completion reports to (read by `report`)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def report_location(report: dict[str, Any] | None, job_id: str) -> tuple[str, str] | None:
    """(bucket, key of manifest.json) of a job's completion report, from DescribeJob's Report.

    Reads the three shapes: ours (``bucket``), AWS's (``Bucket`` an ARN) and COS's
    (``Bucket`` a qcs resource). The key follows S3's layout; COS does not document its
    report layout (reference §5.3), and the embedded engine writes S3's.
    """
    if not report or report.get("Enabled") in (False, "false"):
        return None
    bucket = str(report.get("bucket") or report.get("Bucket") or "")
    if bucket.startswith("arn:"):
        bucket = bucket.rsplit(":", 1)[-1]
    elif bucket.startswith("qcs:"):
        bucket = bucket.split(":", 5)[-1]
    prefix = str(report.get("prefix") or report.get("Prefix") or "").strip("/")
    base = f"{prefix}/job-{job_id}" if prefix else f"job-{job_id}"
    return bucket.split("/", 1)[0], f"{base}/manifest.json"


def filter_jobs(
    jobs: list[JobSummary],
    description: str | None,
    job_id: str | None,
    statuses: Sequence[JobStatus | str] = (),
) -> list[JobSummary]:
    """The console's filters, for services whose ListJobs has none: text in the
    description, one job ID, and statuses."""
    if statuses:
        wanted = {JobStatus(s) for s in statuses}
        jobs = [j for j in jobs if j.status in wanted]
    if description:
        jobs = [j for j in jobs if description in j.description]
    if job_id:
        jobs = [j for j in jobs if j.job_id == job_id]
    return jobs
