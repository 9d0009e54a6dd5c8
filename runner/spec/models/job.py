"""The BatchJob resource: metadata, spec, report, dependencies, failure threshold."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from runner.spec.models.base import DEFAULT_TARGET, Model
from runner.spec.models.manifests import Manifest
from runner.spec.models.operations import Operation
from runner.spec.models.scalars import (
    LAST_RUN,
    BucketName,
    CronExpression,
    DnsLabel,
    KeyPrefix,
    Priority,
    TimeZoneName,
)


def _report_prefix(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or "\x00" in value or ".." in parts or "." in parts:
        raise ValueError(
            "must be a plain key prefix: no leading /, no . or .. segment, no backslash "
            "(reports are written below it on every target, the embedded store included)"
        )
    return value


class Report(Model):
    """Where the completion report is written."""

    bucket: BucketName
    """Bucket for the report."""
    prefix: Annotated[KeyPrefix, AfterValidator(_report_prefix)] | None = None
    """Key prefix of the report (job-<id>/… goes below it)."""
    scope: Literal["all", "failed"] = "all"
    """Report every task, or failed tasks only."""


class Dependency(Model):
    """A job that must reach a condition before this one is created or confirmed."""

    job: DnsLabel
    """Name of the job depended on."""
    target: DnsLabel | None = None
    """Target of that job (this job's target when omitted)."""
    condition: Literal["complete", "succeeded"] = "succeeded"
    """complete: the job is Complete; succeeded: Complete with no more failed tasks than
    its tolerateFailedTasks (0 unless set)."""


class JobMetadata(Model):
    """Identity and grouping of a job."""

    name: DnsLabel
    """The job's identity, unique per target (a DNS label)."""
    campaign: DnsLabel | None = None
    """Grouping for status and reports."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels."""


_TOLERANCE_RE = re.compile(r"^(\d{1,3}(\.\d{1,4})?)%$")


def _tolerance(value: object) -> int | str:
    """A count of failed tasks (0 or more) or a share of the tasks, ``"0.5%"``."""
    if isinstance(value, bool):
        raise ValueError('must be a count such as 3 or a percentage such as "0.5%"')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be 0 or more")
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    found = _TOLERANCE_RE.match(text)
    if found is None or float(found.group(1)) > 100:
        raise ValueError(
            f'{text!r} is neither a count (3) nor a percentage from 0% to 100% ("0.5%")'
        )
    return text


FailureTolerance = Annotated[Annotated[int, Strict()] | str, AfterValidator(_tolerance)]


def failures_tolerated(tolerance: int | str, *, failed: int, total: int) -> bool:
    """Whether ``failed`` of ``total`` tasks is within ``tolerateFailedTasks``."""
    if isinstance(tolerance, int):
        return failed <= tolerance
    share = float(tolerance.rstrip("%"))
    return failed * 100 <= share * total


class JobSpec(Model):
    """The desired job."""

    target: DnsLabel = DEFAULT_TARGET
    """Name of a Target resource; `local` (the embedded engine) needs no declaration."""
    description: str = ""
    """Free text; batchctl appends its identity marker, and both must fit 256 bytes."""
    priority: Priority = 10
    """Higher runs first (0 to 2147483647); priority never guarantees order."""
    confirmation: Literal["auto", "manual"] = "auto"
    """manual: the job waits in Suspended until a person confirms it."""
    depends_on: list[Dependency] = Field(default_factory=list)
    """Jobs that must reach a condition first; batchctl sequences them."""
    dependency_policy: Literal["create-after", "stage"] = "create-after"
    """create-after: create once dependencies hold; stage: create early suspended, confirm later."""
    manifest: Manifest
    """The objects to act on."""
    operation: Operation
    """What to do to each object."""
    report: Report | None = None
    """Completion report; omitted means no report."""
    on_change: Literal["recreate", "ignore", "error"] = "recreate"
    """What to do when immutable fields (manifest, operation, report) change."""
    tolerate_failed_tasks: FailureTolerance = 0
    """Failed tasks a Complete job may have and still count as succeeded: a count (3) or a
    share of its tasks ("0.5%"); beyond it the job needs attention (exit 4)."""
    state: Literal["present", "cancelled"] = "present"
    """cancelled: cancel the job if it exists and never create it."""
    schedule: CronExpression | None = None
    """Cron schedule (5 fields): a new generation each time a run is due and the last is final."""
    timezone: TimeZoneName | None = None
    """Time zone the schedule is read in (UTC when omitted), e.g. Europe/Berlin."""

    @model_validator(mode="after")
    def _schedule_fields(self) -> JobSpec:
        if self.timezone and not self.schedule:
            raise ValueError("timezone is only meaningful with a schedule")
        generate = self.manifest.generate
        if generate and generate.filters.created_after == LAST_RUN and not self.schedule:
            raise ValueError("createdAfter: lastRun needs a schedule (a run before this one)")
        return self


class BatchJob(Model):
    """A batch operation job, reconciled by batchctl."""

    model_config = ConfigDict(title="BatchJob")

    api_version: Literal["batchctl/v1"]
    """Always batchctl/v1."""
    kind: Literal["BatchJob"]
    """Always BatchJob."""
    metadata: JobMetadata
    """Name, campaign and labels."""
    spec: JobSpec
    """What the job does, where, and when."""
