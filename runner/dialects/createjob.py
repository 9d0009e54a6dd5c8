"""What S3 Control's and COS's CreateJob bodies share, read back into a JobRequest.

Both name the same elements (Report with Bucket, Enabled, Prefix, ReportScope;
Priority; ConfirmationRequired; Description; ClientRequestToken); only resource
names (ARN or qcs), operations and manifests differ, and the callers bring those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.jobs.models import JobRequest
from runner.spec.models import Manifest, Operation, Report

_METADATA = {
    "cacheControl": "CacheControl",
    "contentDisposition": "ContentDisposition",
    "contentEncoding": "ContentEncoding",
    "contentLanguage": "ContentLanguage",
    "contentType": "ContentType",
    "expires": "HttpExpiresDate",
}


def new_metadata_into(
    copy: dict[str, Any],
    meta: Any,
    user: Callable[[Any], dict[str, str]],
    expires: Callable[[Any], Any] = lambda value: value,
) -> None:
    """Our copy's ``encryption`` and ``metadata`` from a ``<NewObjectMetadata>``.

    The dialects differ in the user metadata (a map, or a list of Key/Value members) and
    the expiry (a time, or an HTTP date): the callers read those two.
    """
    if not isinstance(meta, dict):
        return
    if meta.get("SSEAlgorithm"):
        copy["encryption"] = meta["SSEAlgorithm"]
    metadata: dict[str, Any] = {
        ours: meta[theirs] for ours, theirs in _METADATA.items() if meta.get(theirs)
    }
    if "expires" in metadata:
        metadata["expires"] = expires(metadata["expires"])
    if meta.get("UserMetadata"):
        metadata["user"] = user(meta["UserMetadata"])
    if metadata:
        copy["metadata"] = metadata


def report_from(report: Any, bucket_of: Callable[[str], str]) -> Report | None:
    """Our report from a ``<Report>`` (None when disabled)."""
    if not isinstance(report, dict) or report.get("Enabled") != "true":
        return None
    return Report.model_validate(
        {
            "bucket": bucket_of(str(report.get("Bucket", ""))),
            **({"prefix": report["Prefix"]} if report.get("Prefix") else {}),
            "scope": "failed" if report.get("ReportScope") == "FailedTasksOnly" else "all",
        }
    )


def request_from_data(
    data: dict[str, Any],
    operation: dict[str, Any],
    manifest: dict[str, Any],
    bucket_of: Callable[[str], str],
) -> JobRequest:
    """A JobRequest from a parsed CreateJob body and our operation and manifest (spec data).

    Raises ValueError (pydantic's included) or TypeError when a value does not fit.
    """
    return JobRequest(
        operation=Operation.model_validate(operation),
        manifest=Manifest.model_validate(manifest),
        report=report_from(data.get("Report"), bucket_of),
        priority=int(data.get("Priority") or 0),
        confirmation_required=data.get("ConfirmationRequired") == "true",
        description=data.get("Description") or "",
        client_request_token=data.get("ClientRequestToken") or "",
    )


def stored_request(job: Any) -> JobRequest:
    """The creation request of a job the embedded engine describes (its JobDetail)."""
    return JobRequest.model_validate(
        {
            "operation": job.operation_params,
            "manifest": job.manifest,
            "report": job.report,
            "priority": job.priority,
            "confirmationRequired": job.confirmation_required,
            "clientRequestToken": "x",
        }
    )
