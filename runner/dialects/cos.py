"""COS Batch Operation XML, both ways: the CreateJob shapes from our job model and back.

No namespace (none in any COS example); lists are ``<member>`` elements except
where COS names the item (``COSTag``, ``JobFailure``), written as
``(name, value)`` pairs. The backend writes requests with these functions and
``engine serve`` reads them back and echoes them in DescribeJob, so the two
agree by construction; the tests hold both to the reference sheet's examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.dialects import xml
from runner.dialects.createjob import new_metadata_into, request_from_data
from runner.jobs.errors import BadRequest
from runner.jobs.models import JobRequest
from runner.spec.models import Manifest, ObjectMetadata, Operation, Report

CSV_FORMAT = "COSBatchOperations_CSV_V1"
INVENTORY_FORMAT = "COSInventoryReport_CSV_V1"
REPORT_FORMAT = "Report_CSV_V1"
OPERATION_NAMES = {
    "copy": "COSPutObjectCopy",
    "restore": "COSInitiateRestoreObject",
    "delete": "COSDeleteObject",
    "tag": "COSPutObjectTagging",
}


STYLE = xml.Style(repeats=True, malformed="MalformedXML: the body is not XML")


def document(root: str, fields: dict[str, Any]) -> bytes:
    """A COS answer document ``<root>fields</root>``."""
    return xml.document(root, fields, STYLE)


# -- resources -----------------------------------------------------------------------


def resource(region: str, app_id: str, bucket: str, key: str | None = None) -> str:
    """A qcs resource ID: ``qcs::cos:<region>:uid/<appid>:<bucket>[/<key>]``."""
    found = f"qcs::cos:{region}:uid/{app_id}:{bucket}"
    return f"{found}/{key}" if key is not None else found


def parse_resource(value: str) -> tuple[str, str]:
    """(bucket, key) of a qcs resource ID in either documented form (``uid/APPID`` or empty)."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "qcs" or parts[2] != "cos":
        raise BadRequest(f"InvalidArgument: {value!r} is not a COS resource (qcs::cos:…)")
    bucket, _, key = parts[5].partition("/")
    return bucket, key


# -- CreateJob, written ---------------------------------------------------------------


def operation_shape(op: Operation, region: str, app_id: str) -> dict[str, Any]:
    """The ``<Operation>`` child of one operation."""
    if op.copy_ is not None:
        copy = op.copy_
        params: dict[str, Any] = {"TargetResource": resource(region, app_id, copy.bucket)}
        if copy.prefix or copy.strip_prefix:
            params |= {
                "PrefixReplace": True,
                "ResourcesPrefix": copy.strip_prefix or "",
                "TargetKeyPrefix": copy.prefix or "",
            }
        params["MetadataDirective"] = "Replaced" if copy.metadata_directive == "REPLACE" else "Copy"
        if copy.metadata is not None or copy.encryption:
            m = copy.metadata or ObjectMetadata()
            params["NewObjectMetadata"] = {
                "CacheControl": m.cache_control,
                "ContentDisposition": m.content_disposition,
                "ContentEncoding": m.content_encoding,
                "ContentType": m.content_type,
                "HttpExpiresDate": m.expires.strftime("%a, %d %b %Y %H:%M:%S GMT")
                if m.expires
                else None,
                "SSEAlgorithm": copy.encryption,
                "UserMetadata": [{"Key": k, "Value": v} for k, v in m.user.items()] or None,
            }
        params["TaggingDirective"] = "Replaced" if copy.tagging_directive == "REPLACE" else "Copy"
        if copy.tagging_directive == "REPLACE":
            params["NewObjectTagging"] = [
                ("COSTag", {"Key": k, "Value": v}) for k, v in (copy.tags or {}).items()
            ]
        if copy.storage_class:
            params["StorageClass"] = copy.storage_class
        # An ACL asked for replaces the source's: say so, rather than rely on a default the
        # reference does not give.
        params["AccessControlDirective"] = "Replaced" if copy.canned_acl or copy.grants else "Copy"
        if copy.grants:
            params["AccessControlGrants"] = [
                (
                    "COSGrant",
                    {
                        "Grantee": {"Identifier": g.id, "TypeIdentifier": "ID"},
                        "Permission": g.permission,
                    },
                )
                for g in copy.grants
            ]
        if copy.canned_acl:
            params["CannedAccessControlList"] = copy.canned_acl
        # The reference types these "Timestamp" without a format; the Go SDK and Terraform
        # send integers, read here as epoch seconds (unverified against the service).
        if copy.modified_since:
            params["ModifiedSinceConstraint"] = int(copy.modified_since.timestamp())
        if copy.unmodified_since:
            params["UnModifiedSinceConstraint"] = int(copy.unmodified_since.timestamp())
        return {"COSPutObjectCopy": params}
    if op.restore is not None:
        return {
            "COSInitiateRestoreObject": {
                "ExpirationInDays": op.restore.days,
                "JobTier": op.restore.tier.title(),
            }
        }
    if op.delete is not None:
        return {"COSDeleteObject": {}}
    if op.tag is not None:
        return {
            "COSPutObjectTagging": {
                "TaggingDirective": "Replaced",
                "TagSet": [("COSTag", {"Key": k, "Value": v}) for k, v in op.tag.tags.items()],
            }
        }
    raise BadRequest(f"COS Batch Operation has no operation {op.choice!r}")


