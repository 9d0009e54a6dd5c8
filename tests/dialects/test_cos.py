"""COS XML round trips: every request and response shape of the reference, written and read back.

Requests: what the backend writes, the served engine reads back to the same job.
Responses: what the served engine writes, the backend reads back to the same view.
The reference sheet's own examples are read by both sides as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.backends.cos import CosBackend
from runner.backends.local import LocalBackend
from runner.dialects import cos as cos_xml
from runner.dialects.xml import element_data
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.models import JobRequest
from runner.jobs.status import JobStatus
from runner.serve import cos_api
from runner.spec.models import CosTarget, LocalTarget
from tests.backends.test_cos import Offline, Transport
from tests.engine.conftest import request

TARGET = CosTarget(uin="100000000001", app_id="1250000000", region="ap-chengdu")
ROLE = "qcs::cam::uin/100000000001:roleName/COS_Batch_QcsRole"

OPERATIONS = [
    {"copy": {"bucket": "dst-1250000000"}},
    {
        "copy": {
            "bucket": "dst-1250000000",
            "prefix": "archive/",
            "stripPrefix": "2024/",
            "storageClass": "STANDARD_IA",
            "cannedAcl": "public-read",
            "metadataDirective": "REPLACE",
            "metadata": {
                "cacheControl": "no-cache",
                "contentDisposition": "inline",
                "contentEncoding": "gzip",
                "contentType": "text/plain",
                "expires": "2030-01-02T03:04:05Z",
                "user": {"team": "data", "owner": "ops"},
            },
            "taggingDirective": "REPLACE",
            "tags": {"class": "archive", "year": "2024"},
        }
    },
    {
        "copy": {
            "bucket": "dst-1250000000",
            "modifiedSince": "2024-01-01T00:00:00Z",
            "unmodifiedSince": "2025-06-30T12:00:00Z",
            "encryption": "AES256",
            "grants": [
                {"permission": "WRITE", "id": "qcs::cam::uin/100000000011:uin/100000000011"}
            ],
        }
    },
    {
        "copy": {
            "bucket": "dst-1250000000",
            "grants": [
                {"permission": "READ", "id": "qcs::cam::uin/100000000011:uin/100000000011"},
                {"permission": "FULL_CONTROL", "id": "qcs::cam::uin/100000000001:uin/100000000001"},
            ],
        }
    },
    {"restore": {"days": 7, "tier": "BULK"}},
    {"restore": {"days": 365, "tier": "STANDARD"}},
    {"delete": {}},
    {"tag": {"tags": {"a": "1", "b": "2"}}},
]
MANIFESTS = [
    {"csv": {"bucket": "src-1250000000", "key": "m/a b.csv", "etag": "abc"}},
    {
        "csv": {
            "bucket": "src-1250000000",
            "key": "m.csv",
            "etag": "abc",
            "versionId": "v1",
            "fields": ["Bucket", "Key", "VersionId"],
        }
    },
    {"inventory": {"bucket": "inv-1250000000", "key": "src/manifest.json", "etag": "def"}},
]
REPORTS = [
    None,
    {"bucket": "reports-1250000000", "prefix": "job-result", "scope": "all"},
    {"bucket": "reports-1250000000", "scope": "failed"},
]


def _body(job: JobRequest) -> bytes:
    etag = (job.manifest.csv or job.manifest.inventory).etag  # type: ignore[union-attr]
    return cos_xml.create_job_body(job, etag or "", TARGET.region, TARGET.app_id, ROLE)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: next(iter(o)))
@pytest.mark.parametrize("manifest", MANIFESTS, ids=["csv", "csv-versions", "inventory"])
@pytest.mark.parametrize("report", REPORTS, ids=["no-report", "all", "failed"])
def test_create_job_round_trips(
    operation: dict[str, Any], manifest: dict[str, Any], report: dict[str, Any] | None
) -> None:
    job = request(
        operation,
        manifest,
        report=report,
        confirm=True,
        priority=2_147_483_647,
        description="round trip [batchctl:rt:0123456789abcdef]",
        token="184ce261-18af-5e3d-3e30-253723cfd937",
    )
    assert cos_xml.request_from(_body(job)) == job


# The CreateJob example of the reference sheet (§2.1), as the document gives it.
DOC_CREATE = b"""<CreateJobRequest>
  <ClientRequestToken>184ce261-18af-5e3d-3e30-253723cfd937</ClientRequestToken>
  <ConfirmationRequired>false</ConfirmationRequired>
  <Description>example-job</Description>
  <Manifest>
    <Location>
      <ETag>"15150651828fa9cdcb8356b6d1c7638b"</ETag>
      <ObjectArn>qcs::cos:ap-chengdu::sourcebucket-1250000000/manifests/batch-copy-manifest.csv</ObjectArn>
    </Location>
    <Spec><Fields><member>Bucket</member><member>Key</member></Fields>
      <Format>COSBatchOperations_CSV_V1</Format></Spec>
  </Manifest>
  <Operation><COSPutObjectCopy>
    <TargetResource>qcs::cos:ap-chengdu:uid/1250000000:destinationbucket-1250000000</TargetResource>
  </COSPutObjectCopy></Operation>
  <Priority>10</Priority>
  <Report><Bucket>qcs::cos:ap-chengdu::sourcebucket-1250000000</Bucket><Enabled>true</Enabled>
    <Format>Report_CSV_V1</Format><Prefix>job-result</Prefix><ReportScope>AllTasks</ReportScope>
  </Report>
  <RoleArn>qcs::cam::uin/100000000001:roleName/COS_Batch_QcsRole</RoleArn>
