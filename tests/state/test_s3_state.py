"""The ledger and the lease in a bucket, on a real S3 server (moto): conditional writes hold."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from runner.jobs.progress import Counts
from runner.jobs.status import JobStatus
from runner.state.ledger.bucket import S3Ledger, StateError
from runner.state.locks.lease import S3Lease
from runner.state.records import LedgerRecord
from runner.support.filelock import LockHeld
from tests.servers import CREDENTIALS


@pytest.fixture
def bucket(moto_endpoint: str) -> Iterator[tuple[Any, str]]:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDENTIALS)
    name = f"state-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def _record(name: str, generation: int = 1, status: JobStatus = JobStatus.NEW) -> LedgerRecord:
    return LedgerRecord(
        target="local",
        name=name,
        generation=generation,
        job_id=f"job-{name}-{generation}",
        spec_hash="0123456789abcdef",
        status=status,
        created=1000.0 + generation,
    )


def test_records_survive_a_lost_race(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    first = S3Ledger(client, name, "team/ledger.json")
    second = S3Ledger(client, name, "team/ledger.json")
    # Three generations of one job: one shard, so the writes do race.
    first.record(_record("a", 1))
    assert [r.generation for r in second.records()] == [1]  # second holds the shard's ETag
    first.record(_record("a", 2))  # ... which this write makes stale
    second.record(_record("a", 3))  # loses the race, reads again, adds 3 to 1 and 2
    assert [r.generation for r in first.records()] == [1, 2, 3]
    assert first.serial() == 3


def test_many_writers_lose_nothing(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    ledgers = [S3Ledger(client, name, "ledger.json") for _ in range(4)]

    def write(ledger: S3Ledger, index: int) -> None:
        for generation in range(1, 6):
            ledger.record(_record(f"w{index}", generation))
            ledger.note("local", f"w{index}", "create", None, "")

    threads = [threading.Thread(target=write, args=(ledger, i)) for i, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = ledgers[0].records()
    assert len(records) == 20
    assert len(ledgers[0].history()) == 20
    assert ledgers[0].serial() == 20  # the records; history has its own documents


def test_writers_racing_on_one_shard_lose_nothing(bucket: tuple[Any, str]) -> None:
    """Every record of one job lives in one shard: four writers race on it."""
    client, name = bucket
    ledgers = [S3Ledger(client, name, "team/ledger.json") for _ in range(4)]
    shard = ledgers[0].shard_of("local", "shared")

    def write(ledger: S3Ledger, index: int) -> None:
        for generation in range(1, 6):
            ledger.record(_record("shared", index * 5 + generation))

    threads = [threading.Thread(target=write, args=(ledger, i)) for i, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.generation for r in ledgers[0].records()) == list(range(1, 21))
    listed = client.list_objects_v2(Bucket=name, Prefix="team/ledger.json.d/")["Contents"]
    assert [o["Key"] for o in listed] == [shard]  # one job, one shard
    assert ledgers[0].serial() == 20


def test_a_write_rewrites_one_shard_not_the_ledger(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    ledger = S3Ledger(client, name, "team/ledger.json")
    ledger.import_all([_record(f"job{i}") for i in range(300)], [])
    sizes = {
        o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=name, Prefix="team/")["Contents"]
    }
    ledger.record(_record("job7", 2))
    after = {
        o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=name, Prefix="team/")["Contents"]
    }
    changed = [k for k in after if after[k] != sizes.get(k)]
    assert changed == [ledger.shard_of("local", "job7")]
    assert max(after.values()) < 5_000  # a shard holds a few records, not 300
    assert len(ledger.records()) == 301


def test_a_ledger_of_the_old_layout_is_read_and_changed_without_loss(
    bucket: tuple[Any, str],
) -> None:
    """Records written into ledger.json by an older batchctl stay readable; a change to one
    goes to its shard, with the rest of its job; ledger.json is not rewritten."""
    import json

    from runner.state.ledger.bucket import FORMAT, record_json

    client, name = bucket
    old = [_record("a", 1), _record("a", 2), _record("b")]
    document = {
        "format": FORMAT,
        "lineage": "L",
        "serial": 3,
        "records": [record_json(r, 1.0) for r in old],
    }
    client.put_object(Bucket=name, Key="l/ledger.json", Body=json.dumps(document).encode())
    ledger = S3Ledger(client, name, "l/ledger.json")
    assert [(r.name, r.generation) for r in ledger.records()] == [("a", 1), ("a", 2), ("b", 1)]
    ledger.refresh([("job-a-2", JobStatus.ACTIVE, Counts(10, 4, 1), None)])
    ledger.refresh([("job-a-2", JobStatus.ACTIVE, Counts(10, 4, 1), None)])  # nothing new
    assert ledger.serial() == 3 + 1
    fresh = S3Ledger(client, name, "l/ledger.json")
    by = {(r.name, r.generation): r for r in fresh.records()}
    assert by[("a", 2)].counts == Counts(10, 4, 1)
    assert set(by) == {("a", 1), ("a", 2), ("b", 1)}
    shard = json.loads(
        client.get_object(Bucket=name, Key=fresh.shard_of("local", "a"))["Body"].read()
    )
    assert sorted(r["generation"] for r in shard["records"]) == [1, 2]  # the job, whole
    root = json.loads(client.get_object(Bucket=name, Key="l/ledger.json")["Body"].read())
    assert root == document  # never rewritten


def test_a_refresh_after_a_record_reaches_every_shard(bucket: tuple[Any, str]) -> None:
    """A ledger that has only written one record has read only that shard: a refresh of a
    job in another shard must still be stored."""
    client, name = bucket
    S3Ledger(client, name, "l/ledger.json").record(_record("x"))
    ledger = S3Ledger(client, name, "l/ledger.json")
    ledger.record(_record("y"))
    assert ledger.shard_of("local", "x") != ledger.shard_of("local", "y")
    ledger.refresh([("job-x-1", JobStatus.ACTIVE, Counts(10, 4, 1), None)])
    by = {r.name: r for r in S3Ledger(client, name, "l/ledger.json").records()}
    assert (by["x"].status, by["x"].counts) == (JobStatus.ACTIVE, Counts(10, 4, 1))


def test_refresh_upsert_and_history(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    ledger = S3Ledger(client, name, "l/ledger.json")
    ledger.record(_record("a"))
    ledger.refresh([("job-a-1", JobStatus.ACTIVE, Counts(10, 4, 1), None)])
    serial = ledger.serial()
    ledger.refresh([("job-a-1", JobStatus.ACTIVE, Counts(10, 4, 1), None)])
    assert ledger.serial() == serial  # nothing new: nothing written
    ledger.refresh([("job-a-1", JobStatus.COMPLETE, Counts(10, 9, 1), 2000.0)])
    ledger.refresh([("job-a-1", JobStatus.ACTIVE, Counts(10, 1, 1), None)])  # final stays final
    (record,) = ledger.records()
    assert (record.status, record.counts, record.terminated) == (
        JobStatus.COMPLETE,
        Counts(10, 9, 1),
        2000.0,
    )
    ledger.note("local", "a", "create", "job-a-1", "new spec")
    assert ledger.history()[0]["detail"] == "new spec"
    client.put_object(Bucket=name, Key="other.json", Body=b'{"format": "something"}')
    with pytest.raises(StateError, match="is not a batchctl ledger"):
        S3Ledger(client, name, "other.json").records()


def test_the_lease(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    now = [10_000.0]
    first = S3Lease(client, name, "team/lock.json", seconds=60, clock=lambda: now[0])
    second = S3Lease(client, name, "team/lock.json", seconds=60, clock=lambda: now[0])
    first.acquire()
    assert first.lock_id
    with pytest.raises(LockHeld) as held:
        second.acquire()
    assert f"lock ID {first.lock_id}" in str(held.value)
    assert held.value.where == f"s3://{name}/team/lock.json"
    now[0] += 50
    assert first.renew()  # renewed: expires 60 s from now again
    now[0] += 50
    with pytest.raises(LockHeld):
        second.acquire()  # 100 s after it was taken, but renewed at 50
    now[0] += 61
    notes: list[str] = []
    second.log = notes.append
    second.acquire()  # expired: taken over
    assert "took over the expired lock" in notes[0]
    assert not first.renew()
    assert first.lost
    first.release()  # not ours any more: left in place
    found = second.read()
    assert found is not None
    assert found[0]["id"] == second.lock_id
    with pytest.raises(StateError, match="not nope"):
        first.unlock("nope")
    holder = first.unlock(str(second.lock_id))
    assert holder.lock_id == second.lock_id
    assert second.read() is None
    second.release()
    first.acquire()  # free again
    first.release()
    assert first.read() is None


class IgnoringConditions:
    """A client whose store ignores If-Match / If-None-Match (as old S3 clones do)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def put_object(self, **kwargs: Any) -> Any:
        kwargs.pop("IfMatch", None)
        kwargs.pop("IfNoneMatch", None)
        return self.inner.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_live_lease_is_not_taken_even_where_conditions_are_ignored(
    bucket: tuple[Any, str],
) -> None:
    client, name = bucket
    careless = IgnoringConditions(client)
    first = S3Lease(careless, name, "lock.json", seconds=60)
    first.acquire()
    with pytest.raises(LockHeld):
        S3Lease(careless, name, "lock.json", seconds=60).acquire()
    first.release()


def test_a_held_lease_is_renewed_while_it_runs(bucket: tuple[Any, str]) -> None:
    import time

    client, name = bucket
    lease = S3Lease(client, name, "renewed/lock.json", seconds=0.6)  # renewed every 0.2 s
    lease.acquire()
    try:
        first = lease.read()
        assert first is not None
        time.sleep(1.0)  # longer than the lease: only renewals keep it
        later = lease.read()
        assert later is not None
        assert later[0]["id"] == lease.lock_id
        assert later[0]["expires"] > first[0]["expires"] + 0.5
        assert later[0]["expires"] > time.time()
        assert not lease.lost
    finally:
        lease.release()
    assert lease.read() is None
