"""One lock suite, run over both run locks: the file lock and the bucket lease.

What a reconcile relies on: one holder at a time, the refused one told who holds it,
release lets the next one in, releasing twice is harmless, and a LockSet takes every
lock or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from runner.state.locks import LockSet, RunLock
from runner.state.locks.lease import S3Lease
from runner.support.filelock import FileLock, LockHeld
from tests.servers import CREDENTIALS

MakeLock = Callable[[str], RunLock]


@pytest.fixture(params=["file", "lease"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLock]:
    held: list[RunLock] = []
    client = None
    bucket = f"locks-{uuid.uuid4().hex[:12]}"
    if request.param == "lease":
        endpoint = request.getfixturevalue("moto_endpoint")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
        client.create_bucket(Bucket=bucket)

    def one(name: str) -> RunLock:
        lock: RunLock
        if client is None:
            lock = FileLock(tmp_path / f"{name}.lock")
        else:
            lock = S3Lease(client, bucket, f"{name}/lock.json", seconds=30.0)
        held.append(lock)
        return lock

    yield one
    for lock in held:
        lock.release()
    if client is not None:
        client.close()


def test_one_holder_at_a_time(make: MakeLock) -> None:
    first, second = make("p"), make("p")
    first.acquire()
    with pytest.raises(LockHeld) as caught:
        second.acquire()
    assert caught.value.holder is not None  # the refused one is told who holds it
    first.release()
    second.acquire()
    second.release()
    second.release()  # twice: nothing happens


def test_a_lock_set_takes_all_or_none(make: MakeLock) -> None:
    outsider = make("b")
    outsider.acquire()
    mine = [make("a"), make("b"), make("c")]
    locks = LockSet([(name, lock) for name, lock in zip("abc", mine, strict=True)])
    with pytest.raises(LockHeld):
        locks.acquire()
    probe = make("a")  # what the set took before it was refused was given back
    probe.acquire()
    probe.release()
    outsider.release()
    locks.acquire()
    with pytest.raises(LockHeld):
        make("c").acquire()
    locks.release()
