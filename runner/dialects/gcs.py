"""Google Cloud Storage batch operations (v1) as JSON: written once, used both ways.

``engine serve`` reads a client's Job with ``request_from`` and answers with ``job_json``;
the gcs backend sends ``job_body`` (through the official client's messages) and reads
the service's answers with ``summary_from`` and ``detail_from``. Field names are the
REST JSON's lowerCamelCase; enums arrive as integers (the client asks for
``enum-encoding=int``) or names, and both are read.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from runner.dialects.createjob import stored_request
from runner.jobs.errors import BadRequest
from runner.jobs.models import FailureReason, JobDetail, JobRequest, JobSummary, Progress
from runner.jobs.status import JobStatus

# Job.State (reference sheet)
STATES = {
    0: "STATE_UNSPECIFIED",
    1: "RUNNING",
    2: "SUCCEEDED",
    3: "CANCELED",
    4: "FAILED",
    5: "QUEUED",
}
_HOLD = {0: None, 1: True, 2: False, "HOLD_STATUS_UNSPECIFIED": None, "SET": True, "UNSET": False}
_RETENTION_MODES = {1: "LOCKED", 2: "UNLOCKED", "LOCKED": "LOCKED", "UNLOCKED": "UNLOCKED"}
# google.rpc.Code
RPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
RPC_NAMES = {number: name for name, number in RPC_CODES.items()}
_METADATA_FIELDS = {
    "cacheControl": "cacheControl",
    "contentDisposition": "contentDisposition",
    "contentEncoding": "contentEncoding",
    "contentLanguage": "contentLanguage",
    "contentType": "contentType",
    "customTime": "customTime",
    "customMetadata": "custom",
}


def state_name(value: Any) -> str:
    """A Job.State given as a number or a name, as its name."""
    if isinstance(value, int):
        return STATES.get(value, "STATE_UNSPECIFIED")
    return str(value or "STATE_UNSPECIFIED")


def status_of(state: Any) -> JobStatus:
    """Our status of a GCS job state. QUEUED is Ready: nothing is left to confirm."""
    return {
        "QUEUED": JobStatus.READY,
        "RUNNING": JobStatus.ACTIVE,
        "SUCCEEDED": JobStatus.COMPLETE,
        "FAILED": JobStatus.FAILED,
        "CANCELED": JobStatus.CANCELLED,
    }.get(state_name(state), JobStatus.NEW)


def state_of(status: JobStatus) -> str:
    """The GCS state of one of ours (a job being cancelled or failed is still RUNNING)."""
    if status in (JobStatus.NEW, JobStatus.PREPARING, JobStatus.READY, JobStatus.SUSPENDED):
        return "QUEUED"
    if status is JobStatus.COMPLETE:
        return "SUCCEEDED"
    if status is JobStatus.FAILED:
        return "FAILED"
    if status is JobStatus.CANCELLED:
        return "CANCELED"
    return "RUNNING"


def job_id_for(name: str, token: str) -> str:
    """The GCS job ID of a request: the service's idempotency key.

    ``token`` is the ClientRequestToken, derived from target, name, spec hash and
    generation; the ID keeps the spec's name first to be readable, within 63 characters.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"{name[:40].rstrip('-')}-{digest}"


