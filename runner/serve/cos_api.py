"""The COS dialect of `engine serve`: COS Batch Operation's job API over the engine.

Paths ``/jobs…`` without a version, XML without a namespace, ``x-cos-appid`` on
every request, ``<Error>`` bodies with Code, Message, Resource, RequestId and
TraceId, and the service's quirks the reference sheet records, so a client that
passes here is ready for COS itself:

- a reused ClientRequestToken is refused (400 InvalidRequest "Duplicate request"),
  even with the same request — unlike AWS, which returns the first job;
- ListJobs takes one ``jobStatuses`` value, pages by JobId, and returns the last
  JobId as NextToken on every non-empty page, the last one included;
- UpdateJobPriority on a finished job is 404 NoSuchJob;
- there is no job tagging.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from runner.backends.local import LocalBackend
from runner.dialects import cos as cos_xml
from runner.dialects.createjob import stored_request
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobServiceError,
    JobStatusError,
    NotFound,
    TooManyRequests,
)
from runner.jobs.models import JobDetail, JobSummary
from runner.jobs.status import JobStatus

PREFIX = "/jobs"
_BAD_REQUEST_CODES = frozenset({"InvalidArgument", "MalformedXML", "InvalidRequest"})


def error_status(exc: JobServiceError) -> tuple[int, str]:
    """COS's HTTP status and error Code for one of our typed errors."""
    if isinstance(exc, NotFound):
        return 404, "NoSuchJob"
    if isinstance(exc, IdempotencyError | JobStatusError):
        return 400, "InvalidRequest"
    if isinstance(exc, TooManyRequests):
        return 503, "SlowDown"
    if isinstance(exc, BadRequest):
        # cos_xml and CosApi start their messages with the COS code they mean
        code = exc.message.split(":", 1)[0]
        return 400, code if code in _BAD_REQUEST_CODES else "InvalidArgument"
    return 500, "InternalError"


def error_document(code: str, message: str, resource: str, request_id: str) -> bytes:
    """COS's error XML."""
    prefix = f"{code}: "
    return cos_xml.document(
        "Error",
        {
            "Code": code,
            "Message": message.removeprefix(prefix),
            "Resource": resource,
            "RequestId": request_id,
            "TraceId": request_id,
        },
    )


def _progress(job: JobSummary) -> dict[str, Any]:
    return {
        "NumberOfTasksFailed": job.progress.failed,
        "NumberOfTasksSucceeded": job.progress.succeeded,
        "TotalNumberOfTasks": job.progress.total,
    }


def list_member(job: JobSummary) -> dict[str, Any]:
    """One ``Jobs/member`` of ListJobs."""
    return {
        "CreationTime": job.created_at,
        "Description": job.description,
        "JobId": job.job_id,
        "Operation": cos_xml.OPERATION_NAMES.get(job.operation, job.operation),
        "Priority": job.priority,
        "ProgressSummary": _progress(job),
        "Status": job.status.value,
        "TerminationDate": job.terminated_at,
    }


def job_descriptor(job: JobDetail, region: str, app_id: str, role: str) -> dict[str, Any]:
    """The ``Job`` of DescribeJob, echoing the creation request in COS's shapes."""
    request = stored_request(job)
    manifest = request.manifest
    pinned = manifest.csv or manifest.inventory
    source = pinned.bucket if pinned else ""
    return {
        "ConfirmationRequired": job.confirmation_required,
        "CreationTime": job.created_at,
        "Description": job.description,
        # COS shows an empty JobFailure on a healthy job (reference §2.2)
        "FailureReasons": [
            ("JobFailure", {"FailureCode": f.code, "FailureReason": f.reason})
            for f in job.failure_reasons
        ]
        or [("JobFailure", {"FailureCode": "", "FailureReason": ""})],
        "JobId": job.job_id,
        "Manifest": cos_xml.manifest_shape(manifest, pinned.etag or "", region, app_id)
        if pinned
        else None,
        "Operation": cos_xml.operation_shape(request.operation, region, app_id),
        "Priority": job.priority,
        "ProgressSummary": _progress(job),
        "Report": cos_xml.report_shape(request.report, source, region, app_id),
        "RoleArn": role,
        "Status": job.status.value,
        "StatusUpdateReason": job.status_update_reason or "",
        "SuspendedCause": job.suspended_cause,
        "SuspendedDate": job.suspended_at,
        "TerminationDate": job.terminated_at,
    }