def manifest_shape(manifest: Manifest, etag: str, region: str, app_id: str) -> dict[str, Any]:
    """The ``<Manifest>`` of a csv or inventory manifest, pinned by ``etag``."""
    if manifest.csv is not None:
        csv = manifest.csv
        return {
            "Location": {
                "ETag": etag,
                "ObjectArn": resource(region, app_id, csv.bucket, csv.key),
                "ObjectVersionId": csv.version_id,
            },
            "Spec": {"Fields": list(csv.fields), "Format": CSV_FORMAT},
        }
    if manifest.inventory is not None:
        inv = manifest.inventory
        return {
            "Location": {"ETag": etag, "ObjectArn": resource(region, app_id, inv.bucket, inv.key)},
            "Spec": {"Format": INVENTORY_FORMAT},
        }
    raise BadRequest("COS takes csv and inventory manifests (others are staged as csv first)")


def report_shape(report: Report | None, fallback: str, region: str, app_id: str) -> dict[str, Any]:
    """The ``<Report>``: COS marks it required even when disabled.

    A disabled one still names a bucket (``fallback``, the manifest's) and a scope;
    which of them COS checks is unverified, and sending them costs nothing.
    """
    return {
        "Bucket": resource(region, app_id, report.bucket if report else fallback),
        "Enabled": report is not None,
        "Format": REPORT_FORMAT,
        "Prefix": report.prefix if report else None,
        "ReportScope": "FailedTasksOnly" if report and report.scope == "failed" else "AllTasks",
    }


def create_job_body(request: JobRequest, etag: str, region: str, app_id: str, role: str) -> bytes:
    """The CreateJobRequest XML of ``request`` (csv or inventory manifest, pinned by ``etag``)."""
    manifest = request.manifest
    manifest_xml = manifest_shape(manifest, etag, region, app_id)
    source = (
        manifest.csv.bucket
        if manifest.csv
        else manifest.inventory.bucket
        if manifest.inventory
        else ""
    )
    fields = {
        "ClientRequestToken": request.client_request_token,
        "ConfirmationRequired": request.confirmation_required,
        "Description": request.description,
        "Manifest": manifest_xml,
        "Operation": operation_shape(request.operation, region, app_id),
        "Priority": request.priority,
        "Report": report_shape(request.report, source, region, app_id),
        "RoleArn": role,
    }
    return xml.document("CreateJobRequest", fields, STYLE, declaration=False)


# -- CreateJob, read back -------------------------------------------------------------


def _directive(value: Any, field: str) -> str:
    if value in (None, "", "Copy"):
        return "COPY"
    if value in ("Replaced", "Replace"):
        return "REPLACE"
    raise BadRequest(
        f"InvalidArgument: {field} {value!r}: the embedded engine takes Copy or Replaced"
    )


