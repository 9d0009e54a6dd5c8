"""The AWS backend: the JobService over S3 Batch Operations (boto3's ``s3control``).

Requests are built from the common JobRequest: every operation and manifest kind
AWS supports, ManifestGenerator for ``generate``, the report, RoleArn, Priority,
ConfirmationRequired always sent explicitly (some SDKs drop a false value and the
job lands Suspended: aws-sdk-go-v2 #1814), the deterministic ClientRequestToken, and
job tags with the spec's name and hash. The service's errors become the typed
errors, with its message kept. ListJobs has no paginator and no description or ID
filter: pages are walked by NextToken and those filters applied here.

A repository manifest (``manifest.file``) is uploaded to the Target's
``stagingBucket`` and pinned by its ETag.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from runner.backends.base import filter_jobs
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
    S3_OPERATION_NAMES,
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
from runner.spec.models import AwsTarget, CsvManifest, GenerateManifest, ObjectMetadata, Operation
from runner.stores.base import ObjectStore

_NOT_FOUND = {"NotFoundException", "NoSuchJob", "NoSuchJobException"}
_BAD = {"BadRequestException", "InvalidRequestException", "InvalidRequest", "ValidationException"}


def _arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def map_error(exc: Exception) -> JobServiceError:
    """A botocore error as the typed error a caller can act on, the message kept."""
    if not isinstance(exc, ClientError):
        return ServiceUnavailable(f"{type(exc).__name__}: {exc}")
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = f"{code}: {error.get('Message', '')}".strip()
    if code in _NOT_FOUND or status == 404:
        return NotFound(message)
    if code == "JobStatusException":
        return JobStatusError(message)
    if code == "IdempotencyException":
        return IdempotencyError(message)
    if code in ("TooManyRequestsException", "SlowDown", "Throttling"):
        return TooManyRequests(message, delay=2.0)
    if code in _BAD or 400 <= status < 500:
        return BadRequest(message)
    return ServiceUnavailable(message)


def operation_shape(operation: Operation) -> dict[str, Any]:
    """The JobOperation of S3 Batch Operations for one of our operations."""
    op = operation
    if op.copy_ is not None:
        copy = op.copy_
        params: dict[str, Any] = {
            "TargetResource": _arn(copy.bucket),
            "MetadataDirective": copy.metadata_directive,
        }
        if copy.prefix:
            params["TargetKeyPrefix"] = copy.prefix
        if copy.storage_class:
            params["StorageClass"] = copy.storage_class
        if copy.canned_acl:
            params["CannedAccessControlList"] = copy.canned_acl
        if copy.grants:
            params["AccessControlGrants"] = [
                {
                    "Grantee": {"TypeIdentifier": "id", "Identifier": g.id},
                    "Permission": g.permission,
                }
                for g in copy.grants
            ]
        if copy.checksum_algorithm:
            params["ChecksumAlgorithm"] = copy.checksum_algorithm
        if copy.modified_since:
            params["ModifiedSinceConstraint"] = copy.modified_since
        if copy.unmodified_since:
            params["UnModifiedSinceConstraint"] = copy.unmodified_since
        if copy.metadata is not None or copy.encryption:
            m = copy.metadata or ObjectMetadata()
            meta = {
                "CacheControl": m.cache_control,
                "ContentDisposition": m.content_disposition,
                "ContentEncoding": m.content_encoding,
                "ContentLanguage": m.content_language,
                "ContentType": m.content_type,
                "HttpExpiresDate": m.expires,
                "UserMetadata": dict(m.user) or None,
                "SSEAlgorithm": copy.encryption,
            }
            params["NewObjectMetadata"] = {k: v for k, v in meta.items() if v is not None}
        if copy.tagging_directive == "REPLACE":
            # Omitted NewObjectTagging copies the source's tags; an empty list writes none.
            params["NewObjectTagging"] = [
                {"Key": k, "Value": v} for k, v in (copy.tags or {}).items()
            ]
        return {"S3PutObjectCopy": params}
    if op.tag is not None:
        return {
            "S3PutObjectTagging": {
                "TagSet": [{"Key": k, "Value": v} for k, v in op.tag.tags.items()]
            }
        }
    if op.untag is not None:
        return {"S3DeleteObjectTagging": {}}
    if op.acl is not None:
        return {
            "S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": op.acl.canned}}
        }
    if op.restore is not None:
        return {
            "S3InitiateRestoreObject": {
                "ExpirationInDays": op.restore.days,
                "GlacierJobTier": op.restore.tier,
            }
        }
    if op.retention is not None:
        return {
            "S3PutObjectRetention": {
                "BypassGovernanceRetention": op.retention.bypass_governance,
                "Retention": {"Mode": op.retention.mode, "RetainUntilDate": op.retention.until},
            }
        }
    if op.legal_hold is not None:
        return {"S3PutObjectLegalHold": {"LegalHold": {"Status": op.legal_hold.status}}}
    if op.checksum is not None:
        return {
            "S3ComputeObjectChecksum": {
                "ChecksumAlgorithm": op.checksum.algorithm,
                "ChecksumType": "FULL_OBJECT",
            }
        }
    if op.invoke is not None and op.invoke.function is not None:
        return {
            "LambdaInvoke": {"FunctionArn": op.invoke.function, "InvocationSchemaVersion": "1.0"}
        }
    raise BadRequest(f"S3 Batch Operations has no operation {op.choice!r}")


_SUFFIX_GLOB = re.compile(r"^(?:\*\*/)?\*([^*?\[\]/]+)$")


def generator_shape(spec: GenerateManifest) -> dict[str, Any]:
    """The S3JobManifestGenerator of a ``generate`` manifest."""
    if spec.versions == "all":
        raise BadRequest("S3's manifest generator lists current versions only (versions: all)")
    f = spec.filters
    filters: dict[str, Any] = {}
    if spec.prefix:
        filters["KeyNameConstraint"] = {"MatchAnyPrefix": [spec.prefix]}
    if f.key_matches:
        found = _SUFFIX_GLOB.match(f.key_matches)
        if found is None:
            raise BadRequest(
                f"keyMatches {f.key_matches!r}: S3's manifest generator matches prefixes, "
                "suffixes and substrings only; use a pattern like '**/*.log'"
            )
        filters.setdefault("KeyNameConstraint", {})["MatchAnySuffix"] = [found.group(1)]
    if isinstance(f.created_after, datetime):
        filters["CreatedAfter"] = f.created_after
    if f.created_before:
        filters["CreatedBefore"] = f.created_before
    if f.min_size is not None:
        filters["ObjectSizeGreaterThanBytes"] = max(0, f.min_size - 1)
    if f.max_size is not None:
        filters["ObjectSizeLessThanBytes"] = f.max_size + 1
    if f.storage_classes:
        filters["MatchAnyStorageClass"] = list(f.storage_classes)
    generator: dict[str, Any] = {
        "SourceBucket": _arn(spec.bucket),
        "EnableManifestOutput": spec.save_to is not None,
    }
    if spec.save_to is not None:
        output: dict[str, Any] = {
            "Bucket": _arn(spec.save_to.bucket),
            "ManifestFormat": "S3InventoryReport_CSV_20211130",
        }
        if spec.save_to.prefix:
            output["ManifestPrefix"] = spec.save_to.prefix
        generator["ManifestOutputLocation"] = output
    if filters:
        generator["Filter"] = filters
    return {"S3JobManifestGenerator": generator}


class AwsBackend:
    """JobService over S3 Batch Operations in one account and region."""

    def __init__(self, target: AwsTarget, *, client: Any = None, s3: Any = None) -> None:
        self.target = target
        session = boto3.Session(profile_name=target.profile) if target.profile else boto3.Session()
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        self.client = client or session.client(
            "s3control", region_name=target.region, endpoint_url=target.endpoint_url, config=config
        )
        self.s3 = s3 or session.client(
            "s3",
            region_name=target.region,
            endpoint_url=target.s3_endpoint_url,
            config=Config(
                retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"}
            ),
        )
        self._account = target.account_id
        self._session = session
        self._reports: ObjectStore | None = None
        if target.endpoint_url and client is None:
            # botocore puts the account in the host name (<account>.<host>), which does not
            # resolve for an endpoint such as 127.0.0.1: sign and send to the endpoint itself.
            self.client.meta.events.register("before-sign.s3-control", self._unprefix_host)

    def _unprefix_host(self, request: Any, **_: Any) -> None:
        url = urllib.parse.urlsplit(request.url)
        host = url.netloc
        account = self._account or ""
        if account and host.startswith(f"{account}."):
            request.url = urllib.parse.urlunsplit(url._replace(netloc=host[len(account) + 1 :]))

    @property
    def account_id(self) -> str:
        """The target's account, or the caller's from STS GetCallerIdentity."""
        if self._account is None:
            try:
                identity = self._session.client("sts", region_name=self.target.region)
                self._account = str(identity.get_caller_identity()["Account"])
            except (ClientError, BotoCoreError) as exc:
                raise map_error(exc) from exc
        return self._account

    def _call(self, name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, name)(AccountId=self.account_id, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc

    def _manifest_etag(self, manifest: CsvManifest) -> str:
        if manifest.etag:
            return manifest.etag.strip('"')
        try:
            head = self.s3.head_object(
                Bucket=manifest.bucket,
                Key=manifest.key,
                **({"VersionId": manifest.version_id} if manifest.version_id else {}),
            )
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc
        return str(head["ETag"]).strip('"')

    def create_request(self, request: JobRequest) -> dict[str, Any]:
        """The CreateJob parameters of ``request`` (AccountId added by the call)."""
        params: dict[str, Any] = {
            "ConfirmationRequired": request.confirmation_required,
            "Operation": operation_shape(request.operation),
            "Priority": request.priority,
            "RoleArn": self.target.role_arn,
            "ClientRequestToken": request.client_request_token,
            "Description": request.description or "batchctl job",
        }
        manifest = request.manifest
        if manifest.csv is not None:
            location = {
                "ObjectArn": f"{_arn(manifest.csv.bucket)}/{manifest.csv.key}",
                "ETag": self._manifest_etag(manifest.csv),
            }
            if manifest.csv.version_id:
                location["ObjectVersionId"] = manifest.csv.version_id
            params["Manifest"] = {
                "Spec": {
                    "Format": "S3BatchOperations_CSV_20180820",
                    "Fields": list(manifest.csv.fields),
                },
                "Location": location,
            }
        elif manifest.inventory is not None:
            inventory = manifest.inventory
            etag = self._manifest_etag(
                CsvManifest(bucket=inventory.bucket, key=inventory.key, etag=inventory.etag)
            )
            params["Manifest"] = {
                "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
                "Location": {
                    "ObjectArn": f"{_arn(inventory.bucket)}/{inventory.key}",
                    "ETag": etag,
                },
            }
        elif manifest.generate is not None:
            params["ManifestGenerator"] = generator_shape(manifest.generate)
        else:
            raise BadRequest("upload manifest.file before creating the job")
        report = request.report
        if report is None:
            params["Report"] = {"Enabled": False}
        else:
            params["Report"] = {
                "Enabled": True,
                "Bucket": _arn(report.bucket),
                "Format": "Report_CSV_20180820",
                "ReportScope": "AllTasks" if report.scope == "all" else "FailedTasksOnly",
            }
            if report.prefix:
                params["Report"]["Prefix"] = report.prefix.strip("/")
        marker = parse_marker(request.description)
        if marker is not None:
            params["Tags"] = [
                {"Key": "batchctl/name", "Value": marker.name},
                {"Key": "batchctl/hash", "Value": marker.spec_hash},
            ]
        return params

    def create_job(self, request: JobRequest) -> str:
        """CreateJob."""
        return str(self._call("create_job", **self.create_request(request))["JobId"])

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """ListJobs; description and ID filters are applied to the page here."""
        kwargs: dict[str, Any] = {"MaxResults": max_results}
        if statuses:
            kwargs["JobStatuses"] = [JobStatus(s).value for s in statuses]
        if next_token:
            kwargs["NextToken"] = next_token
        page = self._call("list_jobs", **kwargs)
        jobs = [_summary(j) for j in page.get("Jobs", [])]
        jobs = filter_jobs(jobs, description, job_id)
        return JobPage(jobs=jobs, next_token=page.get("NextToken") or None)

    def describe_job(self, job_id: str) -> JobDetail:
        """DescribeJob, as the common job view."""
        job = self._call("describe_job", JobId=job_id)["Job"]
        summary = _summary({**job, "Operation": next(iter(job.get("Operation") or {"?": 0}))})
        return JobDetail(
            **summary.model_dump(),
            confirmation_required=bool(job.get("ConfirmationRequired")),
            operation_params=_plain(job.get("Operation") or {}),
            manifest=_plain(job.get("Manifest") or job.get("ManifestGenerator") or {}),
            report=_plain(job["Report"]) if job.get("Report", {}).get("Enabled") else None,
            failure_reasons=[
                FailureReason(code=f.get("FailureCode", ""), reason=f.get("FailureReason", ""))
                for f in job.get("FailureReasons", [])
            ],
            status_update_reason=job.get("StatusUpdateReason"),
            suspended_at=job.get("SuspendedDate"),
            suspended_cause=job.get("SuspendedCause"),
        )

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """UpdateJobPriority."""
        return int(self._call("update_job_priority", JobId=job_id, Priority=priority)["Priority"])

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """UpdateJobStatus (Ready or Cancelled), with the reason sent along."""
        kwargs: dict[str, Any] = {"JobId": job_id, "RequestedJobStatus": JobStatus(requested).value}
        if reason:
            kwargs["StatusUpdateReason"] = reason[:256]
        return JobStatus(self._call("update_job_status", **kwargs)["Status"])

    def get_job_tags(self, job_id: str) -> dict[str, str]:
        """GetJobTagging."""
        found = self._call("get_job_tagging", JobId=job_id)
        return {t["Key"]: t.get("Value", "") for t in found.get("Tags", [])}

    def put_job_tags(self, job_id: str, tags: dict[str, str]) -> None:
        """PutJobTagging: replace the job's tags (at most 50)."""
        self._call(
            "put_job_tagging", JobId=job_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )

    def delete_job_tags(self, job_id: str) -> None:
        """DeleteJobTagging."""
        self._call("delete_job_tagging", JobId=job_id)

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Upload a repository manifest to the staging bucket, by content, pinned by ETag."""
        bucket = self.target.staging_bucket
        if bucket is None:
            raise BadRequest(
                f"{name}: manifest.file on an aws target needs stagingBucket in the Target"
            )
        key = f"batchctl-manifests/{name}/{hashlib.sha256(data).hexdigest()}.csv"
        try:
            answer = self.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="text/csv")
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc
        return CsvManifest(bucket=bucket, key=key, etag=str(answer["ETag"]).strip('"'))

    def report_store(self) -> ObjectStore:
        """The S3 store over the report buckets (s3EndpointUrl, or AWS's)."""
        if self._reports is None:
            from runner.stores.s3 import S3Store

            self._reports = S3Store(
                self.target.s3_endpoint_url, self.target.region, profile=self.target.profile
            )
        return self._reports

    def close(self) -> None:
        """Close the clients."""
        for client in (self.client, self.s3):
            close = getattr(client, "close", None)
            if close is not None:
                close()
        if self._reports is not None:
            self._reports.close()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _summary(job: dict[str, Any]) -> JobSummary:
    progress = job.get("ProgressSummary") or {}
    timers = progress.get("Timers") or {}
    return JobSummary(
        job_id=job["JobId"],
        status=JobStatus(job["Status"]),
        priority=int(job.get("Priority", 0)),
        description=job.get("Description", ""),
        operation=our_operation(str(job.get("Operation", "")), S3_OPERATION_NAMES),
        progress=Progress(
            total=int(progress.get("TotalNumberOfTasks", 0)),
            succeeded=int(progress.get("NumberOfTasksSucceeded", 0)),
            failed=int(progress.get("NumberOfTasksFailed", 0)),
            elapsed_seconds=float(timers.get("ElapsedTimeInActiveSeconds", 0)),
        ),
        created_at=job["CreationTime"],
        terminated_at=job.get("TerminationDate"),
    )