</CreateJobRequest>"""

DOC_INVENTORY_MANIFEST = b"""<Manifest><Location><ETag>15150651828fa9cdcb8356b6d1c7638b</ETag>
<ObjectArn>qcs::cos:ap-chengdu::manifest-1250000000/1250000000/source/manifest/20190715/manifest.json</ObjectArn>
</Location><Spec><Format>COSInventoryReport_CSV_V1</Format></Spec></Manifest>"""


def test_the_reference_create_job_examples_are_read() -> None:
    job = cos_xml.request_from(DOC_CREATE)
    assert job.client_request_token == "184ce261-18af-5e3d-3e30-253723cfd937"
    assert job.description == "example-job"
    assert job.priority == 10
    assert not job.confirmation_required
    assert job.manifest.csv is not None
    assert (job.manifest.csv.bucket, job.manifest.csv.key) == (
        "sourcebucket-1250000000",
        "manifests/batch-copy-manifest.csv",
    )
    assert job.manifest.csv.etag == '"15150651828fa9cdcb8356b6d1c7638b"'
    assert job.operation.copy_ is not None
    assert job.operation.copy_.bucket == "destinationbucket-1250000000"
    assert job.report is not None
    assert (job.report.bucket, job.report.prefix, job.report.scope) == (
        "sourcebucket-1250000000",
        "job-result",
        "all",
    )
    import xml.etree.ElementTree as ET

    inventory = cos_xml.manifest_from(
        element_data(ET.fromstring(DOC_INVENTORY_MANIFEST), cos_xml.STYLE)
    )
    assert inventory == {
        "inventory": {
            "bucket": "manifest-1250000000",
            "key": "1250000000/source/manifest/20190715/manifest.json",
            "etag": "15150651828fa9cdcb8356b6d1c7638b",
        }
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<CreateJobRequest", "MalformedXML"),
        (DOC_CREATE.replace(b"<Priority>10</Priority>", b""), "MalformedXML: .* no Priority"),
        (DOC_CREATE.replace(b"COSBatchOperations_CSV_V1", b"CSV"), "MalformedXML: unknown"),
        (DOC_CREATE.replace(b"COSPutObjectCopy", b"COSPutObjectAcl"), "MalformedXML"),
        (DOC_CREATE.replace(b"qcs::cos:ap-chengdu:uid", b"arn:aws:s3"), "InvalidArgument"),
        (
            DOC_CREATE.replace(b"<ETag>", b"<X>").replace(b"</ETag>", b"</X>"),
            "ETag is required",
        ),
        (DOC_CREATE.replace(b"<Priority>10", b"<Priority>-1"), "InvalidArgument"),
        (
            DOC_CREATE.replace(
                b"</TargetResource>", b"</TargetResource><MetadataDirective>Add</MetadataDirective>"
            ),
            "Copy or Replaced",
        ),
    ],
)
def test_bad_create_job_bodies_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        cos_xml.request_from(body)


@pytest.fixture
def local(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    return backend


def _reader(*answers: tuple[int, bytes]) -> CosBackend:
    return CosBackend(
        TARGET, send=Transport(*answers), credentials=lambda: ("id", "key", None), objects=Offline()
    )


@pytest.mark.parametrize("manifest", MANIFESTS, ids=["csv", "csv-versions", "inventory"])
def test_describe_and_list_answers_round_trip(
    local: LocalBackend, manifest: dict[str, Any]
) -> None:
    job = request(
        OPERATIONS[1], manifest, report=REPORTS[1], description="d [batchctl:a:0123456789abcdef]"
    )
    job_id = local.create_job(job)
    local.update_job_status(job_id, "Cancelled", "not needed")
    detail = local.describe_job(job_id)
    api = cos_api.CosApi(local, region="ap-chengdu")
    _, described = api.handle("GET", f"/jobs/{job_id}", b"", "1250000000")
    seen = _reader((200, described)).describe_job(job_id)
    for field in ("job_id", "status", "priority", "description", "progress"):
        assert getattr(seen, field) == getattr(detail, field), field
    assert seen.created_at == detail.created_at.replace(microsecond=0)
    assert seen.operation == "copy"  # our name, as every backend says it
    assert seen.status_update_reason == "not needed"
    assert seen.report is not None
    assert seen.report["Prefix"] == "job-result"
    # the echoed creation request reads back to the job that was created
    echoed = cos_xml.request_from(
        cos_xml.document(
            "CreateJobRequest",
            {
                "ClientRequestToken": job.client_request_token,
                "Description": seen.description,
                "Manifest": seen.manifest,
                "Operation": seen.operation_params,
                "Priority": seen.priority,
                "Report": seen.report,
            },
        )
    )
    assert echoed.operation == job.operation
    assert echoed.manifest == job.manifest
    assert echoed.report == job.report
    _, listed = api.handle("GET", "/jobs?maxResults=5", b"", "1250000000")
    page = _reader((200, listed)).list_jobs(max_results=5)
    assert [(j.job_id, j.status, j.operation) for j in page.jobs] == [
        (job_id, detail.status, "copy")
    ]
    assert page.jobs[0].created_at == detail.created_at.replace(microsecond=0)


def test_priority_status_and_error_answers_round_trip(local: LocalBackend) -> None:
    job_id = local.create_job(request({"delete": {}}, MANIFESTS[0], confirm=True))
    api = cos_api.CosApi(local)
    _, answer = api.handle("POST", f"/jobs/{job_id}/priority?priority=77", b"", "1")
    assert _reader((200, answer)).update_job_priority(job_id, 77) == 77
    _, answer = api.handle("POST", f"/jobs/{job_id}/status?requestedJobStatus=Cancelled", b"", "1")
    assert _reader((200, answer)).update_job_status(job_id, "Cancelled") in (
        JobStatus.CANCELLING,
        JobStatus.CANCELLED,
    )
    cases: list[tuple[str, str, type[Exception]]] = [
        ("GET", "/jobs/nope", NotFound),
        ("POST", f"/jobs/{job_id}/status?requestedJobStatus=Ready", JobStatusError),
        ("POST", f"/jobs/{job_id}/status?requestedJobStatus=Paused", BadRequest),
        ("GET", "/jobs?jobStatuses=Sleeping", BadRequest),
        ("GET", "/jobs?maxResults=0", BadRequest),
        ("POST", f"/jobs/{job_id}/priority", BadRequest),
    ]
    for method, path, kind in cases:
        with pytest.raises(cos_api.JobServiceError) as raised:
            api.handle(method, path, b"", "1")
        assert isinstance(raised.value, cos_api.JobServiceError)
        status, code = cos_api.error_status(raised.value)
        body = cos_api.error_document(code, raised.value.message, path, "req-9")
        with pytest.raises(kind, match="RequestId req-9"):
            _reader((status, body))._request(method, path.split("?")[0])
    duplicate = request({"delete": {}}, MANIFESTS[0])
    api.handle("POST", "/jobs", _body(duplicate), "1")
    with pytest.raises(IdempotencyError) as raised_duplicate:
        api.handle("POST", "/jobs", _body(duplicate), "1")
    status, code = cos_api.error_status(raised_duplicate.value)
    body = cos_api.error_document(code, raised_duplicate.value.message, "/jobs", "req-10")
    with pytest.raises(IdempotencyError):
        _reader((status, body)).describe_job("x")
