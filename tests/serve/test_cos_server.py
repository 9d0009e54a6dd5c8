"""The COS backend drives the COS dialect of `engine serve` on 127.0.0.1 over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends.cos import CosBackend, urllib_send
from runner.backends.local import LocalBackend
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.status import JobStatus
from runner.serve.server import EngineServer
from runner.spec.models import CosTarget, LocalTarget
from tests.engine.conftest import put_objects, request

KEY, SECRET = "AKIDSERVECOS", "serve-cos-secret"
Served = tuple[CosBackend, LocalBackend, EngineServer]


def _cos(server: EngineServer, local: LocalBackend, secret: str = SECRET) -> CosBackend:
    target = CosTarget(
        uin="100000000001", app_id="1250000000", region="ap-guangzhou", endpoint=server.url
    )
    return CosBackend(
        target,
        send=urllib_send,
        credentials=lambda: (KEY, secret, None),
        objects=local.store,  # the engine's own store stands in for COS's S3 endpoint
        max_attempts=2,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    for bucket in ("logs-1250000000", "reports-1250000000"):
        local.store.create_bucket(bucket)
    put_objects(local.store, 12, bucket="logs-1250000000")  # type: ignore[arg-type]
    local.store.put(
        "logs-1250000000",
        "m.csv",
        "".join(f"logs-1250000000,data/{i:06d}.txt\n" for i in range(12)).encode(),
    )
    server = EngineServer(local, {KEY: SECRET})
    server.start()
    cos = _cos(server, local)
    yield cos, local, server
    server.shutdown()
    local.close()


def _run_until(local: LocalBackend, cos: CosBackend, job_id: str, wanted: JobStatus) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=local.worker().run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while cos.describe_job(job_id).status is not wanted:
            assert time.monotonic() < deadline, cos.describe_job(job_id).status
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()


def test_the_cos_job_api_end_to_end(served: Served) -> None:
    cos, local, _ = served
    job = request(
        {"tag": {"tags": {"k": "v"}}},
        {"csv": {"bucket": "logs-1250000000", "key": "m.csv"}},  # pinned by the backend
        report={"bucket": "reports-1250000000", "prefix": "out"},
        confirm=True,
        description="served [batchctl:tag-logs:0123456789abcdef]",
        token="cos-1",
    )
    job_id = cos.create_job(job)
    with pytest.raises(IdempotencyError, match="Duplicate request"):
        cos.create_job(job)  # COS refuses a reused token, even for the same request
    listed = cos.list_jobs()
    assert [j.job_id for j in listed.jobs] == [job_id]
    assert listed.next_token is None  # a short page ends the listing despite COS's NextToken
    assert listed.jobs[0].operation == "tag"  # our name, as every backend says it
    assert cos.update_job_priority(job_id, 42) == 42
    _run_until(local, cos, job_id, JobStatus.SUSPENDED)
    assert cos.update_job_status(job_id, "Ready", "confirmed") is JobStatus.READY
    _run_until(local, cos, job_id, JobStatus.COMPLETE)
    detail = cos.describe_job(job_id)
    assert (detail.progress.total, detail.progress.succeeded) == (12, 12)
    assert detail.priority == 42
    assert detail.operation == "tag"
    assert detail.failure_reasons == []
    assert detail.report is not None
    assert detail.report["Prefix"] == "out"
    assert detail.manifest["Spec"]["Format"] == "COSBatchOperations_CSV_V1"
    assert detail.manifest["Location"]["ETag"] == local.store.head(
        "logs-1250000000", "m.csv"
    ).etag.strip('"')
    assert local.store.get_tags("logs-1250000000", "data/000003.txt") == {"k": "v"}
    assert [j.job_id for j in cos.list_jobs(statuses=["Complete"]).jobs] == [job_id]
    assert cos.list_jobs(statuses=["Active"]).jobs == []
    with pytest.raises(JobStatusError):
        cos.update_job_status(job_id, "Cancelled")
    with pytest.raises(NotFound, match="NoSuchJob"):
        cos.update_job_priority(job_id, 1)  # COS: "does not exist or already completed"
    with pytest.raises(NotFound, match="NoSuchJob"):
        cos.describe_job("00000000-0000-0000-0000-000000000000")
    with pytest.raises(BadRequest, match="InvalidArgument"):
        cos.update_job_priority(job_id, 2**31)


def test_paging_by_job_id_over_more_than_1000_jobs(served: Served) -> None:
    cos, local, _ = served
    manifest = {"csv": {"bucket": "logs-1250000000", "key": "m.csv", "etag": "e"}}
    for i in range(1003):  # made straight in the engine: the paging over HTTP is under test
        local.create_job(request({"delete": {}}, manifest, token=f"p-{i}"))
    first = cos.list_jobs()
    assert len(first.jobs) == 1000
    assert first.next_token == first.jobs[-1].job_id  # COS's token is the last JobId
    second = cos.list_jobs(next_token=first.next_token)
    assert len(second.jobs) == 3
    assert second.next_token is None
    assert not {j.job_id for j in first.jobs} & {j.job_id for j in second.jobs}


def test_a_bad_signature_is_refused(served: Served) -> None:
    _, local, server = served
    impostor = _cos(server, local, secret="not-the-secret")
    with pytest.raises(BadRequest, match="SignatureDoesNotMatch"):
        impostor.list_jobs()


def test_errors_come_in_cos_xml(served: Served) -> None:
    import xml.etree.ElementTree as ET

    from runner.dialects.qsign import authorization

    _, _, server = served
    headers = {"Host": f"127.0.0.1:{server.port}", "x-cos-appid": "1250000000"}
    headers["Authorization"] = authorization(
        "POST",
        "/jobs",
        {},
        headers,
        secret_id=KEY,
        secret_key=SECRET,
        key_time=f"{int(time.time())};{int(time.time()) + 60}",
    )
    status, body = urllib_send("POST", f"{server.url}/jobs", headers, b"<CreateJobRequest>")
    assert status == 400
    error = ET.fromstring(body)
    assert error.tag == "Error"
    assert error.findtext("Code") == "MalformedXML"
    assert error.findtext("Resource") == "/jobs"
    assert error.findtext("RequestId")
    headers.pop("x-cos-appid")
    status, body = urllib_send("GET", f"{server.url}/jobs", headers, b"")
    assert status == 403  # x-cos-appid was signed and is gone: the signature no longer holds


def test_a_lost_create_answer_is_resolved_by_the_marker(served: Served) -> None:
    from runner.reconcile.apply import _create
    from runner.spec.identity import marker

    cos, local, _ = served
    lost: list[str] = []

    def drop_first_create(
        method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        answer = urllib_send(method, url, headers, body)
        if method == "POST" and url.endswith("/jobs") and not lost:
            lost.append(url)
            raise ConnectionResetError("the answer was lost")  # the job exists on the server
        return answer

    cos.send = drop_first_create
    text = marker("lost-answer", "0123456789abcdef")
    job = request(
        {"delete": {}},
        {"csv": {"bucket": "logs-1250000000", "key": "m.csv", "etag": "e"}},
        description=f"d {text}",
        token="lost-1",
    )
    notes: list[str] = []
    job_id = _create(cos, job, text, notes.append)
    assert lost  # the first answer was dropped after the job was made
    assert [j.job_id for j in local.list_jobs().jobs] == [job_id]  # one job, found, not re-made
    assert "looking for the job before retrying" in notes[0]
