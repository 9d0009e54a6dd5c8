"""Job requests and views: what a caller sends to CreateJob and reads back.

The request reuses the spec's operation, manifest and report models, so every
backend receives the same validated values; a repository manifest
(``manifest.file``) must have been uploaded and turned into a ``csv`` manifest
before a request is made. Views serialise with the camelCase keys of
``--output json`` (jobId, status, progress {total, succeeded, failed} …).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from runner.jobs.status import JobStatus
from runner.spec.models import MAX_PRIORITY, Manifest, Operation, Report

# The services' names of the operations; the job view uses ours (tag, copy …) everywhere.
S3_OPERATION_NAMES = {
    "copy": "S3PutObjectCopy",
    "tag": "S3PutObjectTagging",
    "untag": "S3DeleteObjectTagging",
    "acl": "S3PutObjectAcl",
    "restore": "S3InitiateRestoreObject",
    "retention": "S3PutObjectRetention",
    "legalHold": "S3PutObjectLegalHold",
    "checksum": "S3ComputeObjectChecksum",
    "invoke": "LambdaInvoke",
}


def our_operation(service_name: str, names: dict[str, str]) -> str:
    """Our name of an operation a service names ``service_name`` (kept when unknown)."""
    return next((ours for ours, theirs in names.items() if theirs == service_name), service_name)


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class JobRequest(_Model):
    """A CreateJob request, independent of the backend."""

    operation: Operation
    manifest: Manifest
    report: Report | None = None
    priority: int = Field(ge=0, le=MAX_PRIORITY)
    confirmation_required: bool
    description: str = Field(default="", max_length=256)
    client_request_token: str = Field(min_length=1, max_length=64)

    @field_validator("manifest")
    @classmethod
    def _uploaded(cls, value: Manifest) -> Manifest:
        if value.file is not None:
            raise ValueError("upload manifest.file and send a csv manifest instead")
        return value

    def fingerprint(self) -> str:
        """SHA-256 of the request without its token: equal requests, equal fingerprints."""
        body = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"client_request_token"}
        )
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Progress(_Model):
    """Task counters."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0

    @property
    def done(self) -> int:
        """Tasks that ran."""
        return self.succeeded + self.failed


class FailureReason(_Model):
    """Why a job failed."""

    code: str
    reason: str


class JobSummary(_Model):
    """A job as ListJobs shows it."""

    job_id: str
    status: JobStatus
    priority: int
    description: str
    operation: str
    progress: Progress
    created_at: datetime
    terminated_at: datetime | None = None


class ListedProgress(NamedTuple):
    """Task counters of a ``ListedJob``."""

    total: int
    succeeded: int
    failed: int
    elapsed_seconds: float


class ListedJob(NamedTuple):
    """A ListJobs entry as plain values: what a served page is written from.

    The same attributes as ``JobSummary``, without a model built per job: on a page of
    1,000 jobs building the models was most of the server's time (bench/serve.py).
    """

    job_id: str
    status: JobStatus
    priority: int
    description: str
    operation: str
    progress: ListedProgress
    created_at: datetime
    terminated_at: datetime | None

    def summary(self) -> JobSummary:
        """The validated view."""
        return JobSummary(
            job_id=self.job_id,
            status=self.status,
            priority=self.priority,
            description=self.description,
            operation=self.operation,
            progress=Progress(**self.progress._asdict()),
            created_at=self.created_at,
            terminated_at=self.terminated_at,
        )


class JobDetail(JobSummary):
    """A job as DescribeJob shows it."""

    confirmation_required: bool
    operation_params: dict[str, Any]
    manifest: dict[str, Any]
    report: dict[str, Any] | None = None
    failure_reasons: list[FailureReason] = Field(default_factory=list)
    status_update_reason: str | None = None
    suspended_at: datetime | None = None
    suspended_cause: str | None = None


class JobPage(_Model):
    """One page of ListJobs."""

    jobs: list[JobSummary]
    next_token: str | None = None