def _tags(value: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for entry in xml.repeated(value.get("COSTag") if isinstance(value, dict) else value):
        if isinstance(entry, dict):
            tags[str(entry.get("Key", ""))] = str(entry.get("Value") or "")
    return tags


def _moment(value: str) -> datetime:
    """Epoch seconds (what COS's SDKs send) or an ISO-8601 time."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"InvalidArgument: {value!r} is not a time") from None


def operation_from(found: Any) -> dict[str, Any]:
    """Our operation (as spec data) from an ``<Operation>``."""
    if not isinstance(found, dict) or len(found) != 1:
        raise BadRequest("MalformedXML: Operation must hold exactly one operation")
    name, params = next(iter(found.items()))
    params = params if isinstance(params, dict) else {}
    if name == "COSPutObjectCopy":
        bucket, _ = parse_resource(str(params.get("TargetResource", "")))
        copy: dict[str, Any] = {"bucket": bucket}
        if params.get("PrefixReplace") == "true":
            if params.get("ResourcesPrefix"):
                copy["stripPrefix"] = params["ResourcesPrefix"]
            if params.get("TargetKeyPrefix"):
                copy["prefix"] = params["TargetKeyPrefix"]
        copy["metadataDirective"] = _directive(params.get("MetadataDirective"), "MetadataDirective")
        new_metadata_into(
            copy,
            params.get("NewObjectMetadata"),
            user=lambda found: {
                str(u.get("Key")): str(u.get("Value") or "")
                for u in xml.repeated(found)
                if isinstance(u, dict)
            },
            expires=lambda text: datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(
                tzinfo=UTC
            ),
        )
        directive = _directive(params.get("TaggingDirective"), "TaggingDirective")
        copy["taggingDirective"] = directive
        if directive == "REPLACE":
            copy["tags"] = _tags(params.get("NewObjectTagging"))
        if params.get("StorageClass"):
            copy["storageClass"] = params["StorageClass"]
        if params.get("CannedAccessControlList"):
            copy["cannedAcl"] = params["CannedAccessControlList"]
        grants = params.get("AccessControlGrants")
        if isinstance(grants, dict) and grants.get("COSGrant"):
            copy["grants"] = [
                {
                    "permission": g.get("Permission"),
                    "id": (g.get("Grantee") or {}).get("Identifier"),
                }
                for g in xml.repeated(grants["COSGrant"])
                if isinstance(g, dict)
            ]
        if params.get("AccessControlDirective") == "Add":
            raise BadRequest("InvalidArgument: the embedded engine replaces ACLs; it does not add")
        for ours, theirs in (
            ("modifiedSince", "ModifiedSinceConstraint"),
            ("unmodifiedSince", "UnModifiedSinceConstraint"),
        ):
            if params.get(theirs):
                copy[ours] = _moment(str(params[theirs]))
        return {"copy": copy}
    if name == "COSInitiateRestoreObject":
        return {
            "restore": {
                "days": int(params.get("ExpirationInDays") or 0),
                "tier": str(params.get("JobTier") or "").upper(),
            }
        }
    if name == "COSDeleteObject":
        return {"delete": {}}
    if name == "COSPutObjectTagging":
        _directive(params.get("TaggingDirective") or "Replaced", "TaggingDirective")
        return {"tag": {"tags": _tags(params.get("TagSet"))}}
    raise BadRequest(f"MalformedXML: COS Batch Operation has no operation {name}")


def manifest_from(found: Any) -> dict[str, Any]:
    """Our manifest (as spec data) from a ``<Manifest>``."""
    found = found if isinstance(found, dict) else {}
    location, spec = found.get("Location") or {}, found.get("Spec") or {}
    if not isinstance(location, dict) or not location.get("ETag"):
        raise BadRequest("InvalidArgument: Manifest/Location/ETag is required")
    bucket, key = parse_resource(str(location.get("ObjectArn", "")))
    form = spec.get("Format") if isinstance(spec, dict) else None
    if form == INVENTORY_FORMAT:
        return {"inventory": {"bucket": bucket, "key": key, "etag": location["ETag"]}}
    if form != CSV_FORMAT:
        raise BadRequest(f"MalformedXML: unknown manifest Format {form!r}")
    csv: dict[str, Any] = {"bucket": bucket, "key": key, "etag": location["ETag"]}
    if location.get("ObjectVersionId"):
        csv["versionId"] = location["ObjectVersionId"]
    if spec.get("Fields"):
        csv["fields"] = xml.repeated(spec["Fields"])
    return {"csv": csv}


def request_from(body: bytes) -> JobRequest:
    """A CreateJobRequest body as a JobRequest (MalformedXML / InvalidArgument when wrong)."""
    found = xml.parse(body, STYLE)
    for required in ("ClientRequestToken", "Manifest", "Operation", "Priority", "Report"):
        if required not in found:
            raise BadRequest(f"MalformedXML: CreateJobRequest has no {required}")
    if not isinstance(found.get("Report"), dict):
        raise BadRequest("MalformedXML: Report")
    try:
        return request_from_data(
            found,
            operation_from(found.get("Operation")),
            manifest_from(found.get("Manifest")),
            lambda arn: parse_resource(arn)[0],
        )
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"InvalidArgument: invalid CreateJob request: {exc}") from None
