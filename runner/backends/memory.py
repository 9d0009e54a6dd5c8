"""An in-memory JobService: the test double for planner tests and benchmarks.

It keeps the contract of every backend — idempotent create, newest-first pages
of at most 1,000, the 90-day window, priority until final, Ready only from
Suspended, Cancelled only while cancellable — and runs nothing: a test moves
jobs along with ``set_status``. ``calls`` counts every API call.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.models import JobDetail, JobPage, JobRequest, JobSummary, Progress
from runner.jobs.status import CANCELLABLE, JobStatus
from runner.spec.models import CsvManifest
from runner.stores.base import ObjectStore

RETENTION_SECONDS = 90 * 86400


@dataclass
class _Job:
    id: str
    request: JobRequest
    fingerprint: str
    status: JobStatus
    priority: int
    created: float
    terminated: float | None = None
    progress: Progress = field(default_factory=Progress)
    reason: str | None = None
    # Kept as ListJobs shows them: worked out again for each summary they were half of
    # listing 100,000 jobs (bench/reconcile.py).
    operation: str = ""
    created_at: datetime | None = None


class MemoryBackend:
    """JobService in a dict."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.jobs: dict[str, _Job] = {}
        self.order: list[str] = []
        self.tokens: dict[str, str] = {}
        self.manifests: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()

    # -- the API -------------------------------------------------------------

    def create_job(self, request: JobRequest) -> str:
        """Create a job (New)."""
        self.calls["CreateJob"] += 1
        fingerprint = request.fingerprint()
        known = self.tokens.get(request.client_request_token)
        if known is not None:
            if self.jobs[known].fingerprint != fingerprint:
                raise IdempotencyError(
                    f"ClientRequestToken {request.client_request_token!r} was already used"
                )
            return known
        job_id = str(uuid.uuid4())
        created = self.clock()
        self.jobs[job_id] = _Job(
            job_id,
            request,
            fingerprint,
            JobStatus.NEW,
            request.priority,
            created,
            operation=request.operation.choice,
            created_at=datetime.fromtimestamp(created, UTC),
        )
        self.order.append(job_id)
        self.tokens[request.client_request_token] = job_id
        return job_id

    def _visible(self, job: _Job) -> bool:
        return job.terminated is None or job.terminated >= self.clock() - RETENTION_SECONDS

    def _get(self, job_id: str) -> _Job:
        job = self.jobs.get(job_id)
        if job is None or not self._visible(job):
            raise NotFound(f"No such job: {job_id}")
        return job

    def _summary(self, job: _Job) -> JobSummary:
        return JobSummary(
            job_id=job.id,
            status=job.status,
            priority=job.priority,
            description=job.request.description,
            operation=job.operation,
            progress=job.progress,
            created_at=job.created_at,
            terminated_at=(datetime.fromtimestamp(job.terminated, UTC) if job.terminated else None),
        )

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """A page of jobs, newest first."""
        self.calls["ListJobs"] += 1
        if not 1 <= max_results <= 1000:
            raise BadRequest("maxResults must be between 1 and 1000")
        start = len(self.order)
        if next_token:
            try:
                start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
            except ValueError:
                raise BadRequest(f"invalid nextToken {next_token!r}") from None
        wanted = {JobStatus(s) for s in statuses}
        found: list[JobSummary] = []
        index = start
        while index > 0 and len(found) <= max_results:
            index -= 1
            job = self.jobs[self.order[index]]
            if not self._visible(job):
                continue
            if wanted and job.status not in wanted:
                continue
            if description and description not in job.request.description:
                continue
            if job_id and job.id != job_id:
                continue
            found.append(self._summary(job))
            if len(found) == max_results + 1:
                index += 1
                break
        more = len(found) > max_results
        token = None
        if more:
            found = found[:max_results]
            token = base64.urlsafe_b64encode(str(index).encode()).decode()
        return JobPage(jobs=found, next_token=token)

    def describe_job(self, job_id: str) -> JobDetail:
        """One job in full."""
        self.calls["DescribeJob"] += 1
        job = self._get(job_id)
        request = job.request.model_dump(mode="json", by_alias=True, exclude_none=True)
        return JobDetail(
            **self._summary(job).model_dump(),
            confirmation_required=job.request.confirmation_required,
            operation_params=request["operation"],
            manifest=request["manifest"],
            report=request.get("report"),
            status_update_reason=job.reason,
        )

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """Change the priority until the job is final."""
        self.calls["UpdateJobPriority"] += 1
        job = self._get(job_id)
        if job.status.final:
            raise JobStatusError(f"job {job_id} is {job.status.value}")
        job.priority = priority
        return priority

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """Ready from Suspended; Cancelled from a cancellable status."""
        self.calls["UpdateJobStatus"] += 1
        job = self._get(job_id)
        wanted = JobStatus(requested)
        if wanted is JobStatus.READY:
            if job.status is not JobStatus.SUSPENDED:
                raise JobStatusError(f"job {job_id} is {job.status.value}: requested Ready")
            job.status = JobStatus.READY
        elif wanted is JobStatus.CANCELLED:
            if job.status not in CANCELLABLE:
                raise JobStatusError(f"job {job_id} is {job.status.value}: requested Cancelled")
            job.status = JobStatus.CANCELLING
        else:
            raise BadRequest(f"requestedJobStatus must be Ready or Cancelled, not {wanted.value}")
        job.reason = reason
        return job.status

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Keep the bytes; return a CSV manifest naming them."""
        self.calls["PutObject"] += 1
        key = f"{name}/{len(self.manifests)}.csv"
        self.manifests[key] = data
        return CsvManifest(bucket="batchctl-manifests", key=key, etag="0" * 32)

    def report_store(self) -> ObjectStore:
        """None: the memory backend keeps jobs, not objects."""
        raise BadRequest("the memory backend holds no objects")

    def close(self) -> None:
        """Nothing to release."""

    # -- test controls ---------------------------------------------------------

    def set_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        total: int = 0,
        succeeded: int = 0,
        failed: int = 0,
    ) -> None:
        """Move a job as a service would (a test's hand on the service)."""
        job = self.jobs[job_id]
        job.status = status
        job.progress = Progress(total=total, succeeded=succeeded, failed=failed)
        if status.final and job.terminated is None:
            job.terminated = self.clock()
