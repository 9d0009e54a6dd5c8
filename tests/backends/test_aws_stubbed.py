"""The AWS backend against botocore's Stubber: every call, every operation kind.

The Stubber checks each request against s3control's service model, so a field
name or type that AWS would refuse fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from runner.backends.aws import AwsBackend
from runner.dialects.s3control import operation_shape
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobStatusError,
    NotFound,
    TooManyRequests,
)
from runner.jobs.status import JobStatus
from runner.spec.models import AwsTarget, Operation
from tests.engine.conftest import request

ACCOUNT = "123456789012"
TARGET = AwsTarget(
    account_id=ACCOUNT, region="us-east-1", role_arn=f"arn:aws:iam::{ACCOUNT}:role/batch"
)
NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def stubbed() -> Iterator[tuple[AwsBackend, Stubber, Stubber]]:
    control = boto3.client(
        "s3control", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    backend = AwsBackend(TARGET, client=control, s3=s3)
    with Stubber(control) as control_stub, Stubber(s3) as s3_stub:
        yield backend, control_stub, s3_stub
        control_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()


OPERATIONS: list[dict[str, Any]] = [
    {
        "copy": {
            "bucket": "dst",
            "prefix": "p/",
            "storageClass": "GLACIER_IR",
            "cannedAcl": "private",
            "checksumAlgorithm": "CRC32",
            "metadataDirective": "REPLACE",
            "metadata": {"contentType": "text/plain", "user": {"a": "b"}},
            "taggingDirective": "REPLACE",
            "tags": {"k": "v"},
        }
    },
    {"copy": {"bucket": "dst"}},
    {
        "copy": {
            "bucket": "dst",
            "modifiedSince": "2024-01-01T00:00:00Z",
            "unmodifiedSince": "2025-01-01T00:00:00Z",
            "encryption": "AES256",
            "grants": [
                {"permission": "READ", "id": "0123abcd"},
                {"permission": "FULL_CONTROL", "id": "99ff"},
            ],
        }
    },
    {"tag": {"tags": {"k": "v"}}},
    {"untag": {}},
    {"acl": {"canned": "public-read"}},
    {"restore": {"days": 3, "tier": "STANDARD"}},
    {"retention": {"mode": "GOVERNANCE", "until": "2030-01-01T00:00:00Z"}},
    {"legalHold": {"status": "ON"}},
    {"checksum": {"algorithm": "SHA256"}},
    {"invoke": {"function": "arn:aws:lambda:us-east-1:123456789012:function:f"}},
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: next(iter(o)))
def test_create_job_for_every_operation(
    stubbed: tuple[AwsBackend, Stubber, Stubber], operation: dict[str, Any]
) -> None:
    backend, control, s3 = stubbed
    job = request(
        operation,
        {"csv": {"bucket": "manifests", "key": "m.csv"}},
        report={"bucket": "reports", "prefix": "out/", "scope": "failed"},
        description="x [batchctl:tag-logs:0123456789abcdef]",
        token="tok-1",
    )
    s3.add_response("head_object", {"ETag": '"abc"'}, {"Bucket": "manifests", "Key": "m.csv"})
    expected = {
        "AccountId": ACCOUNT,
        "ConfirmationRequired": False,
        "Operation": operation_shape(Operation.model_validate(operation)),
        "Priority": 10,
        "RoleArn": TARGET.role_arn,
        "ClientRequestToken": "tok-1",
        "Description": "x [batchctl:tag-logs:0123456789abcdef]",
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "abc"},
        },
        "Report": {
            "Enabled": True,
            "Bucket": "arn:aws:s3:::reports",
            "Format": "Report_CSV_20180820",
            "ReportScope": "FailedTasksOnly",
            "Prefix": "out",
        },
        "Tags": [
            {"Key": "batchctl/name", "Value": "tag-logs"},
            {"Key": "batchctl/hash", "Value": "0123456789abcdef"},
        ],
    }
    control.add_response("create_job", {"JobId": "job-00001"}, expected)
    assert backend.create_job(job) == "job-00001"


def test_delete_has_no_aws_operation() -> None:
    with pytest.raises(BadRequest):
        operation_shape(Operation.model_validate({"delete": {}}))


def test_generated_and_inventory_manifests(stubbed: tuple[AwsBackend, Stubber, Stubber]) -> None:
    backend, control, _ = stubbed
    generated = request(
        {"untag": {}},
        {
            "generate": {
                "bucket": "logs",
                "prefix": "2024/",
                "filters": {
                    "keyMatches": "**/*.log",
                    "minSize": 10,
                    "maxSize": 99,
                    "storageClasses": ["STANDARD"],
                    "createdAfter": "2024-01-01T00:00:00Z",
                },
                "saveTo": {"bucket": "manifests", "prefix": "gen"},
            }
        },
        confirm=True,
        token="tok-2",
    )
    control.add_response(
        "create_job",
        {"JobId": "job-00002"},
        {
            "AccountId": ACCOUNT,
            "ConfirmationRequired": True,
            "Operation": {"S3DeleteObjectTagging": {}},
            "Priority": 10,
            "RoleArn": TARGET.role_arn,
            "ClientRequestToken": "tok-2",
            "Description": ANY,
            "Report": {"Enabled": False},
            "ManifestGenerator": {
                "S3JobManifestGenerator": {
                    "SourceBucket": "arn:aws:s3:::logs",
                    "EnableManifestOutput": True,
                    "ManifestOutputLocation": {
                        "Bucket": "arn:aws:s3:::manifests",
                        "ManifestPrefix": "gen",
                        "ManifestFormat": "S3InventoryReport_CSV_20211130",
                    },
                    "Filter": {
                        "KeyNameConstraint": {
                            "MatchAnyPrefix": ["2024/"],
                            "MatchAnySuffix": [".log"],
                        },
                        "CreatedAfter": datetime(2024, 1, 1, tzinfo=UTC),
                        "ObjectSizeGreaterThanBytes": 9,
                        "ObjectSizeLessThanBytes": 100,
                        "MatchAnyStorageClass": ["STANDARD"],
                    },
                }
            },
        },
    )
    assert backend.create_job(generated) == "job-00002"
    inventory = request(
        {"untag": {}},
        {"inventory": {"bucket": "inv", "key": "x/manifest.json", "etag": "e1"}},
        token="tok-3",
    )
    control.add_response(
        "create_job",
        {"JobId": "job-00003"},
        {
            "AccountId": ACCOUNT,
            "ConfirmationRequired": False,
            "Operation": {"S3DeleteObjectTagging": {}},
            "Priority": 10,
            "RoleArn": TARGET.role_arn,
            "ClientRequestToken": "tok-3",
            "Description": ANY,
            "Report": {"Enabled": False},
            "Manifest": {
                "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
                "Location": {"ObjectArn": "arn:aws:s3:::inv/x/manifest.json", "ETag": "e1"},
            },
        },
    )
    assert backend.create_job(inventory) == "job-00003"
    with pytest.raises(BadRequest, match="prefixes, suffixes and substrings"):
        backend.create_job(
            request(
                {"untag": {}}, {"generate": {"bucket": "logs", "filters": {"keyMatches": "a*b/c"}}}
            )
        )


def _listed(job_id: str, status: str, description: str = "d") -> dict[str, Any]:
    return {
        "JobId": job_id,
        "Description": description,
        "Operation": "S3PutObjectTagging",
        "Priority": 5,
        "Status": status,
        "CreationTime": NOW,
        "ProgressSummary": {
            "TotalNumberOfTasks": 10,
            "NumberOfTasksSucceeded": 4,
            "NumberOfTasksFailed": 1,
        },
    }


def test_list_describe_priority_status(stubbed: tuple[AwsBackend, Stubber, Stubber]) -> None:
    backend, control, _ = stubbed
    control.add_response(
        "list_jobs",
        {
            "Jobs": [_listed("job-00001", "Active", "keep me"), _listed("job-00002", "Complete")],
            "NextToken": "next",
        },
        {"AccountId": ACCOUNT, "MaxResults": 1000, "JobStatuses": ["Active", "Complete"]},
    )
    page = backend.list_jobs(statuses=["Active", "Complete"], description="keep")
    assert [j.job_id for j in page.jobs] == ["job-00001"]
    assert page.next_token == "next"
    assert (page.jobs[0].progress.succeeded, page.jobs[0].progress.failed) == (4, 1)
    control.add_response(
        "describe_job",
        {
            "Job": {
                **_listed("job-00001", "Failed"),
                "Operation": {"S3PutObjectTagging": {"TagSet": []}},
                "ConfirmationRequired": False,
                "FailureReasons": [{"FailureCode": "X", "FailureReason": "why"}],
                "Report": {"Enabled": False},
            }
        },
        {"AccountId": ACCOUNT, "JobId": "job-00001"},
    )
    detail = backend.describe_job("job-00001")
    assert detail.status is JobStatus.FAILED
    assert detail.operation == "tag"  # our name, as every backend says it
    assert detail.failure_reasons[0].reason == "why"
    control.add_response(
        "update_job_priority",
        {"JobId": "job-00001", "Priority": 7},
        {"AccountId": ACCOUNT, "JobId": "job-00001", "Priority": 7},
    )
    assert backend.update_job_priority("job-00001", 7) == 7
    control.add_response(
        "update_job_status",
        {"JobId": "job-00001", "Status": "Cancelling"},
        {
            "AccountId": ACCOUNT,
            "JobId": "job-00001",
            "RequestedJobStatus": "Cancelled",
            "StatusUpdateReason": "not needed",
        },
    )
    assert backend.update_job_status("job-00001", "Cancelled", "not needed") is JobStatus.CANCELLING


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("NotFoundException", 404, NotFound),
        ("NoSuchJob", 404, NotFound),
        ("JobStatusException", 400, JobStatusError),
        ("IdempotencyException", 400, IdempotencyError),
        ("BadRequestException", 400, BadRequest),
        ("TooManyRequestsException", 400, TooManyRequests),
    ],
)
def test_errors_are_typed(
    stubbed: tuple[AwsBackend, Stubber, Stubber], code: str, status: int, error: type[Exception]
) -> None:
    backend, control, _ = stubbed
    control.add_client_error(
        "describe_job",
        service_error_code=code,
        service_message="the message",
        http_status_code=status,
    )
    with pytest.raises(error, match="the message"):
        backend.describe_job("job-00009")


def test_job_tagging(stubbed: tuple[AwsBackend, Stubber, Stubber]) -> None:
    backend, control, _ = stubbed
    control.add_response(
        "get_job_tagging",
        {"Tags": [{"Key": "a", "Value": "b"}]},
        {"AccountId": ACCOUNT, "JobId": "job-00001"},
    )
    assert backend.get_job_tags("job-00001") == {"a": "b"}
    control.add_response(
        "put_job_tagging",
        {},
        {"AccountId": ACCOUNT, "JobId": "job-00001", "Tags": [{"Key": "x", "Value": "y"}]},
    )
    backend.put_job_tags("job-00001", {"x": "y"})
    control.add_response("delete_job_tagging", {}, {"AccountId": ACCOUNT, "JobId": "job-00001"})
    backend.delete_job_tags("job-00001")


def test_repository_manifest_goes_to_the_staging_bucket() -> None:
    target = TARGET.model_copy(update={"staging_bucket": "staging"})
    control = boto3.client(
        "s3control", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    backend = AwsBackend(target, client=control, s3=s3)
    with Stubber(s3) as stub:
        stub.add_response(
            "put_object",
            {"ETag": '"e9"'},
            {"Bucket": "staging", "Key": ANY, "Body": b"b,k\n", "ContentType": "text/csv"},
        )
        manifest = backend.stage_manifest("hold", b"b,k\n")
    assert (manifest.bucket, manifest.etag) == ("staging", "e9")
    assert manifest.key.startswith("batchctl-manifests/hold/")
    with pytest.raises(BadRequest, match="stagingBucket"):
        AwsBackend(TARGET, client=control, s3=s3).stage_manifest("hold", b"x")
