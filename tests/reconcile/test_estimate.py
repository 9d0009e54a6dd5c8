"""`plan`'s estimates against figures computed by hand from pricing.yaml (issue 19)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from runner.jobs.status import JobStatus
from runner.reconcile.estimate import (
    Count,
    JobEstimate,
    count_objects,
    critical_paths,
    operation_name,
    price_job,
    rates,
)
from runner.reconcile.model import Action, ActionKind, Plan
from runner.reconcile.pricing import PriceBook, shipped
from runner.spec.checks import check_all
from runner.spec.loader import LoadedJob, SourceFile, SpecSet, parse_sources
from runner.state.ledger.sqlite import SqliteLedger
from runner.state.records import LedgerRecord
from runner.stores.dirstore import DirStore

AWS = """apiVersion: batchctl/v1
kind: Target
metadata: {name: prod}
spec:
  aws: {accountId: '123456789012', region: REGION, roleArn: 'arn:aws:iam::123456789012:role/b'}
"""
COS = """apiVersion: batchctl/v1
kind: Target
metadata: {name: cn}
spec:
  cos: {uin: '100000000001', appId: '1250000000', region: ap-guangzhou}
"""
GCS = """apiVersion: batchctl/v1
kind: Target
metadata: {name: g}
spec:
  gcs: {project: media-1}
"""
ON_AWS_S3 = """apiVersion: batchctl/v1
kind: Target
metadata: {name: s3local}
spec:
  local: {store: {s3: {endpointUrl: 'https://s3.us-east-1.amazonaws.com'}}}
