"""The engine's job API: idempotent create, describe, list, priority and status updates."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.status import JobStatus
from runner.stores.dirstore import DirStore
from tests.engine.conftest import Clock, put_objects, request, sleep_command, status, until

GEN = {"generate": {"bucket": "logs"}}
TAG = {"tag": {"tags": {"a": "b"}}}


def test_create_is_idempotent_on_the_token(engine: Engine) -> None:
    first = engine.create_job(request(TAG, GEN, token="same"))
    again = engine.create_job(request(TAG, GEN, token="same"))
    assert first == again
    assert len(engine.list_jobs().jobs) == 1
    with pytest.raises(IdempotencyError, match="different request"):
        engine.create_job(request({"untag": {}}, GEN, token="same"))


def test_describe(engine: Engine) -> None:
    job_id = engine.create_job(
        request(TAG, GEN, priority=7, report={"bucket": "reports", "prefix": "p"})
    )
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.NEW
    assert job.priority == 7
    assert job.operation == "tag"
    assert job.operation_params == {"tag": {"tags": {"a": "b"}}}
    assert job.manifest == {"generate": {"bucket": "logs", "filters": {}, "versions": "current"}}
    assert job.report == {"bucket": "reports", "prefix": "p", "scope": "all"}
    assert job.progress.total == 0
    assert job.terminated_at is None
    with pytest.raises(NotFound):
        engine.describe_job("00000000-0000-0000-0000-000000000000")


def test_json_view_uses_camel_case(engine: Engine) -> None:
    job_id = engine.create_job(request(TAG, GEN))
    data = engine.describe_job(job_id).model_dump(mode="json", by_alias=True)
    for key in (
        "jobId",
        "status",
        "priority",
        "description",
        "operation",
        "createdAt",
        "terminatedAt",
        "failureReasons",
    ):
        assert key in data
    assert set(data["progress"]) >= {"total", "succeeded", "failed"}


def test_list_pages_filters_and_order(engine: Engine) -> None:
    ids = [engine.create_job(request(TAG, GEN, description=f"job number {i}")) for i in range(1005)]
    first = engine.list_jobs()
    assert len(first.jobs) == 1000
    assert first.jobs[0].job_id == ids[-1]
    assert first.next_token
    second = engine.list_jobs(next_token=first.next_token)
    assert [j.job_id for j in second.jobs] == list(reversed(ids[:5]))
    assert second.next_token is None
    small = engine.list_jobs(max_results=2)
    assert len(small.jobs) == 2
    assert [j.job_id for j in engine.list_jobs(description="number 1004").jobs] == [ids[1004]]
    assert len(engine.list_jobs(description="number 17").jobs) == 11  # 17, 170 … 179
    assert [j.job_id for j in engine.list_jobs(job_id=ids[3]).jobs] == [ids[3]]
    assert engine.list_jobs(statuses=[JobStatus.COMPLETE]).jobs == []
    assert len(engine.list_jobs(statuses=["New"], max_results=10).jobs) == 10
    with pytest.raises(BadRequest):
        engine.list_jobs(max_results=1001)
    with pytest.raises(BadRequest):
        engine.list_jobs(next_token="not-a-token")


def test_final_jobs_disappear_after_90_days(tmp_path: Path, store: DirStore) -> None:
    clock = Clock()
    engine = Engine(tmp_path / "state", clock=clock)
    put_objects(store, 3)
    done = engine.create_job(request(TAG, GEN))
    waiting = engine.create_job(request(TAG, GEN, confirm=True))
    Worker(engine, store).run(once=True)
    assert status(engine, done) is JobStatus.COMPLETE
    clock.now += 89 * 86400
    assert {j.job_id for j in engine.list_jobs().jobs} == {done, waiting}
    clock.now += 2 * 86400
    assert [j.job_id for j in engine.list_jobs().jobs] == [waiting]
    with pytest.raises(NotFound):
        engine.describe_job(done)
    engine.close()


def test_priority_until_final(engine: Engine, store: DirStore) -> None:
    put_objects(store, 2)
    job_id = engine.create_job(request(TAG, GEN))
    assert engine.update_job_priority(job_id, 99) == 99
    assert engine.describe_job(job_id).priority == 99
    with pytest.raises(BadRequest):
        engine.update_job_priority(job_id, 2**31)
    Worker(engine, store).run(once=True)
    with pytest.raises(JobStatusError, match="Complete"):
        engine.update_job_priority(job_id, 5)
    with pytest.raises(NotFound):
        engine.update_job_priority("nope", 5)


@pytest.mark.parametrize("current", ["New", "Suspended", "Ready"])
def test_cancel_is_accepted_before_running(engine: Engine, store: DirStore, current: str) -> None:
    put_objects(store, 2)
    job_id = engine.create_job(request(TAG, GEN, confirm=current == "Suspended"))
    worker = Worker(engine, store)
    if current == "Ready":
        # A higher-priority job holds the only slot, so ours stays Ready.
        blocker = engine.create_job(
            request({"invoke": {"command": sleep_command(0.3)}}, GEN, priority=100)
        )
        until(lambda: status(engine, blocker) is JobStatus.ACTIVE, worker)
    if current != "New":
        until(lambda: status(engine, job_id).value == current, worker)
    assert engine.update_job_status(job_id, "Cancelled", "not needed") is JobStatus.CANCELLING
    # Asking again while Cancelling is safe to retry.
    assert engine.update_job_status(job_id, "Cancelled") is JobStatus.CANCELLING
    worker.run(once=True)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.CANCELLED
    assert job.progress.done == 0
    assert [e[2] for e in engine.events(job_id)][-2:] == ["Cancelling", "Cancelled"]
    assert job.terminated_at is not None


@pytest.mark.parametrize("final", ["Complete", "Cancelled", "Failed"])
def test_final_jobs_refuse_every_status_request(
    engine: Engine, store: DirStore, final: str
) -> None:
    put_objects(store, 2)
    manifest = GEN if final != "Failed" else {"csv": {"bucket": "manifests", "key": "missing"}}
    job_id = engine.create_job(request(TAG, manifest))
    if final == "Cancelled":
        engine.update_job_status(job_id, "Cancelled")
    Worker(engine, store).run(once=True)
    assert status(engine, job_id).value == final
    for wanted in ("Ready", "Cancelled"):
        with pytest.raises(JobStatusError) as raised:
            engine.update_job_status(job_id, wanted)
        assert final in str(raised.value)
        assert wanted in str(raised.value)


def test_confirm_only_from_suspended(engine: Engine, store: DirStore) -> None:
    put_objects(store, 2)
    job_id = engine.create_job(request(TAG, GEN))
    with pytest.raises(JobStatusError, match="New: only a Suspended job can be confirmed"):
        engine.update_job_status(job_id, "Ready")
    with pytest.raises(BadRequest):
        engine.update_job_status(job_id, "Active")
    with pytest.raises(BadRequest):
        engine.update_job_status(job_id, "Paused")
    with pytest.raises(BadRequest):
        engine.update_job_status(job_id, "Cancelled", "x" * 257)
