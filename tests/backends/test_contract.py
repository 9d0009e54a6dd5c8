"""One contract for every JobService backend (a parametrised fixture lists them all)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends.aws import AwsBackend
from runner.backends.base import JobService
from runner.backends.cos import CosBackend, urllib_send
from runner.backends.local import LocalBackend
from runner.backends.memory import MemoryBackend
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.status import JobStatus
from runner.serve.server import EngineServer
from runner.spec.models import AwsTarget, CosTarget, LocalTarget
from tests.engine.conftest import request

BACKENDS = ["local", "memory", "aws", "cos", "gcs"]
GEN = {"generate": {"bucket": "logs"}}
TAG = {"tag": {"tags": {"a": "b"}}}
KEY, SECRET, ACCOUNT = "AKIDCONTRACT", "contract-secret", "123456789012"

# Where a backend differs because its service does, named (the README's Fidelity table).
DIFFERENCES = {
    ("cos", "same-token-same-job"): "COS refuses a reused ClientRequestToken even for the "
    "same request; batchctl finds the job by its marker instead of resending",
    ("aws", "stage_manifest"): "stages into the Target's stagingBucket on S3: needs an S3 "
    "endpoint (covered by the aws campaign in tests/serve/test_server.py)",
    ("cos", "stage_manifest"): "stages into the Target's stagingBucket on COS's S3 endpoint "
    "(covered by the campaign in tests/serve/test_cos_campaign.py)",
    ("gcs", "stage_manifest"): "GCS targets take csv manifests in a bucket, not manifest.file",
    ("gcs", "priority"): "GCS batch operations have no priority and no confirmation",
}
GCS_TOKEN = "contract-token"


def operation(service: JobService) -> dict[str, object]:
    """An operation the service runs: tag, or a hold on GCS (which has no tagging)."""
    if getattr(service, "contract_name", "") == "gcs":
        return {"hold": {"temporary": True}}
    return TAG


def differs(service: JobService, case: str) -> None:
    """Skip, naming why, where this backend's service differs from the others."""
    why = DIFFERENCES.get((getattr(service, "contract_name", ""), case))
    if why:
        pytest.skip(why)


@pytest.fixture(params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobService]:
    if request.param == "memory":
        memory = MemoryBackend()
        yield memory
        memory.close()
        return
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    if request.param == "local":
        yield local
        local.close()
        return
    # aws and cos: their own clients against `engine serve` over real HTTP
    local.store.create_bucket("logs")
    local.store.create_bucket("logs-1250000000")  # COS's staging bucket (name-APPID)
    server = EngineServer(local, {KEY: SECRET}, gcs_token=GCS_TOKEN)
    server.start()
    found: JobService
    if request.param == "gcs":
        from google.oauth2.credentials import Credentials

        from runner.backends.gcs import GcsBackend
        from runner.spec.models import GcsTarget

        found = GcsBackend(
            GcsTarget(project="contract-1", endpoint=server.url),
            credentials=Credentials(token=GCS_TOKEN),
        )
    elif request.param == "aws":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        found = AwsBackend(
            AwsTarget(
                account_id=ACCOUNT,
                region="us-east-1",
                role_arn=f"arn:aws:iam::{ACCOUNT}:role/r",
                endpoint_url=server.url,
            )
        )
    else:
        found = CosBackend(
            CosTarget(
                uin="100000000001",
                app_id="1250000000",
                region="ap-guangzhou",
                endpoint=server.url,
                staging_bucket="logs-1250000000",
            ),
            send=urllib_send,
            credentials=lambda: (KEY, SECRET, None),
            objects=local.store,
            max_attempts=2,
        )
    found.contract_name = request.param  # type: ignore[attr-defined]
    yield found
    found.close()
    server.shutdown()
    local.close()


def test_create_is_idempotent(service: JobService) -> None:
    op = operation(service)
    first = service.create_job(request(op, GEN, token="t1"))
    differs(service, "same-token-same-job")
    assert service.create_job(request(op, GEN, token="t1")) == first
    other = {"delete": {}} if next(iter(op)) == "hold" else {"untag": {}}
    with pytest.raises(IdempotencyError):
        service.create_job(request(other, GEN, token="t1"))


def test_describe_and_not_found(service: JobService) -> None:
    op = operation(service)
    job_id = service.create_job(request(op, GEN, priority=3, description="hello"))
    job = service.describe_job(job_id)
    assert (job.job_id, job.description) == (job_id, "hello")
    assert job.operation == next(iter(op))
    if getattr(service, "contract_name", "") != "gcs":  # no priority; queued is Ready
        assert (job.status, job.priority) == (JobStatus.NEW, 3)
    with pytest.raises(NotFound):
        service.describe_job("missing")


def test_list_pages_newest_first(service: JobService) -> None:
    op = operation(service)
    ids = [service.create_job(request(op, GEN, description=f"j{i}")) for i in range(5)]
    first = service.list_jobs(max_results=2)
    assert [j.job_id for j in first.jobs] == [ids[4], ids[3]]
    assert first.next_token
    second = service.list_jobs(max_results=2, next_token=first.next_token)
    assert [j.job_id for j in second.jobs] == [ids[2], ids[1]]
    third = service.list_jobs(max_results=2, next_token=second.next_token)
    assert [j.job_id for j in third.jobs] == [ids[0]]
    assert third.next_token is None
    assert [j.job_id for j in service.list_jobs(description="j3").jobs] == [ids[3]]
    assert service.list_jobs(statuses=[JobStatus.ACTIVE]).jobs == []
    with pytest.raises(BadRequest):
        service.list_jobs(max_results=1001)


def test_status_and_priority_rules(service: JobService) -> None:
    differs(service, "priority")
    job_id = service.create_job(request(TAG, GEN))
    assert service.update_job_priority(job_id, 77) == 77
    assert service.describe_job(job_id).priority == 77
    with pytest.raises(JobStatusError):
        service.update_job_status(job_id, JobStatus.READY)
    with pytest.raises(BadRequest):
        service.update_job_status(job_id, JobStatus.ACTIVE)
    assert service.update_job_status(job_id, JobStatus.CANCELLED) is JobStatus.CANCELLING
    assert service.update_job_status(job_id, JobStatus.CANCELLED) is JobStatus.CANCELLING
    with pytest.raises(NotFound):
        service.update_job_priority("missing", 1)


def test_stage_manifest(service: JobService) -> None:
    differs(service, "stage_manifest")
    manifest = service.stage_manifest("job-a", b"logs,a\n")
    assert manifest.bucket
    assert manifest.key.startswith("job-a/")
    assert manifest.etag
