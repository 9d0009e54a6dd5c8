"""Why a job failed: the service's failure reasons, or its report's commonest error.

ListJobs carries statuses and counters but no reasons, so a Failed job, or a
Complete one with failed tasks, costs one DescribeJob (and, for failed tasks, one
read of its completion report, or of the embedded engine's tasks) — once: the
answer is kept in the ledger, since a final job does not change.
"""

from __future__ import annotations

from runner.backends.base import JobService, KeepsTaskResults, report_location
from runner.backends.reports import ReportUnreadable, read_report
from runner.backends.traced import TracedService
from runner.jobs.errors import JobServiceError
from runner.jobs.models import JobDetail
from runner.jobs.progress import Failure
from runner.jobs.status import JobStatus
from runner.stores import StoreUnavailable


def report_of(service: JobService, detail: JobDetail) -> tuple[str, str] | None:
    """(bucket, manifest.json key) of a final job's completion report, if it wrote one."""
    inner = service.inner if isinstance(service, TracedService) else service
    if isinstance(inner, KeepsTaskResults):
        return inner.written_report(detail.job_id)
    return report_location(detail.report, detail.job_id) if detail.status.final else None


def read_failure(service: JobService, job_id: str) -> Failure:
    """What a final job failed with; what could not be read is said in ``note``."""
    try:
        detail = service.describe_job(job_id)
    except JobServiceError as exc:
        return Failure(note=f"cannot describe job {job_id}: {exc.code}")
    inner = service.inner if isinstance(service, TracedService) else service
    reasons = tuple((r.code, r.reason) for r in detail.failure_reasons)
    if detail.status is JobStatus.FAILED:
        # No reasons given: the status reason, if any, says why (never "Failed: Failed").
        return Failure(reasons=reasons, note=None if reasons else detail.status_update_reason)
    if not detail.progress.failed:
        return Failure(reasons=reasons)
    if isinstance(inner, KeepsTaskResults):  # no report to read: the errors are counted
        return Failure(reasons=reasons, top_error=inner.top_error(job_id))
    found = report_of(service, detail)
    if found is None:
        return Failure(reasons=reasons, note="no completion report to read the errors from")
    try:
        report = read_report(service.report_store(), *found)
    except (ReportUnreadable, StoreUnavailable) as exc:
        return Failure(reasons=reasons, note=str(exc))
    if not report.groups:
        return Failure(reasons=reasons, note="the completion report lists no failed task")
    group = max(report.groups.values(), key=lambda g: g.count)
    return Failure(reasons=reasons, top_error=(group.code or f"HTTP {group.http}", group.count))