"""


def _specs(job: str, *targets: str) -> SpecSet:
    specs = parse_sources([SourceFile("s.yaml", "\n---\n".join([job, *targets]).encode())])
    errors = specs.errors + check_all(specs)
    assert errors == [], [str(e) for e in errors]
    return specs


def _job(
    target: str, operation: str, manifest: str = "{csv: {bucket: manifests, key: m.csv}}"
) -> str:
    return (
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: j}\n"
        f"spec:\n  target: {target}\n  manifest: {manifest}\n  operation: {operation}\n"
    )


def _priced(specs: SpecSet, count: Count, book: PriceBook | None = None) -> JobEstimate:
    loaded: LoadedJob = specs.jobs[0]
    target = specs.targets[loaded.job.spec.target]
    estimate = JobEstimate(
        target.target.metadata.name, "j", operation_name(loaded.job.spec.operation), count
    )
    price_job(estimate, loaded, target, book or PriceBook())
    return estimate


def _price(item: str) -> float:
    return shipped()["aws"]["us-east-1"][item].usd


def test_an_aws_copy_by_hand() -> None:
    specs = _specs(
        _job("prod", "{copy: {bucket: archive, storageClass: STANDARD_IA}}"),
        AWS.replace("REGION", "us-east-1"),
    )
    estimate = _priced(specs, Count(2_000_000))
    # $0.25 a job, $1.00 a million objects, $0.01 per 1,000 COPY requests into STANDARD_IA
    assert estimate.usd == pytest.approx(0.25 + 2.00 + 20.00)
    assert _price("job") == 0.25
    assert estimate.complete
    assert [f.item for f in estimate.fees] == ["job", "object", "request.put.STANDARD_IA"]


def test_an_aws_restore_from_a_listing_by_hand() -> None:
    specs = _specs(
        _job("prod", "{restore: {days: 3, tier: BULK}}", "{generate: {bucket: media}}"),
        AWS.replace("REGION", "us-east-1"),
    )
    gib = 1024**3
    count = Count(5, bytes=5 * gib, classes={"GLACIER": 3, "DEEP_ARCHIVE": 2})
    estimate = _priced(specs, count)
    expected = (
        0.25  # job
        + 5 / 1_000_000 * 1.00  # objects
        + 3 / 1000 * 0.0  # Flexible Retrieval bulk restores are free
        + 2 / 1000 * 0.025  # Deep Archive bulk restores
        + 3 * 0.0  # GB retrieved from Flexible Retrieval, bulk
        + 2 * 0.0025  # GB retrieved from Deep Archive, bulk
    )
    assert estimate.usd == pytest.approx(expected)
    assert estimate.complete


def test_a_restore_of_unknown_classes_is_priced_as_the_dearest_and_says_what_is_missing() -> None:
    specs = _specs(
        _job("prod", "{restore: {days: 3, tier: STANDARD}}"), AWS.replace("REGION", "us-east-1")
    )
    estimate = _priced(specs, Count(1000))
    assert estimate.usd == pytest.approx(0.25 + 0.001 + 1000 / 1000 * 0.10)
    assert not estimate.complete  # the per-GB retrieval cannot be known from a csv
    assert any("retrieval" in u for u in estimate.unknown)
    assert any("DEEP_ARCHIVE" in n for n in estimate.notes)


def test_a_region_without_prices_is_not_borrowed_from_another() -> None:
    specs = _specs(_job("prod", "{tag: {tags: {a: b}}}"), AWS.replace("REGION", "eu-west-1"))
    estimate = _priced(specs, Count(10))
    assert estimate.usd == 0
    assert not estimate.complete
    assert "pricing.aws.eu-west-1.job" in estimate.unknown[0]
    book = PriceBook(
        {"aws": {"eu-west-1": {"job": 0.25, "object": 1.0, "request.put.STANDARD": 0.0054}}}
    )
    own = _priced(specs, Count(10_000), book)
    assert own.usd == pytest.approx(0.25 + 0.01 + 10 * 0.0054)
    assert own.complete
    assert all(f.confirmed for f in own.fees)  # the project's own prices


def test_cos_is_priced_only_by_the_project() -> None:
    specs = _specs(_job("cn", "{tag: {tags: {a: b}}}"), COS)
    assert not _priced(specs, Count(1000)).complete  # no COS prices are shipped
    book = PriceBook(
        {"cos": {"ap-guangzhou": {"job": 0.1, "object": 2.0, "request.put.STANDARD": 0.01}}}
    )
    assert _priced(specs, Count(1000), book).usd == pytest.approx(0.1 + 0.002 + 0.01)


def test_gcs_by_the_project_prices() -> None:
    specs = _specs(_job("g", "{delete: {}}", "{generate: {bucket: media, prefix: x/}}"), GCS)
    book = PriceBook({"gcs": {"global": {"job": 0.0, "object": 1.5, "request.delete": 0.0}}})
    estimate = _priced(specs, Count(1000), book)
    assert estimate.usd == pytest.approx(0.0015)
    assert estimate.complete


def test_a_local_target_pays_requests_only_on_an_aws_store() -> None:
    on_aws = _specs(
        _job("s3local", "{tag: {tags: {a: b}}}", "{generate: {bucket: media}}"), ON_AWS_S3
    )
    estimate = _priced(on_aws, Count(3000))
    # 3 LIST requests (1,000 keys each) and 3,000 PUT object tagging, no service fee
    assert estimate.usd == pytest.approx(3 / 1000 * 0.005 + 3000 / 1000 * 0.005)
    assert [f.item for f in estimate.fees] == ["request.list", "request.put.STANDARD"]
    folder = _specs(_job("local", "{tag: {tags: {a: b}}}"))
    free = _priced(folder, Count(3000))
    assert (free.usd, free.complete, free.notes) == (0, True, ["folder store: no fees"])


def test_a_million_row_manifest_is_counted_in_bounded_memory(tmp_path: Path) -> None:
    rows = tmp_path / "jobs.d" / "big.csv"
    rows.parent.mkdir()
    with rows.open("w") as out:
        for index in range(1_000_000):
            out.write(f"logs,2024/{index:07d}.log\n")
    text = _job("local", "{tag: {tags: {a: b}}}", "{file: big.csv}")
    source = tmp_path / "jobs.d" / "job.yaml"
    source.write_text(text)
    from runner import jobsdir

    specs = jobsdir.load(tmp_path / "jobs.d")
    assert specs.errors == []
    tracemalloc.start()
    try:
        count = count_objects(specs.jobs[0], tmp_path, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (count.objects, count.exact) == (1_000_000, True)
    assert peak < 8 * 1024 * 1024, peak  # the file is 21 MB; the count holds a row at a time


def test_a_listing_is_counted_up_to_its_limit(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "objects")
    store.create_bucket("media")
    for index in range(25):
        store.put("media", f"k{index:02d}", b"12345")
    specs = _specs(_job("local", "{tag: {tags: {a: b}}}", "{generate: {bucket: media}}"))
    whole = count_objects(specs.jobs[0], tmp_path, store)
    assert (whole.objects, whole.exact, whole.bytes) == (25, True, 125)
    part = count_objects(specs.jobs[0], tmp_path, store, listing_limit=10)
    assert (part.objects, part.exact) == (10, False)
    unknown = count_objects(specs.jobs[0], tmp_path, None, why_no_store="not reachable")
    assert unknown.objects is None
    assert unknown.note == "unknown until listed (not reachable)"
    store.close()


class _Described:
    """A service whose DescribeJob reports active time."""

    def __init__(self, elapsed: float) -> None:
        self.elapsed = elapsed
        self.described: list[str] = []

    def describe_job(self, job_id: str) -> object:
        from types import SimpleNamespace

        self.described.append(job_id)
        return SimpleNamespace(progress=SimpleNamespace(elapsed_seconds=self.elapsed))


def _done(name: str, total: int, *, rate: float | None = None, at: float = 1000.0) -> LedgerRecord:
    from runner.jobs.progress import Counts

    return LedgerRecord(
        "local",
        name,
        1,
        f"job-{name}",
        "h",
        JobStatus.COMPLETE,
        Counts(total, total, 0),
        created=at,
        terminated=at + 100,
        immutable='{"operation":{"tag":{"tags":{"a":"b"}}}}',
        rate=rate,
    )


def test_a_rate_is_measured_once_and_kept_in_the_ledger(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.record(_done("a", 1000))
    service = _Described(elapsed=4.0)
    found = rates(ledger.records(), {"local": service}, ledger, {("local", "tag")})  # type: ignore[dict-item]
    assert found == {("local", "tag"): 250.0}
    assert [r.rate for r in ledger.records()] == [250.0]
    again = rates(ledger.records(), {"local": service}, ledger, {("local", "tag")})  # type: ignore[dict-item]
    assert again == found
    assert service.described == ["job-a"]  # not described twice
    ledger.close()


def test_the_rate_is_the_median_of_the_latest_jobs() -> None:
    records = [_done(f"j{i}", 100, rate=r, at=float(i)) for i, r in enumerate([10, 20, 30, 1000])]
    assert rates(records, {}, None, {("local", "tag")}) == {("local", "tag"): 25.0}
    assert rates(records, {}, None, {("local", "copy")}) == {}


def test_the_campaign_duration_is_its_critical_path() -> None:
    def act(name: str, *deps: str) -> Action:
        return Action(
            ActionKind.CREATE,
            target="local",
            name=name,
            reason="",
            campaign="c",
            dependencies=tuple(("local", d, "succeeded") for d in deps),
        )

    plan = Plan(actions=(act("a"), act("b", "a"), act("c", "a"), act("d", "b", "c")))

    def est(name: str, seconds: float | None) -> JobEstimate:
        e = JobEstimate("local", name, "tag", Count(1))
        e.seconds = seconds
        return e

    jobs = {("local", n): est(n, s) for n, s in [("a", 10), ("b", 100), ("c", 5), ("d", 1)]}
    (path,) = critical_paths(plan, jobs)
    assert (path.seconds, path.path, path.complete) == (111, ["a", "b", "d"], True)
    jobs[("local", "c")] = est("c", None)
    (partial,) = critical_paths(plan, jobs)
    assert not partial.complete  # a job on a chain has no estimate yet


def test_the_project_prices_are_checked_with_file_and_line() -> None:
    from runner.spec.project import parse_project

    _config, errors = parse_project(
        "batchctl.yaml",
        "pricing:\n  aws:\n    eu-west-1: {job: 0.25, objekt: 1.0}\n  azure:\n    x-1: {job: 1}\n",
    )
    shown = [f"{e.line}:{e.path}: {e.message}" for e in errors]
    assert shown[0].startswith("3:pricing.aws.eu-west-1.objekt: must be a price item")
    assert "4:pricing.azure: must be 'aws', 'cos' or 'gcs'" in shown
    good, none = parse_project("batchctl.yaml", "pricing:\n  aws:\n    eu-west-1: {job: 0.3}\n")
    assert none == []
    assert good.pricing == {"aws": {"eu-west-1": {"job": 0.3}}}
