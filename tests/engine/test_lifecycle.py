"""The seed's lifecycle: every path a job takes, preemption, and the failure threshold."""

from __future__ import annotations

import pytest

from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.status import JobStatus
from runner.stores.dirstore import DirStore
from tests.engine.conftest import (
    csv_manifest,
    history,
    put_objects,
    request,
    sleep_command,
    status,
    until,
)

GEN = {"generate": {"bucket": "logs"}}
TAG = {"tag": {"tags": {"a": "b"}}}
REPORT = {"bucket": "reports", "prefix": "r"}


def slow(seconds: float = 0.05) -> dict[str, object]:
    return {"invoke": {"command": sleep_command(seconds)}}


def test_auto_confirmed_path(engine: Engine, store: DirStore) -> None:
    put_objects(store, 5)
    job_id = engine.create_job(request(TAG, GEN, report=REPORT))
    Worker(engine, store).run(once=True)
    assert history(engine, job_id) == [
        "New",
        "Preparing",
        "Ready",
        "Active",
        "Completing",
        "Complete",
    ]
    job = engine.describe_job(job_id)
    assert (job.progress.total, job.progress.succeeded, job.progress.failed) == (5, 5, 0)
    assert job.terminated_at is not None


def test_manual_confirmation_path(engine: Engine, store: DirStore) -> None:
    put_objects(store, 3)
    job_id = engine.create_job(request(TAG, GEN, confirm=True))
    worker = Worker(engine, store)
    worker.run(once=True)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.SUSPENDED
    assert job.suspended_at is not None
    assert job.suspended_cause == "awaiting confirmation"
    assert job.progress.total == 3
    engine.update_job_status(job_id, "Ready")
    worker.run(once=True)
    assert history(engine, job_id) == [
        "New",
        "Preparing",
        "Suspended",
        "Ready",
        "Active",
        "Completing",
        "Complete",
    ]


def test_cancel_while_active(engine: Engine, store: DirStore) -> None:
    put_objects(store, 40)
    job_id = engine.create_job(request(slow(), GEN, report=REPORT))
    worker = Worker(engine, store, workers=2)
    until(lambda: engine.describe_job(job_id).progress.done >= 2, worker)
    assert engine.update_job_status(job_id, "Cancelled") is JobStatus.CANCELLING
    worker.run(once=True)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.CANCELLED
    assert 2 <= job.progress.done < 40
    assert history(engine, job_id)[-3:] == ["Active", "Cancelling", "Cancelled"]
    assert engine.report_location(job_id) is not None


def test_cancel_while_paused(engine: Engine, store: DirStore) -> None:
    put_objects(store, 30)
    low = engine.create_job(request(slow(), GEN, priority=1))
    worker = Worker(engine, store, workers=1)
    until(lambda: engine.describe_job(low).progress.done >= 1, worker)
    high = engine.create_job(request(slow(), GEN, priority=9))
    until(lambda: status(engine, low) is JobStatus.PAUSED, worker)
    engine.update_job_status(low, "Cancelled")
    worker.run(once=True)
    assert status(engine, low) is JobStatus.CANCELLED
    assert status(engine, high) is JobStatus.COMPLETE
    assert history(engine, low)[-4:] == ["Pausing", "Paused", "Cancelling", "Cancelled"]


def test_unreadable_manifest_fails_while_preparing(engine: Engine, store: DirStore) -> None:
    job_id = engine.create_job(request(TAG, {"csv": {"bucket": "manifests", "key": "nope.csv"}}))
    Worker(engine, store).run(once=True)
    job = engine.describe_job(job_id)
    assert history(engine, job_id) == ["New", "Preparing", "Failing", "Failed"]
    assert job.failure_reasons[0].code == "ManifestNotFound"
    assert "nope.csv" in job.failure_reasons[0].reason
    assert engine.report_location(job_id) is None


