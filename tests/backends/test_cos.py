"""The COS backend against a hand-written transport: request XML, signature, parsing, errors."""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from runner.backends.cos import CosBackend, environment_credentials
from runner.dialects.qsign import authorization
from runner.jobs.errors import BadRequest, IdempotencyError, NotFound
from runner.jobs.status import JobStatus
from runner.spec.models import CosTarget
from runner.stores.dirstore import DirStore
from tests.engine.conftest import request

TARGET = CosTarget(uin="100000000001", app_id="1250000000", region="ap-chengdu")
CREDS = ("AKIDcos", "cos-secret", "tmp-token")


class Transport:
    """Answers queued responses and keeps every request."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        self.sent.append({"method": method, "url": url, "headers": headers, "body": body})
        return self.answers.pop(0)


class Offline:
    """An object store that must not be used: these tests give every ETag."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the S3 endpoint was used ({name})")


def _backend(transport: Transport, objects: Any = None, target: CosTarget = TARGET) -> CosBackend:
    return CosBackend(
        target,
        send=transport,
        credentials=lambda: CREDS,
        clock=lambda: 1576812701.0,
        objects=objects or Offline(),
    )


def test_create_job_xml_and_signature() -> None:
    transport = Transport(
        (
            200,
            b"<CreateJobResult><JobId>53dc6228-c50b-46f7-8ad7-65e7159f1aae</JobId></CreateJobResult>",
        )
    )
    job = request(
        {
            "copy": {
                "bucket": "dst-1250000000",
                "prefix": "p/",
                "storageClass": "STANDARD_IA",
                "taggingDirective": "REPLACE",
                "tags": {"k": "v"},
            }
        },
        {
            "csv": {
                "bucket": "src-1250000000",
                "key": "m.csv",
                "etag": '"15150651828fa9cdcb8356b6d1c7638b"',
            }
        },
        report={"bucket": "reports-1250000000", "prefix": "job-result"},
        token="184ce261-18af-5e3d-3e30-253723cfd937",
        description="example-job",
    )
    assert _backend(transport).create_job(job) == "53dc6228-c50b-46f7-8ad7-65e7159f1aae"
    sent = transport.sent[0]
    assert sent["method"] == "POST"
    assert sent["url"] == "https://100000000001.cos-control.ap-chengdu.myqcloud.com/jobs"
    headers = sent["headers"]
    assert headers["x-cos-appid"] == "1250000000"
    assert headers["x-cos-security-token"] == "tmp-token"
    signed = {k: v for k, v in headers.items() if k != "Authorization"}
    assert headers["Authorization"] == authorization(
        "POST",
        "/jobs",
        {},
        signed,
        secret_id="AKIDcos",
        secret_key="cos-secret",
        key_time="1576812701;1576813301",
    )
    root = ET.fromstring(sent["body"])
    assert root.findtext("ClientRequestToken") == "184ce261-18af-5e3d-3e30-253723cfd937"
    assert root.findtext("ConfirmationRequired") == "false"
    assert root.findtext("Manifest/Spec/Format") == "COSBatchOperations_CSV_V1"
    assert [m.text for m in root.findall("Manifest/Spec/Fields/member")] == ["Bucket", "Key"]
    assert (
        root.findtext("Manifest/Location/ObjectArn")
        == "qcs::cos:ap-chengdu:uid/1250000000:src-1250000000/m.csv"
    )
    copy = root.find("Operation/COSPutObjectCopy")
    assert copy is not None
    assert copy.findtext("TargetResource") == "qcs::cos:ap-chengdu:uid/1250000000:dst-1250000000"
    assert copy.findtext("PrefixReplace") == "true"
    assert copy.findtext("TargetKeyPrefix") == "p/"
    assert copy.findtext("StorageClass") == "STANDARD_IA"
    assert copy.findtext("TaggingDirective") == "Replaced"
    assert copy.findtext("NewObjectTagging/COSTag/Key") == "k"
    assert root.findtext("Report/Enabled") == "true"
    assert root.findtext("Report/Format") == "Report_CSV_V1"
    assert root.findtext("Report/ReportScope") == "AllTasks"
    assert root.findtext("RoleArn") == "qcs::cam::uin/100000000001:roleName/COS_Batch_QcsRole"


