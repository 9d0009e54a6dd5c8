"""`engine serve` speaking GCS batch operations, driven by Google's official client (REST)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget

sbo = pytest.importorskip("google.cloud.storagebatchoperations_v1")
g = pytest.importorskip("google.api_core.exceptions")

TOKEN = "gcs-test-token"
PARENT = "projects/media-prod-1/locations/global"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EngineServer, LocalBackend]]:
    local = LocalBackend(LocalTarget.model_validate({"stateDir": "served"}), tmp_path)
    for bucket in ("media", "lists"):
        local.store.create_bucket(bucket)
    for index in range(4):
        local.store.put("media", f"photos/{index}.jpg", b"jpeg")
    local.store.put("media", "keep/readme.txt", b"text")
    server = EngineServer(local, {"AKID": "secret"}, gcs_token=TOKEN)
    server.start()
    stop = threading.Event()
    worker = threading.Thread(target=local.worker().run, kwargs={"stop": stop}, daemon=True)
    worker.start()
    yield server, local
    stop.set()
    worker.join(timeout=30)
    server.shutdown()
    local.close()


def client(server: EngineServer, token: str = TOKEN) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.oauth2.credentials import Credentials

    return sbo.StorageBatchOperationsClient(
        transport="rest",
        credentials=Credentials(token=token),
        client_options=ClientOptions(api_endpoint=server.url),
    )


def rpc_status(exc: Any) -> str:
    """The google.rpc.Status name of an error answer."""
    return str(exc.response.json()["error"]["status"])


def wait_for(c: Any, name: str, states: set[int], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = c.get_job(name=name)
        if int(job.state) in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{name} stayed {job.state}")


def delete_job(prefix: str, **extra: Any) -> Any:
    return sbo.Job(
        description="delete photos [batchctl:photos:0123456789abcdef]",
        bucket_list=sbo.BucketList(
            buckets=[
                sbo.BucketList.Bucket(
                    bucket="media",
                    prefix_list=sbo.PrefixList(included_object_prefixes=[prefix]),
                )
            ]
        ),
        **extra,
    )


def test_a_job_from_create_to_delete(served: tuple[EngineServer, LocalBackend]) -> None:
    server, local = served
    c = client(server)
    operation = c.create_job(
        request={
            "parent": PARENT,
            "job_id": "photos-1",
            "job": delete_job("photos/", delete_object=sbo.DeleteObject()),
            "request_id": "9f0d3d52-6f0e-4d8b-8a55-3f5e3b1c1d10",
        }
    )
    created = operation.result(timeout=30)
    assert created.name == f"{PARENT}/jobs/photos-1"
    done = wait_for(c, created.name, {2})  # SUCCEEDED
    assert (done.counters.total_object_count, done.counters.succeeded_object_count) == (4, 4)
    assert [o.key for o in local.store.list("media")] == ["keep/readme.txt"]
    listed = list(c.list_jobs(parent=PARENT))
    assert [j.name for j in listed] == [created.name]
    assert listed[0].delete_object is not None
    assert listed[0].description.startswith("delete")
    with pytest.raises(g.BadRequest) as refused:  # the client picks its class by HTTP status
        c.cancel_job(name=created.name)
    assert rpc_status(refused.value) == "FAILED_PRECONDITION"
    c.delete_job(name=created.name)
    with pytest.raises(g.NotFound):
        c.get_job(name=created.name)
    assert list(c.list_jobs(parent=PARENT)) == []


def test_the_job_id_is_the_idempotency_key(served: tuple[EngineServer, LocalBackend]) -> None:
    server, _ = served
    c = client(server)
    first = {"parent": PARENT, "job_id": "hold-1", "request_id": "r-1"}
    job = delete_job("keep/", put_object_hold=sbo.PutObjectHold(temporary_hold=1))
    one = c.create_job(request={**first, "job": job}).result(timeout=30)
    again = c.create_job(request={**first, "job": job}).result(timeout=30)  # a retried request
    assert again.name == one.name
    assert again.create_time == one.create_time
    with pytest.raises(g.Conflict) as refused:
        c.create_job(request={**first, "request_id": "r-2", "job": job})
    assert rpc_status(refused.value) == "ALREADY_EXISTS"


def test_failed_objects_show_as_error_summaries(served: tuple[EngineServer, LocalBackend]) -> None:
    server, local = served
    c = client(server)
    hold = delete_job("keep/", put_object_hold=sbo.PutObjectHold(temporary_hold=1))
    held = c.create_job(request={"parent": PARENT, "job_id": "hold", "job": hold}).result()
    wait_for(c, held.name, {2})
    assert local.store.get_legal_hold("media", "keep/readme.txt")
    doomed = delete_job("keep/", delete_object=sbo.DeleteObject())
    job = c.create_job(request={"parent": PARENT, "job_id": "rm", "job": doomed}).result()
    done = wait_for(c, job.name, {2, 4})
    assert done.counters.failed_object_count == 1
    (summary,) = done.error_summaries
    assert summary.error_count == 1
    assert summary.error_log_entries[0].object_uri == "gs://media/keep/readme.txt"


def _raw_list(server: EngineServer, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{server.url}/v1/{PARENT}/jobs", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_requests_without_the_token_are_refused(
    served: tuple[EngineServer, LocalBackend], tmp_path: Path
) -> None:
    from google.auth.exceptions import RefreshError

    server, local = served
    for token in ("wrong", None):
        status, body = _raw_list(server, token)
        assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert _raw_list(server, TOKEN)[0] == 200
    # google-auth answers a 401 by refreshing the token, which a bare token cannot do
    with pytest.raises((g.Unauthenticated, RefreshError)):
        list(client(server, token="wrong").list_jobs(parent=PARENT))
    closed = EngineServer(local, {"AKID": "secret"})  # no GCS token configured
    closed.start()
    try:
        status, body = _raw_list(closed, TOKEN)
        assert status == 401
        assert "BATCHCTL_SERVE_GCS_TOKEN" in body["error"]["message"]
        assert closed.gcs is None  # GCS off: nothing of it opened
    finally:
        closed.shutdown()


def test_what_the_engine_cannot_run_is_an_invalid_argument(
    served: tuple[EngineServer, LocalBackend],
) -> None:
    server, _ = served
    c = client(server)
    two = sbo.Job(
        bucket_list=sbo.BucketList(
            buckets=[sbo.BucketList.Bucket(bucket="a"), sbo.BucketList.Bucket(bucket="b")]
        ),
        delete_object=sbo.DeleteObject(),
    )
    with pytest.raises(g.BadRequest, match="one bucket per job") as refused:
        c.create_job(request={"parent": PARENT, "job_id": "two", "job": two})
    assert rpc_status(refused.value) == "INVALID_ARGUMENT"
    with pytest.raises(g.BadRequest, match="jobId"):
        c.create_job(request={"parent": PARENT, "job_id": "Bad_ID", "job": two})
    # a refused create leaves its job ID free
    one = delete_job("keep/", delete_object=sbo.DeleteObject())
    made = c.create_job(request={"parent": PARENT, "job_id": "two", "job": one}).result()
    assert made.name == f"{PARENT}/jobs/two"
    assert [j.name for j in c.list_jobs(parent=PARENT)] == [made.name]


def test_a_create_whose_answer_was_lost_finds_its_job(
    served: tuple[EngineServer, LocalBackend],
) -> None:
    from google.oauth2.credentials import Credentials

    from runner.backends.gcs import GcsBackend
    from runner.dialects import gcs
    from runner.jobs.errors import IdempotencyError
    from runner.spec.models import GcsTarget
    from tests.engine.conftest import request

    server, _ = served
    backend = GcsBackend(
        GcsTarget(project="media-prod-1", endpoint=server.url),
        credentials=Credentials(token=TOKEN),
    )
    try:
        wanted = request(
            {"hold": {"temporary": True}},
            {"generate": {"bucket": "media", "prefix": "keep/"}},
            token="tok-1",
            description="hold [batchctl:keep:0123456789abcdef]",
        )
        job_id = gcs.job_id_for("keep", "tok-1")
        # the first attempt reached the service; its answer did not come back
        body = sbo.Job.from_json(json.dumps(gcs.job_body(wanted)))
        client(server).create_job(
            request={"parent": PARENT, "job_id": job_id, "job": body, "request_id": "lost"}
        )
        assert backend.create_job(wanted) == job_id  # ALREADY_EXISTS: the job is ours
        assert len(backend.list_jobs().jobs) == 1
        other = request(
            {"delete": {}},
            {"generate": {"bucket": "media", "prefix": "keep/"}},
            token="tok-1",
            description="hold [batchctl:keep:0123456789abcdef]",
        )
        with pytest.raises(IdempotencyError):
            backend.create_job(other)
    finally:
        backend.close()


def test_the_readme_example_runs_against_serve(
    served: tuple[EngineServer, LocalBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    server, _ = served
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "sbo." in b]
    code = code.replace("http://127.0.0.1:8090", server.url).replace("local-gcs-token", TOKEN)
    c = client(server)
    job = delete_job("keep/", delete_object=sbo.DeleteObject())
    parent = "projects/my-project/locations/global"
    made = c.create_job(request={"parent": parent, "job_id": "readme", "job": job}).result()
    wait_for(c, made.name, {2})
    exec(compile(code, "README.md", "exec"), {})  # the README's own example
    assert capsys.readouterr().out.split() == [made.name, "SUCCEEDED", "1"]


def test_an_s3_store_on_gcs_sends_path_style() -> None:
    from runner.stores.s3 import addressing_style

    # GCS's XML API documents path-style and virtual-hosted endpoints alike
    assert addressing_style("https://storage.googleapis.com") == "path"


def test_an_unreachable_endpoint_is_a_retryable_error() -> None:
    import socket

    from google.oauth2.credentials import Credentials

    from runner.backends.gcs import GcsBackend
    from runner.jobs.errors import ServiceUnavailable
    from runner.spec.models import GcsTarget

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = GcsBackend(
        GcsTarget(project="media-prod-1", endpoint=f"http://127.0.0.1:{port}"),
        credentials=Credentials(token=TOKEN),
    )
    try:
        with pytest.raises(ServiceUnavailable, match="cannot reach the GCS endpoint") as caught:
            backend.list_jobs()
        assert caught.value.retryable
    finally:
        backend.close()
