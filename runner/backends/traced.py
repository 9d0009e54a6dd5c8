"""A JobService wrapper that counts the API calls made, and logs them with ``-v``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from runner.backends.base import JobService
from runner.jobs.models import JobDetail, JobPage, JobRequest
from runner.jobs.status import JobStatus
from runner.spec.models import CsvManifest
from runner.stores.base import ObjectStore


class TracedService:
    """Passes every call to ``inner``; counts it by API name; tells ``log``."""

    def __init__(self, inner: JobService, target: str, log: Callable[[str], None] | None) -> None:
        self.inner = inner
        self.target = target
        self.log = log
        self.calls: Counter[str] = Counter()

    def _note(self, name: str, detail: str = "") -> None:
        self.calls[name] += 1
        if self.log is not None:
            self.log(f"{self.target}: {name}{' ' + detail if detail else ''}")

    def create_job(self, request: JobRequest) -> str:
        """CreateJob."""
        self._note("CreateJob", f"token={request.client_request_token}")
        return self.inner.create_job(request)

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """ListJobs."""
        self._note("ListJobs", "next page" if next_token else "")
        return self.inner.list_jobs(
            statuses=statuses,
            next_token=next_token,
            max_results=max_results,
            description=description,
            job_id=job_id,
        )

    def describe_job(self, job_id: str) -> JobDetail:
        """DescribeJob."""
        self._note("DescribeJob", job_id)
        return self.inner.describe_job(job_id)

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """UpdateJobPriority."""
        self._note("UpdateJobPriority", f"{job_id} {priority}")
        return self.inner.update_job_priority(job_id, priority)

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """UpdateJobStatus."""
        self._note("UpdateJobStatus", f"{job_id} {JobStatus(requested).value}")
        return self.inner.update_job_status(job_id, requested, reason)

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Upload a repository manifest."""
        self._note("PutObject", f"manifest of {name}")
        return self.inner.stage_manifest(name, data)

    def report_store(self) -> ObjectStore:
        """The inner service's report store."""
        return self.inner.report_store()

    def close(self) -> None:
        """Close the inner service."""
        self.inner.close()