def test_missing_report_bucket_fails_before_any_task(engine: Engine, store: DirStore) -> None:
    put_objects(store, 2)
    job_id = engine.create_job(request(TAG, GEN, report={"bucket": "no-such-bucket"}))
    Worker(engine, store).run(once=True)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.failure_reasons[0].code == "ReportBucketNotFound"
    assert job.progress.done == 0


def test_empty_manifest_fails_and_says_why(engine: Engine, store: DirStore) -> None:
    job_id = engine.create_job(request(TAG, {"generate": {"bucket": "logs", "prefix": "none/"}}))
    Worker(engine, store).run(once=True)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.failure_reasons[0].code == "NoTasks"


def test_preemption_with_two_jobs(engine: Engine, store: DirStore) -> None:
    put_objects(store, 24)
    low = engine.create_job(request(slow(), GEN, priority=1))
    worker = Worker(engine, store, workers=1)
    until(lambda: engine.describe_job(low).progress.done >= 1, worker)
    high = engine.create_job(request(slow(0.01), GEN, priority=5))
    until(lambda: status(engine, high) is JobStatus.ACTIVE, worker)
    assert status(engine, low) is JobStatus.PAUSED
    worker.run(once=True)
    assert history(engine, low) == [
        "New",
        "Preparing",
        "Ready",
        "Active",
        "Pausing",
        "Paused",
        "Active",
        "Completing",
        "Complete",
    ]
    high_end = engine.describe_job(high).terminated_at
    low_end = engine.describe_job(low).terminated_at
    assert high_end is not None
    assert low_end is not None
    assert high_end < low_end
    assert engine.describe_job(low).progress.succeeded == 24


def test_preemption_with_three_jobs(engine: Engine, store: DirStore) -> None:
    put_objects(store, 24)
    low = engine.create_job(request(slow(), GEN, priority=1))
    worker = Worker(engine, store, workers=1)
    until(lambda: engine.describe_job(low).progress.done >= 1, worker)
    mid = engine.create_job(request(slow(), GEN, priority=5))
    until(lambda: engine.describe_job(mid).progress.done >= 1, worker)
    assert status(engine, low) is JobStatus.PAUSED
    high = engine.create_job(request(slow(0.01), GEN, priority=9))
    until(lambda: status(engine, high) is JobStatus.ACTIVE, worker)
    assert status(engine, mid) is JobStatus.PAUSED
    assert status(engine, low) is JobStatus.PAUSED
    worker.run(once=True)
    ends = {j: engine.describe_job(j).terminated_at for j in (low, mid, high)}
    assert sorted(ends, key=lambda j: ends[j]) == [high, mid, low]  # type: ignore[arg-type,return-value]
    assert "Paused" in history(engine, mid)
    assert history(engine, low).count("Paused") == 1


def test_ties_go_to_the_older_job(engine: Engine, store: DirStore) -> None:
    put_objects(store, 3)
    first = engine.create_job(request(slow(0.01), GEN, priority=5))
    second = engine.create_job(request(slow(0.01), GEN, priority=5))
    worker = Worker(engine, store, workers=1)
    until(lambda: status(engine, first) is JobStatus.ACTIVE, worker)
    assert status(engine, second) is JobStatus.READY
    worker.run(once=True)
    assert engine.describe_job(first).terminated_at < engine.describe_job(second).terminated_at  # type: ignore[operator]


def test_priority_change_takes_effect_at_once(engine: Engine, store: DirStore) -> None:
    put_objects(store, 24)
    first = engine.create_job(request(slow(), GEN, priority=5))
    worker = Worker(engine, store, workers=1)
    until(lambda: engine.describe_job(first).progress.done >= 1, worker)
    second = engine.create_job(request(slow(0.01), GEN, priority=1))
    until(lambda: status(engine, second) is JobStatus.READY, worker)
    engine.update_job_priority(second, 50)
    until(lambda: status(engine, second) is JobStatus.ACTIVE, worker)
    assert status(engine, first) is JobStatus.PAUSED
    worker.run(once=True)


