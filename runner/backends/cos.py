"""The COS backend: the JobService over Tencent COS Batch Operation (signed XML over HTTPS).

Host ``<UIN>.cos-control.<Region>.myqcloud.com`` (or the Target's ``endpoint``),
``x-cos-appid`` on every call, the q-sign signature (``runner.dialects.qsign``) with
``x-cos-security-token`` for temporary credentials. Credentials come from the
environment: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY /
TENCENTCLOUD_SESSION_TOKEN, or COS_SECRET_ID / COS_SECRET_KEY; they are never
printed. Errors (COS's ``<Error>`` with Code, Message, RequestId) become the typed
errors, the RequestId kept; 5xx, SlowDown and dropped connections are retried
with exponential backoff and jitter.

COS rejects a reused ClientRequestToken (400 InvalidRequest, "Duplicate
request") instead of returning the first job: that is mapped to an
IdempotencyError, and ``apply`` looks a job up by its marker before it retries a
create whose outcome is unknown.

Objects (manifests to pin or stage, completion reports) go through COS's
S3-compatible endpoint (``https://cos.<Region>.myqcloud.com`` or the Target's
``s3EndpointUrl``) with the S3 store, signed with the same COS keys. COS has no
manifest generator: for a ``generate`` manifest batchctl lists the bucket itself
when it creates the job, with the engine's own filters, and stages the CSV — the
same moment AWS's generator would list it (the job's preparation).

The HTTP exchange is one callable (``send``), so tests hand in a function, as
httpx's MockTransport does.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import formatdate
from typing import Any

from runner.backends.base import filter_jobs
from runner.dialects import cos as cos_xml
from runner.dialects import xml
from runner.dialects.qsign import authorization
from runner.engine.manifests import ManifestError, generated_tasks
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobServiceError,
    JobStatusError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from runner.jobs.models import (
    FailureReason,
    JobDetail,
    JobPage,
    JobRequest,
    JobSummary,
    Progress,
    our_operation,
)
from runner.jobs.status import JobStatus
from runner.spec.identity import parse_marker
from runner.spec.models import CosTarget, CsvManifest, GenerateManifest, Manifest
from runner.stores.base import ObjectStore, StoreError
from runner.support.retry import Backoff, retry, transient

Send = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]
_RETRY = {"SlowDown", "ServiceUnavailable", "InternalError", "TooManyJobs"}


def environment_credentials() -> tuple[str, str, str | None]:
    """COS credentials from the environment (never from resources)."""
    secret_id = os.environ.get("TENCENTCLOUD_SECRET_ID") or os.environ.get("COS_SECRET_ID")
    secret_key = os.environ.get("TENCENTCLOUD_SECRET_KEY") or os.environ.get("COS_SECRET_KEY")
    if not secret_id or not secret_key:
        raise BadRequest(
            "COS credentials are missing: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY "
            "(or COS_SECRET_ID and COS_SECRET_KEY)"
        )
    return secret_id, secret_key, os.environ.get("TENCENTCLOUD_SESSION_TOKEN")


def urllib_send(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """The real exchange, over urllib (HTTPS to COS, or the configured endpoint)."""
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class CosBackend:
    """JobService over COS Batch Operation in one account and region."""

    def __init__(
        self,
        target: CosTarget,
        *,
        send: Send = urllib_send,
        credentials: Callable[[], tuple[str, str, str | None]] = environment_credentials,
        max_attempts: int = 6,
        clock: Callable[[], float] = time.time,
        objects: ObjectStore | None = None,
    ) -> None:
        self.target = target
        self._objects = objects
        self.send = send
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.clock = clock
        base = target.endpoint or f"https://{target.uin}.cos-control.{target.region}.myqcloud.com"
        self.base = base.rstrip("/")
        self.host = urllib.parse.urlsplit(self.base).netloc

    # -- the wire --------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        attempts: int | None = None,
    ) -> ET.Element | None:
        params = params or {}
        server_failed: set[int] = set()  # ids of errors answered with a 5xx: always retried

        def once() -> ET.Element | None:
            secret_id, secret_key, token = self.credentials()
            now = int(self.clock())
            headers = {
                "Host": self.host,
                "x-cos-appid": self.target.app_id,
                "Date": formatdate(now, usegmt=True),
            }
            if body:
                headers["Content-Type"] = "application/xml"
            if token:
                headers["x-cos-security-token"] = token
            headers["Authorization"] = authorization(
                method,
                path,
                params,
                headers,
                secret_id=secret_id,
                secret_key=secret_key,
                key_time=f"{now};{now + 600}",
            )
            query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
            url = f"{self.base}{urllib.parse.quote(path)}" + (f"?{query}" if query else "")
            try:
                status, data = self.send(method, url, headers, body)
            except OSError as exc:
                raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from exc
            if 200 <= status < 300:
                return ET.fromstring(data) if data.strip() else None
            error = self._error(status, data, path)
            if status >= 500:
                server_failed.add(id(error))
            raise error

        return retry(
            once,
            Backoff(attempts=attempts or self.max_attempts, base=0.2, cap=8.0),
            retryable=lambda exc: transient(exc) or id(exc) in server_failed,
        )

    @staticmethod
    def _error(status: int, data: bytes, path: str = "") -> JobServiceError:
        try:
            root = ET.fromstring(data)
            code = root.findtext("Code") or str(status)
            message = root.findtext("Message") or ""
            request_id = root.findtext("RequestId") or "?"
        except ET.ParseError:
            code, message, request_id = str(status), data[:200].decode(errors="replace"), "?"
        text = f"{code}: {message} (RequestId {request_id})"
        if code == "NoSuchJob" or status == 404:
            return NotFound(text)
        if code == "InvalidRequest" and ("uplicate" in message or "already exists" in message):
            return IdempotencyError(text)
        if code in _RETRY:
            return TooManyRequests(text) if code != "InternalError" else ServiceUnavailable(text)
        # On UpdateJobStatus, InvalidRequest means "already completed" or "illegal status
        # change" (reference §2.5); elsewhere only its message tells.
        if code == "InvalidRequest" and (
            path.endswith("/status") or "status" in message.lower() or "complete" in message.lower()
        ):
            return JobStatusError(text)
        if status >= 500:
            return ServiceUnavailable(text)
        return BadRequest(text)

    # -- objects, through COS's S3-compatible endpoint ----------------------------

    @property
    def objects(self) -> ObjectStore:
        """The S3 store on COS's S3-compatible endpoint, opened on first use."""
        if self._objects is None:
            from runner.stores.s3 import S3ObjectStore

            secret_id, secret_key, token = self.credentials()
            keys = {"aws_access_key_id": secret_id, "aws_secret_access_key": secret_key}
            if token:
                keys["aws_session_token"] = token
            endpoint = (
                self.target.s3_endpoint_url or f"https://cos.{self.target.region}.myqcloud.com"
            )
            self._objects = S3ObjectStore(endpoint, self.target.region, credentials=keys)
        return self._objects

    def _pinned(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
        """The manifest's ETag: COS requires one, so an unpinned manifest is pinned now."""
        if etag:
            return etag
        try:
            etag = self.objects.head(bucket, key, version_id).etag
        except StoreError as exc:
            raise BadRequest(
                f"cannot read the ETag of manifest {bucket}/{key} through COS's S3 endpoint: "
                f"{exc.code} {exc.message}"
            ) from exc
        if not etag:
            raise BadRequest(f"manifest {bucket}/{key} has no ETag to pin it by")
        return etag.strip('"')

    def _staged(self, name: str, data: bytes, what: str) -> CsvManifest:
        bucket = self.target.staging_bucket
        if bucket is None:
            raise BadRequest(f"{name}: {what} on a cos target needs stagingBucket in the Target")
        key = f"batchctl-manifests/{name}/{hashlib.sha256(data).hexdigest()}.csv"
        try:
            info = self.objects.put(bucket, key, data, content_type="text/csv")
            etag = info.etag or self.objects.head(bucket, key).etag or ""
        except StoreError as exc:
            raise BadRequest(
                f"{name}: cannot stage the manifest in {bucket}: {exc.code} {exc.message}"
            ) from exc
        return CsvManifest(bucket=bucket, key=key, etag=etag.strip('"'))

    def generate_manifest(self, name: str, spec: GenerateManifest) -> CsvManifest:
        """List the bucket with the spec's filters and stage the CSV (COS has no generator)."""
        versioned = spec.versions == "all"
        try:
            lines = [
                f"{bucket},{key},{version or ''}\n" if versioned else f"{bucket},{key}\n"
                for bucket, key, version in generated_tasks(self.objects, spec)
            ]
        except ManifestError as exc:
            raise BadRequest(f"{name}: {exc.reason}") from exc
        staged = self._staged(name, "".join(lines).encode(), "a generated manifest")
        fields = ["Bucket", "Key", "VersionId"] if versioned else ["Bucket", "Key"]
        return staged.model_copy(update={"fields": fields})

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Upload a repository manifest to the staging bucket, by content, pinned by ETag."""
        return self._staged(name, data, "manifest.file")

    def report_store(self) -> ObjectStore:
        """Where the completion reports are read: COS's S3-compatible endpoint."""
        return self.objects

    # -- requests --------------------------------------------------------------

    def create_body(self, request: JobRequest) -> bytes:
        """The CreateJobRequest XML of ``request`` (an unpinned manifest pinned first)."""
        manifest = request.manifest
        if manifest.csv is not None:
            csv = manifest.csv
            etag = self._pinned(csv.bucket, csv.key, csv.version_id, csv.etag)
        elif manifest.inventory is not None:
            inv = manifest.inventory
            etag = self._pinned(inv.bucket, inv.key, None, inv.etag)
        else:
            raise BadRequest("COS takes csv and inventory manifests (others are staged first)")
        role = self.target.role_arn or f"qcs::cam::uin/{self.target.uin}:roleName/COS_Batch_QcsRole"
        return cos_xml.create_job_body(request, etag, self.target.region, self.target.app_id, role)

    # -- the JobService ----------------------------------------------------------

    def create_job(self, request: JobRequest) -> str:
        """CreateJob."""
        if request.manifest.generate is not None:
            found_marker = parse_marker(request.description)
            name = found_marker.name if found_marker else "generated"
            staged = self.generate_manifest(name, request.manifest.generate)
            request = request.model_copy(update={"manifest": Manifest(csv=staged)})
        # One attempt only: COS refuses a reused token, so a blind resend after a lost
        # answer would fail as a duplicate. The caller (apply) looks the job up by its
        # marker first, then retries.
        found = self._request("POST", "/jobs", body=self.create_body(request), attempts=1)
        job_id = found.findtext("JobId") if found is not None else None
        if not job_id:
            raise ServiceUnavailable("CreateJob answered without a JobId")
        return job_id

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """ListJobs (one status filter at a time on COS: several are fetched and merged)."""
        wanted = [JobStatus(s).value for s in statuses]
        params: dict[str, str] = {"maxResults": str(max_results)}
        if len(wanted) == 1:
            params["jobStatuses"] = wanted[0]
        if next_token:
            params["nextToken"] = next_token
        found = self._request("GET", "/jobs", params)
        data = xml.element_data(found, cos_xml.STYLE) if found is not None else {}
        members = (data.get("Jobs") or []) if isinstance(data, dict) else []
        jobs = [_summary(m) for m in members if isinstance(m, dict)]
        jobs = filter_jobs(jobs, description, job_id, wanted if len(wanted) > 1 else ())
        # COS returns the last JobId as NextToken even on the last page: stop on a short page.
        token = data.get("NextToken") if isinstance(data, dict) else None
        more = bool(token) and len(members) >= max_results
        return JobPage(jobs=jobs, next_token=str(token) if more else None)

    def describe_job(self, job_id: str) -> JobDetail:
        """DescribeJob, as the common job view."""
        found = self._request("GET", f"/jobs/{job_id}")
        data = xml.element_data(found, cos_xml.STYLE) if found is not None else {}
        job = data.get("Job") if isinstance(data, dict) else None
        if not isinstance(job, dict):
            raise NotFound(f"No such job: {job_id}")
        operation = job.get("Operation") or {}
        summary = _summary(
            {
                **job,
                "Operation": next(iter(operation))
                if isinstance(operation, dict) and operation
                else "",
            }
        )
        failures = job.get("FailureReasons") or {}
        failure_list = failures.get("JobFailure") if isinstance(failures, dict) else None
        if isinstance(failure_list, dict):
            failure_list = [failure_list]
        report = job.get("Report") or {}
        return JobDetail(
            **summary.model_dump(),
            confirmation_required=job.get("ConfirmationRequired") == "true",
            operation_params=operation if isinstance(operation, dict) else {},
            manifest=job.get("Manifest") or {},
            report=report if isinstance(report, dict) and report.get("Enabled") == "true" else None,
            failure_reasons=[
                FailureReason(code=f.get("FailureCode") or "", reason=f.get("FailureReason") or "")
                for f in failure_list or []
                if isinstance(f, dict) and (f.get("FailureCode") or f.get("FailureReason"))
            ],
            status_update_reason=job.get("StatusUpdateReason") or None,
            suspended_at=_time(job.get("SuspendedDate")),
            suspended_cause=job.get("SuspendedCause") or None,
        )

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """UpdateJobPriority."""
        found = self._request("POST", f"/jobs/{job_id}/priority", {"priority": str(priority)})
        return int(found.findtext("Priority") or priority) if found is not None else priority

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """UpdateJobStatus (Ready or Cancelled)."""
        params = {"requestedJobStatus": JobStatus(requested).value}
        if reason:
            params["statusUpdateReason"] = reason[:256]
        found = self._request("POST", f"/jobs/{job_id}/status", params)
        status = found.findtext("Status") if found is not None else None
        return JobStatus(status) if status else JobStatus(requested)

    def close(self) -> None:
        """Close the S3 store if one was opened (the job API keeps no connection)."""
        if self._objects is not None:
            self._objects.close()


def _time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _summary(job: dict[str, Any]) -> JobSummary:
    progress = job.get("ProgressSummary") or {}
    created = _time(job.get("CreationTime"))
    if created is None:
        raise ServiceUnavailable(f"job {job.get('JobId')} has no CreationTime")
    return JobSummary(
        job_id=str(job.get("JobId", "")),
        status=JobStatus(job.get("Status", "New")),
        priority=int(job.get("Priority") or 0),
        description=str(job.get("Description") or ""),
        operation=our_operation(str(job.get("Operation") or ""), cos_xml.OPERATION_NAMES),
        progress=Progress(
            total=int(progress.get("TotalNumberOfTasks") or 0),
            succeeded=int(progress.get("NumberOfTasksSucceeded") or 0),
            failed=int(progress.get("NumberOfTasksFailed") or 0),
        ),
        created_at=created,
        terminated_at=_time(job.get("TerminationDate")),
    )