class CosApi:
    """The routes of COS's job API over one local backend."""

    def __init__(self, backend: LocalBackend, *, region: str = "ap-guangzhou") -> None:
        self.backend = backend
        self.region = region

    def handle(
        self, method: str, target: str, body: bytes, app_id: str, uin: str = "0"
    ) -> tuple[int, bytes]:
        """Answer one verified request: HTTP status and XML body.

        ``uin`` is the account in the host name (``<UIN>.cos-control…``), when given.
        """
        if not app_id:
            raise BadRequest("InvalidArgument: x-cos-appid cannot be empty")
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.removeprefix(PREFIX).split("/") if p]
        if url.path != PREFIX and not url.path.startswith(PREFIX + "/"):
            raise BadRequest(f"InvalidRequest: no such resource {url.path}")
        if not parts and method == "POST":
            return 200, self._create(body)
        if not parts and method == "GET":
            return 200, self._list(query)
        if len(parts) == 1 and method == "GET":
            job = self.backend.describe_job(parts[0])
            role = f"qcs::cam::uin/{uin}:roleName/COS_Batch_QcsRole"
            return 200, cos_xml.document(
                "DescribeJobResult",
                {"Job": job_descriptor(job, self.region, app_id, role)},
            )
        if len(parts) == 2 and parts[1] == "priority" and method == "POST":
            return 200, self._priority(parts[0], query)
        if len(parts) == 2 and parts[1] == "status" and method == "POST":
            return 200, self._status(parts[0], query)
        raise BadRequest(f"InvalidRequest: {method} {url.path} is not part of the job API")

    def _create(self, body: bytes) -> bytes:
        if not body.strip():
            raise BadRequest("InvalidRequest: the request body is empty")
        request = cos_xml.request_from(body)
        if b"<RoleArn>" not in body or b"<RoleArn></RoleArn>" in body:
            # COS requires the CAM role its tasks run as (the reference sheet's CreateJob).
            raise BadRequest("InvalidArgument: RoleArn is required (empty parameter)")
        if not 1 <= len(request.client_request_token) <= 64:
            raise BadRequest("InvalidArgument: ClientRequestToken must be 1 to 64 bytes")
        used = self.backend.engine.job_with_token(request.client_request_token)
        if used is not None:
            raise IdempotencyError(
                "InvalidRequest: Duplicate request: the ClientRequestToken parameter already "
                f"exists (job {used})"
            )
        job_id = self.backend.create_job(request)
        return cos_xml.document("CreateJobResult", {"JobId": job_id})

    def _list(self, query: dict[str, str]) -> bytes:
        try:
            size = int(query.get("maxResults") or "1000")
        except ValueError:
            raise BadRequest("InvalidArgument: maxResults must be a positive integer") from None
        if not 1 <= size <= 1000:
            raise BadRequest("InvalidArgument: maxResults must be between 1 and 1000")
        statuses: list[str] = []
        if query.get("jobStatuses"):
            try:
                statuses = [JobStatus(query["jobStatuses"]).value]
            except ValueError:
                raise BadRequest(
                    f"InvalidArgument: invalid jobStatuses {query['jobStatuses']!r}"
                ) from None
        after = query.get("nextToken")
        page = self.backend.list_jobs(
            statuses=statuses,
            next_token=self.backend.engine.page_token_after(after) if after else None,
            max_results=size,
        )
        return cos_xml.document(
            "ListJobsResult",
            {
                "Jobs": [list_member(j) for j in page.jobs],
                "NextToken": page.jobs[-1].job_id if page.jobs else None,
            },
        )

    def _priority(self, job_id: str, query: dict[str, str]) -> bytes:
        if "priority" not in query:
            raise BadRequest("InvalidRequest: no priority given")
        try:
            wanted = int(query["priority"])
        except ValueError:
            raise BadRequest("InvalidArgument: priority must be an integer") from None
        if not 0 <= wanted <= 2_147_483_647:
            raise BadRequest("InvalidArgument: priority must be between 0 and 2147483647")
        try:
            priority = self.backend.update_job_priority(job_id, wanted)
        except JobStatusError as exc:  # COS: "does not exist or already completed"
            raise NotFound(f"NoSuchJob: {exc.message}") from exc
        return cos_xml.document("UpdateJobPriorityResult", {"JobId": job_id, "Priority": priority})

    def _status(self, job_id: str, query: dict[str, str]) -> bytes:
        requested = query.get("requestedJobStatus", "")
        if requested not in ("Ready", "Cancelled"):
            raise BadRequest("InvalidArgument: requestedJobStatus must be Cancelled or Ready")
        reason = query.get("statusUpdateReason")
        if reason is not None and len(reason.encode()) > 256:
            raise BadRequest("InvalidArgument: statusUpdateReason is at most 256 bytes")
        status = self.backend.update_job_status(job_id, requested, reason)
        return cos_xml.document(
            "UpdateJobStatusResult",
            {"JobId": job_id, "Status": status.value, "StatusUpdateReason": reason or ""},
        )