def test_paused_job_resumes_when_the_higher_job_fails(engine: Engine, store: DirStore) -> None:
    put_objects(store, 24)
    low = engine.create_job(request(slow(), GEN, priority=1))
    worker = Worker(engine, store, workers=1)
    until(lambda: engine.describe_job(low).progress.done >= 1, worker)
    missing = csv_manifest(store, [f"logs,missing/{i}" for i in range(1001)])
    high = engine.create_job(request(TAG, missing, priority=9))
    worker.run(once=True)
    assert status(engine, high) is JobStatus.FAILED
    assert status(engine, low) is JobStatus.COMPLETE
    assert history(engine, low)[3:] == [
        "Active",
        "Pausing",
        "Paused",
        "Active",
        "Completing",
        "Complete",
    ]


def test_a_suspended_higher_job_takes_no_slot(engine: Engine, store: DirStore) -> None:
    put_objects(store, 4)
    low = engine.create_job(request(slow(0.01), GEN, priority=1))
    high = engine.create_job(request(TAG, GEN, priority=9, confirm=True))
    Worker(engine, store, workers=1).run(once=True)
    assert status(engine, high) is JobStatus.SUSPENDED
    assert status(engine, low) is JobStatus.COMPLETE
    assert "Paused" not in history(engine, low)


def _threshold_job(engine: Engine, store: DirStore, lines: list[str]) -> str:
    job_id = engine.create_job(request(TAG, csv_manifest(store, lines), report=REPORT))
    Worker(engine, store, workers=1).run(once=True)
    return job_id


def test_threshold_not_applied_at_1000_tasks(engine: Engine, store: DirStore) -> None:
    job_id = _threshold_job(engine, store, [f"logs,missing/{i}" for i in range(1000)])
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.COMPLETE
    assert (job.progress.succeeded, job.progress.failed) == (0, 1000)


def test_threshold_fails_the_job_at_1001_tasks(engine: Engine, store: DirStore) -> None:
    job_id = _threshold_job(engine, store, [f"logs,missing/{i}" for i in range(1001)])
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.failure_reasons[0].code == "TaskFailureThresholdExceeded"
    assert history(engine, job_id)[-2:] == ["Failing", "Failed"]
    assert engine.report_location(job_id) is not None


def test_threshold_at_exactly_half(engine: Engine, store: DirStore) -> None:
    put_objects(store, 1100)
    lines = []
    for i in range(1100):
        lines.append(f"logs,data/{i:06d}.txt")  # succeeds
        lines.append(f"logs,missing/{i}")  # fails
    job_id = _threshold_job(engine, store, lines)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.COMPLETE
    assert (job.progress.succeeded, job.progress.failed) == (1100, 1100)


def test_threshold_crossed_at_a_moment_fails_even_if_later_recovered(
    engine: Engine, store: DirStore
) -> None:
    put_objects(store, 1000)
    lines = [f"logs,missing/{i}" for i in range(1001)] + [
        f"logs,data/{i:06d}.txt" for i in range(1000)
    ]
    job_id = _threshold_job(engine, store, lines)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.progress.done < len(lines)


@pytest.mark.parametrize("slots", [1, 2])
def test_slots_bound_active_jobs(engine: Engine, store: DirStore, slots: int) -> None:
    put_objects(store, 6)
    jobs = [engine.create_job(request(slow(0.02), GEN, priority=i)) for i in range(3)]
    worker = Worker(engine, store, workers=1, slots=slots)
    seen = 0
    for _ in range(400):
        worker.tick()
        active = [j for j in jobs if status(engine, j) in (JobStatus.ACTIVE, JobStatus.PAUSING)]
        assert len(active) <= slots
        seen = max(seen, len(active))
        if all(status(engine, j).final for j in jobs):
            break
        import time

        time.sleep(0.01)
    worker.run(once=True)
    assert seen == slots
    assert all(status(engine, j) is JobStatus.COMPLETE for j in jobs)