@pytest.mark.parametrize(
    ("operation", "element", "check"),
    [
        (
            {"restore": {"days": 7, "tier": "STANDARD"}},
            "COSInitiateRestoreObject",
            ("JobTier", "Standard"),
        ),
        ({"delete": {}}, "COSDeleteObject", None),
        ({"tag": {"tags": {"a": "b"}}}, "COSPutObjectTagging", ("TagSet/COSTag/Value", "b")),
    ],
)
def test_other_operations(
    operation: dict[str, Any], element: str, check: tuple[str, str] | None
) -> None:
    transport = Transport((200, b"<CreateJobResult><JobId>j</JobId></CreateJobResult>"))
    _backend(transport).create_job(
        request(operation, {"csv": {"bucket": "b-1250000000", "key": "k", "etag": "e"}})
    )
    found = ET.fromstring(transport.sent[0]["body"]).find(f"Operation/{element}")
    assert found is not None
    if check:
        assert found.findtext(check[0]) == check[1]


DESCRIBE = b"""<DescribeJobResult><Job><ConfirmationRequired>false</ConfirmationRequired>
<CreationTime>2019-12-19T18:00:30Z</CreationTime><Description>example-job</Description>
<FailureReasons><JobFailure><FailureCode/><FailureReason/></JobFailure></FailureReasons>
<JobId>53dc6228-c50b-46f7-8ad7-65e7159f1aae</JobId>
<Operation><COSPutObjectCopy><TargetResource>qcs::cos:ap-chengdu:uid/1250000000:d-1250000000</TargetResource></COSPutObjectCopy></Operation>
<Priority>10</Priority><ProgressSummary><NumberOfTasksFailed>0</NumberOfTasksFailed>
<NumberOfTasksSucceeded>10</NumberOfTasksSucceeded><TotalNumberOfTasks>10</TotalNumberOfTasks></ProgressSummary>
<Report><Enabled>true</Enabled></Report><Status>Complete</Status>
<StatusUpdateReason>Job complete</StatusUpdateReason>
<TerminationDate>2019-12-19T18:00:42Z</TerminationDate></Job></DescribeJobResult>"""


def test_describe_and_list() -> None:
    member = (
        b"<member><CreationTime>2019-12-19T18:00:30Z</CreationTime><Description>d</Description>"
        b"<JobId>%s</JobId><Operation>COSPutObjectCopy</Operation><Priority>10</Priority>"
        b"<ProgressSummary><NumberOfTasksFailed>0</NumberOfTasksFailed><NumberOfTasksSucceeded>1"
        b"</NumberOfTasksSucceeded><TotalNumberOfTasks>1</TotalNumberOfTasks></ProgressSummary>"
        b"<Status>Active</Status></member>"
    )
    page = (
        b"<ListJobsResult><Jobs>"
        + member % b"j1"
        + member % b"j2"
        + b"</Jobs><NextToken>j2</NextToken></ListJobsResult>"
    )
    transport = Transport((200, DESCRIBE), (200, page), (200, page))
    backend = _backend(transport)
    job = backend.describe_job("53dc6228-c50b-46f7-8ad7-65e7159f1aae")
    assert (job.status, job.progress.succeeded, job.operation) == (
        JobStatus.COMPLETE,
        10,
        "copy",  # our name, as every backend says it
    )
    assert job.failure_reasons == []
    assert job.status_update_reason == "Job complete"
    full = backend.list_jobs(max_results=2, statuses=["Active"])
    assert [j.job_id for j in full.jobs] == ["j1", "j2"]
    assert full.next_token == "j2"
    assert "jobStatuses=Active" in transport.sent[1]["url"]
    short = backend.list_jobs(max_results=1000)
    assert short.next_token is None  # COS names a token even on the last page


def _error(code: str, message: str, status: int) -> tuple[int, bytes]:
    body = (
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>req-123</RequestId></Error>"
    )
    return status, body.encode()