def job_body(request: JobRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """The Job of a CreateJob for ``request`` (REST JSON, enums as names)."""
    body: dict[str, Any] = {"description": request.description, "bucketList": _source(request)}
    body.update(_transformation(request.operation.model_dump(by_alias=True, exclude_none=True)))
    if dry_run:
        body["dryRun"] = True
    return body


def _source(request: JobRequest) -> dict[str, Any]:
    manifest = request.manifest
    if manifest.csv is not None:
        location = f"gs://{manifest.csv.bucket}/{manifest.csv.key}"
        bucket = {"bucket": manifest.csv.bucket, "manifest": {"manifestLocation": location}}
    elif manifest.generate is not None:
        prefixes = [manifest.generate.prefix] if manifest.generate.prefix else []
        bucket = {
            "bucket": manifest.generate.bucket,
            "prefixList": {"includedObjectPrefixes": prefixes},
        }
    else:
        raise BadRequest(f"GCS takes a csv manifest or object prefixes, not {manifest.choice}")
    return {"buckets": [bucket]}


def _transformation(operation: dict[str, Any]) -> dict[str, Any]:
    if "delete" in operation:
        permanent = bool((operation["delete"] or {}).get("permanent"))
        return {"deleteObject": {"permanentObjectDeletionEnabled": permanent}}
    if "hold" in operation:
        hold = operation["hold"]
        names = {True: "SET", False: "UNSET"}
        body = {}
        if hold.get("temporary") is not None:
            body["temporaryHold"] = names[hold["temporary"]]
        if hold.get("eventBased") is not None:
            body["eventBasedHold"] = names[hold["eventBased"]]
        return {"putObjectHold": body}
    if "metadata" in operation:
        put = operation["metadata"]
        fields: dict[str, Any] = {t: put[o] for t, o in _METADATA_FIELDS.items() if o in put}
        if "customTime" in fields:
            fields["customTime"] = _rfc3339(fields["customTime"])
        if "retention" in put:
            fields["objectRetention"] = {
                "retentionMode": put["retention"]["mode"],
                "retainUntilTime": _rfc3339(put["retention"]["until"]),
            }
        return {"putMetadata": fields}
    if "rewrite" in operation:
        return {"rewriteObject": {"kmsKey": operation["rewrite"]["kmsKey"]}}
    name = next(iter(operation), "?")
    raise BadRequest(f"GCS batch operations cannot run operation {name!r}")


def request_from(job: dict[str, Any], token: str) -> JobRequest:
    """Our creation request of a client's Job (engine serve), one bucket at a time.

    Raises BadRequest, naming the field, for what the embedded engine cannot run.
    """
    if job.get("dryRun"):
        raise BadRequest("dryRun: the embedded engine has no dry run")
    buckets = (job.get("bucketList") or {}).get("buckets") or []
    if len(buckets) != 1:
        raise BadRequest(
            f"bucketList.buckets: the embedded engine runs one bucket per job (got {len(buckets)})"
        )
    source = buckets[0]
    bucket = str(source.get("bucket") or "")
    manifest: dict[str, Any]
    if "manifest" in source:
        location = str((source["manifest"] or {}).get("manifestLocation") or "")
        if not location.startswith("gs://") or "*" in location:
            raise BadRequest(
                "bucketList.buckets[0].manifest.manifestLocation: must be gs://BUCKET/OBJECT "
                "(wildcards are not supported here)"
            )
        manifest_bucket, _, key = location.removeprefix("gs://").partition("/")
        manifest = {"csv": {"bucket": manifest_bucket, "key": key}}
    else:
        prefixes = (source.get("prefixList") or {}).get("includedObjectPrefixes") or []
        if len(prefixes) > 1:
            raise BadRequest(
                "bucketList.buckets[0].prefixList: the embedded engine takes one prefix per job"
            )
        manifest = {"generate": {"bucket": bucket, **({"prefix": prefixes[0]} if prefixes else {})}}
    return JobRequest.model_validate(
        {
            "operation": _operation_from(job),
            "manifest": manifest,
            "priority": 0,
            "confirmationRequired": False,
            "description": str(job.get("description") or ""),
            "clientRequestToken": token,
        }
    )


def _operation_from(job: dict[str, Any]) -> dict[str, Any]:
    if "deleteObject" in job:
        permanent = bool((job["deleteObject"] or {}).get("permanentObjectDeletionEnabled"))
        return {"delete": {"permanent": permanent}}
    if "putObjectHold" in job:
        hold = job["putObjectHold"] or {}
        found = {
            "temporary": _HOLD.get(hold.get("temporaryHold", 0)),
            "eventBased": _HOLD.get(hold.get("eventBasedHold", 0)),
        }
        return {"hold": {k: v for k, v in found.items() if v is not None}}
    if "putMetadata" in job:
        put = job["putMetadata"] or {}
        ours = {o: put[t] for t, o in _METADATA_FIELDS.items() if t in put}
        retention = put.get("objectRetention")
        if retention:
            mode = _RETENTION_MODES.get(retention.get("retentionMode"))
            ours["retention"] = {"mode": mode, "until": retention.get("retainUntilTime")}
        return {"metadata": ours}
    if "rewriteObject" in job:
        return {"rewrite": {"kmsKey": (job["rewriteObject"] or {}).get("kmsKey")}}
    if "updateObjectCustomContext" in job:
        raise BadRequest("updateObjectCustomContext: not supported by the embedded engine")
    raise BadRequest("job: one transformation is required")


def job_json(
    name: str,
    job: JobDetail,
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    """A Job as the service shows it (engine serve), from the engine's view of the job."""
    body: dict[str, Any] = {
        "name": name,
        **job_body(stored_request(job)),
        "description": job.description,
        "createTime": _rfc3339(job.created_at),
        "counters": {
            "totalObjectCount": str(job.progress.total),
            "succeededObjectCount": str(job.progress.succeeded),
            "failedObjectCount": str(job.progress.failed),
        },
        "state": state_of(job.status),
    }
    if job.terminated_at is not None:
        body["completeTime"] = _rfc3339(job.terminated_at)
    if errors:
        body["errorSummaries"] = errors
    return body


def error_summary(
    code: str, http: int | None, count: int, samples: list[tuple[str, str, str]]
) -> dict[str, Any]:
    """One ErrorSummary from failed tasks: their rpc code, count and a few objects."""
    return {
        "errorCode": rpc_code(code, http),
        "errorCount": str(count),
        "errorLogEntries": [
            {"objectUri": f"gs://{bucket}/{key}", "errorDetails": [f"{code}: {message}"]}
            for bucket, key, message in samples
        ],
    }


def rpc_code(code: str, http: int | None) -> str:
    """The google.rpc.Code name closest to an object store's error."""
    if http == 404 or code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion"):
        return "NOT_FOUND"
    if http == 403 or code == "AccessDenied":
        return "PERMISSION_DENIED"
    if http in (409, 412) or code in ("InvalidObjectState", "PreconditionFailed"):
        return "FAILED_PRECONDITION"
    if http == 400:
        return "INVALID_ARGUMENT"
    if http in (429, 503):
        return "UNAVAILABLE"
    return "INTERNAL"


def summary_from(job: dict[str, Any]) -> JobSummary:
    """Our view of a Job (REST JSON as the client's ``to_json`` writes it)."""
    return JobSummary(**_common(job))


def detail_from(job: dict[str, Any]) -> JobDetail:
    """Our detailed view of a Job; its error summaries become failure reasons."""
    reasons = []
    for summary in job.get("errorSummaries") or []:
        code = summary.get("errorCode", 2)
        name = RPC_NAMES.get(code, str(code)) if isinstance(code, int) else str(code)
        entries = summary.get("errorLogEntries") or []
        first = entries[0] if entries else {}
        detail = "; ".join(first.get("errorDetails") or [])
        where = first.get("objectUri", "")
        reasons.append(
            FailureReason(
                code=name,
                reason=f"{int(summary.get('errorCount') or 0):,} objects"
                + (f", e.g. {where}: {detail}" if where else ""),
            )
        )
    operation, params = _our_operation(job)
    return JobDetail(
        **_common(job),
        confirmation_required=False,
        operation_params={operation: params},
        manifest=_our_manifest(job),
        report=None,
        failure_reasons=reasons,
    )


def _common(job: dict[str, Any]) -> dict[str, Any]:
    counters = job.get("counters") or {}
    total = int(counters.get("totalObjectCount") or 0)
    succeeded = int(counters.get("succeededObjectCount") or 0)
    failed = int(counters.get("failedObjectCount") or 0)
    completed = job.get("completeTime")
    operation, _ = _our_operation(job)
    return {
        "job_id": str(job.get("name", "")).rsplit("/", 1)[-1],
        "status": status_of(job.get("state")),
        "priority": 0,
        "description": str(job.get("description") or ""),
        "operation": operation,
        "progress": Progress(total=total, succeeded=succeeded, failed=failed),
        "created_at": _parse_time(job.get("createTime")) or datetime.fromtimestamp(0, UTC),
        "terminated_at": _parse_time(completed) if completed else None,
    }


def _our_operation(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        found = _operation_from(job)
    except BadRequest:
        return "unknown", {}
    name = next(iter(found))
    return name, found[name]


def _our_manifest(job: dict[str, Any]) -> dict[str, Any]:
    buckets = (job.get("bucketList") or {}).get("buckets") or [{}]
    source = buckets[0]
    if "manifest" in source:
        location = str((source["manifest"] or {}).get("manifestLocation") or "")
        bucket, _, key = location.removeprefix("gs://").partition("/")
        return {"csv": {"bucket": bucket, "key": key}}
    prefixes = (source.get("prefixList") or {}).get("includedObjectPrefixes") or []
    generate: dict[str, Any] = {"bucket": source.get("bucket", "")}
    if len(prefixes) == 1:  # our manifest's shape; several only on jobs made elsewhere
        generate["prefix"] = prefixes[0]
    elif prefixes:
        generate["prefixes"] = prefixes
    return {"generate": generate}


def _rfc3339(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    # RFC 3339 with up to nanoseconds: Python reads at most microseconds
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text)
