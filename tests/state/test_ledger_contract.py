"""One ledger suite, run over every LedgerStore: SQLite, a bucket (moto and SeaweedFS), routed.

What the reconciler relies on, whatever holds the records: a record comes back as
written, a later generation sits beside an earlier one, an observed sweep refreshes
live jobs but never rewrites a final one, history keeps its order, a read-only view
refuses writes, and a migration's import gives the same records back.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus
from runner.state.ledger import LedgerStore, ReadOnlyLedger
from runner.state.ledger.bucket import S3Ledger
from runner.state.ledger.routed import RoutedLedger
from runner.state.ledger.sqlite import SqliteLedger
from runner.state.records import LedgerRecord
from tests.servers import CREDENTIALS

KINDS = ["sqlite", "bucket-moto", "bucket-seaweedfs", "routed"]


@dataclass(frozen=True)
class Seen:
    job_id: str
    status: JobStatus
    counts: Counts
    terminated: float | None = None


def _bucket_ledger(endpoint: str) -> Iterator[S3Ledger]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    name = f"ledger-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield S3Ledger(client, name, "team/ledger.json")
    client.close()


@pytest.fixture(params=KINDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    opened: list[LedgerStore] = []
    generators: list[Iterator[S3Ledger]] = []

    def one(tag: str = "a") -> LedgerStore:
        kind = request.param
        ledger: LedgerStore
        if kind == "sqlite":
            ledger = SqliteLedger(tmp_path / f"{tag}.db")
        elif kind.startswith("bucket"):
            endpoint = request.getfixturevalue(f"{kind.split('-')[1]}_endpoint")
            made = _bucket_ledger(endpoint)
            generators.append(made)
            ledger = next(made)
        else:  # the project's ledger plus one target with its own state
            ledger = RoutedLedger(
                SqliteLedger(tmp_path / f"{tag}-project.db"),
                {"own": SqliteLedger(tmp_path / f"{tag}-own.db")},
            )
        opened.append(ledger)
        return ledger

    yield one
    for ledger in opened:
        ledger.close()
    for made in generators:
        next(made, None)


def record(name: str, generation: int = 1, **changes: object) -> LedgerRecord:
    base = LedgerRecord(
        target="own" if name.startswith("own") else "local",
        name=name,
        generation=generation,
        job_id=f"job-{name}-{generation}",
        spec_hash="0123456789abcdef",
        status=JobStatus.ACTIVE,
        counts=Counts(10, 2, 1),
        created=1000.0 + generation,
        immutable='{"operation":"tag"}',
        report='{"bucket":"r","key":"job-x/manifest.json"}',
        slot=None,
    )
    return dataclasses.replace(base, **changes)


def test_a_record_comes_back_as_written(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    written = [
        record("a"),
        record("a", 2, status=JobStatus.NEW, staged=True),
        record("own-b", failure=Failure(top_error=("NoSuchKey", 3))),
        record("c", slot=1700000000.0, terminated=1200.0, status=JobStatus.COMPLETE),
        record("d", status=JobStatus.COMPLETE, rate=1234.5),
    ]
    for item in written:
        ledger.record(item)
    found = sorted(ledger.records(), key=lambda r: (r.name, r.generation))
    assert found == sorted(written, key=lambda r: (r.name, r.generation))


def test_a_rate_once_kept_is_not_lost_by_a_later_refresh(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    ledger.record(record("a", status=JobStatus.COMPLETE, rate=50.0))
    ledger.record(record("a", status=JobStatus.COMPLETE))  # a write that knows no rate
    assert [r.rate for r in ledger.records()] == [50.0]


def test_the_view_holds_each_newest_generation_and_every_job_id(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    written = [
        record("b", 3, status=JobStatus.COMPLETE, failure=Failure(top_error=("Denied", 1))),
        record("a"),
        record("b", 1),
        record("own-c", 2, slot=1700000000.0),
        record("b", 2),
        record("own-c", 1),
    ]
    for item in written:
        ledger.record(item)
    view = ledger.view()
    assert view.latest == [written[1], written[0], written[3]]  # by (target, name)
    assert view.job_ids == {r.job_id for r in written}
    assert ReadOnlyLedger(ledger).view() == view


def test_a_sweep_refreshes_live_jobs_and_never_a_final_one(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    ledger.record(record("live"))
    ledger.record(record("done", status=JobStatus.COMPLETE, terminated=1500.0))
    ledger.refresh_from(
        [
            Seen("job-live-1", JobStatus.COMPLETE, Counts(10, 9, 1), 1600.0),
            Seen("job-done-1", JobStatus.FAILED, Counts(10, 0, 10), 1700.0),
            Seen("job-unknown", JobStatus.ACTIVE, Counts(1, 0, 0)),
        ]
    )
    by_name = {r.name: r for r in ledger.records()}
    assert by_name["live"].status is JobStatus.COMPLETE
    assert by_name["live"].counts == Counts(10, 9, 1)
    assert by_name["live"].terminated == 1600.0
    assert by_name["done"].status is JobStatus.COMPLETE  # final: kept as it was
    assert set(by_name) == {"live", "done"}


def test_history_keeps_its_order(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    for index in range(5):
        ledger.note("local", f"job{index}", "create", f"id-{index}", f"detail {index}")
    found = ledger.history()
    assert [entry["name"] for entry in found] == [f"job{i}" for i in range(5)]
    assert found[2]["action"] == "create"
    assert found[2]["detail"] == "detail 2"


def test_a_read_only_view_refuses_writes(make: callable) -> None:  # type: ignore[valid-type]
    ledger = make()
    ledger.record(record("a"))
    view = ReadOnlyLedger(ledger)
    assert [r.name for r in view.records()] == ["a"]
    view.refresh_from([Seen("job-a-1", JobStatus.COMPLETE, Counts(1, 1, 0))])
    assert ledger.records()[0].status is JobStatus.ACTIVE
    with pytest.raises(PermissionError):
        view.record(record("b"))
    with pytest.raises(PermissionError):
        view.note("local", "a", "create", None, "")


def test_an_import_gives_the_same_records_back(make: callable) -> None:  # type: ignore[valid-type]
    source, target = make("a"), make("b")
    for index in range(3):
        source.record(record(f"job{index}"))
        source.record(record(f"own{index}"))
        source.note("local", f"job{index}", "create", f"id-{index}", "")
    if isinstance(target, RoutedLedger):  # by design: `state migrate` moves one place
        with pytest.raises(ValueError, match="one state at a time"):
            target.import_all(source.records(), source.history())
        return
    target.import_all(source.records(), source.history())
    key = lambda r: (r.target, r.name, r.generation)  # noqa: E731
    assert sorted(target.records(), key=key) == sorted(source.records(), key=key)
    assert len(target.history()) == len(source.history())