def test_errors_and_retries() -> None:
    backend = _backend(Transport(_error("NoSuchJob", "The specified job does not exist", 404)))
    with pytest.raises(NotFound, match="RequestId req-123"):
        backend.describe_job("nope")
    duplicate = _backend(Transport(_error("InvalidRequest", "Duplicate request", 400)))
    with pytest.raises(IdempotencyError):
        duplicate.create_job(
            request({"delete": {}}, {"csv": {"bucket": "b-1250000000", "key": "k", "etag": "e"}})
        )
    transport = Transport(
        _error("SlowDown", "slow down", 503),
        (
            200,
            b"<UpdateJobPriorityResult><JobId>j</JobId><Priority>5</Priority></UpdateJobPriorityResult>",
        ),
    )
    assert _backend(transport).update_job_priority("j", 5) == 5
    assert len(transport.sent) == 2
    assert urllib.parse.urlsplit(transport.sent[1]["url"]).query == "priority=5"


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "COS_SECRET_ID",
        "COS_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadRequest, match="TENCENTCLOUD_SECRET_ID"):
        environment_credentials()
    monkeypatch.setenv("COS_SECRET_ID", "id")
    monkeypatch.setenv("COS_SECRET_KEY", "very-secret-value")
    assert environment_credentials()[:2] == ("id", "very-secret-value")


def _objects(tmp_path: Path) -> DirStore:
    store = DirStore(tmp_path / "objects")
    for bucket in ("logs-1250000000", "staging-1250000000"):
        store.create_bucket(bucket)
    for name in ("a.log", "b.log", "c.txt", "sub dir/d.log"):
        store.put("logs-1250000000", f"2024/{name}", b"x")
    store.put("logs-1250000000", "m.csv", b"logs-1250000000,2024/a.log\n")
    return store


def test_an_unpinned_manifest_is_pinned_through_the_s3_endpoint(tmp_path: Path) -> None:
    objects = _objects(tmp_path)
    transport = Transport((200, b"<CreateJobResult><JobId>j</JobId></CreateJobResult>"))
    _backend(transport, objects).create_job(
        request({"delete": {}}, {"csv": {"bucket": "logs-1250000000", "key": "m.csv"}})
    )
    etag = ET.fromstring(transport.sent[0]["body"]).findtext("Manifest/Location/ETag")
    assert etag == objects.head("logs-1250000000", "m.csv").etag.strip('"')
    with pytest.raises(BadRequest, match="cannot read the ETag of manifest logs-1250000000/nope"):
        _backend(Transport(), objects).create_job(
            request({"delete": {}}, {"csv": {"bucket": "logs-1250000000", "key": "nope"}})
        )


def test_generated_and_repository_manifests_are_staged(tmp_path: Path) -> None:
    objects = _objects(tmp_path)
    staged = TARGET.model_copy(update={"staging_bucket": "staging-1250000000"})
    transport = Transport(*[(200, b"<CreateJobResult><JobId>j</JobId></CreateJobResult>")] * 2)
    backend = _backend(transport, objects, staged)
    backend.create_job(
        request(
            {"tag": {"tags": {"k": "v"}}},
            {
                "generate": {
                    "bucket": "logs-1250000000",
                    "prefix": "2024/",
                    "filters": {"keyMatches": "**/*.log"},
                }
            },
            description="t [batchctl:tag-logs:0123456789abcdef]",
        )
    )
    root = ET.fromstring(transport.sent[0]["body"])
    arn = root.findtext("Manifest/Location/ObjectArn") or ""
    prefix = "qcs::cos:ap-chengdu:uid/1250000000:staging-1250000000/"
    assert arn.startswith(prefix + "batchctl-manifests/tag-logs/")
    key = arn.removeprefix(prefix)
    with objects.open("staging-1250000000", key) as stream:
        assert stream.read().decode().splitlines() == [
            "logs-1250000000,2024/a.log",
            "logs-1250000000,2024/b.log",
            "logs-1250000000,2024/sub%20dir/d.log",
        ]
    assert root.findtext("Manifest/Location/ETag") == objects.head(
        "staging-1250000000", key
    ).etag.strip('"')
    pinned = backend.stage_manifest("hold", b"logs-1250000000,2024/a.log\n")
    assert pinned.bucket == "staging-1250000000"
    assert pinned.etag == objects.head("staging-1250000000", pinned.key).etag.strip('"')
    with pytest.raises(BadRequest, match=r"manifest\.file on a cos target needs stagingBucket"):
        _backend(Transport(), objects).stage_manifest("hold", b"")
