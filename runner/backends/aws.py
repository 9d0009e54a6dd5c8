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
import urllib.parse
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from runner.backends.base import filter_jobs
from runner.dialects import s3control
from runner.jobs.errors import (
    BadRequest,
    JobServiceError,
    ServiceUnavailable,
)
from runner.jobs.models import (
    JobDetail,
    JobPage,
    JobRequest,
)
from runner.jobs.status import JobStatus
from runner.spec.models import AwsTarget, CsvManifest
from runner.stores.base import ObjectStore


def map_error(exc: Exception) -> JobServiceError:
    """A botocore error as the typed error a caller can act on, the message kept."""
    if not isinstance(exc, ClientError):
        return ServiceUnavailable(f"{type(exc).__name__}: {exc}")
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return s3control.error_from(str(error.get("Code", "")), status, str(error.get("Message", "")))


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
        return s3control.create_job_params(request, self.target.role_arn, self._manifest_etag)

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
        jobs = [s3control.summary_from(j) for j in page.get("Jobs", [])]
        jobs = filter_jobs(jobs, description, job_id)
        return JobPage(jobs=jobs, next_token=page.get("NextToken") or None)

    def describe_job(self, job_id: str) -> JobDetail:
        """DescribeJob, as the common job view."""
        return s3control.detail_from(self._call("describe_job", JobId=job_id)["Job"])

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
            from runner.stores.s3 import S3ObjectStore

            self._reports = S3ObjectStore(
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
