"""Completion reports: S3's layout, the CSV format, scopes, and every task once."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.stores.dirstore import DirStore
from tests.engine.conftest import csv_manifest, put_objects, request


def _report(
    store: DirStore, engine: Engine, job_id: str
) -> tuple[dict[str, object], list[list[str]]]:
    location = engine.report_location(job_id)
    assert location is not None
    with store.open(location["bucket"], location["key"]) as stream:
        manifest = json.loads(stream.read())
    rows: list[list[str]] = []
    for result in manifest["Results"]:
        with store.open(result["Bucket"], result["Key"]) as stream:
            body = stream.read()
        assert hashlib.md5(body).hexdigest() == result["MD5Checksum"]
        rows.extend(csv.reader(io.StringIO(body.decode())))
    return manifest, rows


def test_layout_and_rows(engine: Engine, store: DirStore) -> None:
    put_objects(store, 3)
    lines = [f"logs,data/{i:06d}.txt" for i in range(3)] + ["logs,missing%20one"]
    job_id = engine.create_job(
        request(
            {"tag": {"tags": {"a": "b"}}},
            csv_manifest(store, lines),
            report={"bucket": "reports", "prefix": "batch/"},
        )
    )
    Worker(engine, store).run(once=True)
    location = engine.report_location(job_id)
    assert location == {"bucket": "reports", "key": f"batch/job-{job_id}/manifest.json"}
    manifest, rows = _report(store, engine, job_id)
    assert manifest["Format"] == "Report_CSV_20180820"
    assert manifest["ReportSchema"] == (
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    )
    results = manifest["Results"]
    assert isinstance(results, list)
    assert [r["TaskExecutionStatus"] for r in results] == ["succeeded", "failed"]
    for result in results:
        assert result["Key"].startswith(f"batch/job-{job_id}/results/")
        assert len(result["Key"].rsplit("/", 1)[1]) == len("0" * 40 + ".csv")
    assert rows[0] == ["logs", "data/000000.txt", "", "succeeded", "200", "", "Successful"]
    failed = rows[-1]
    assert failed[:5] == ["logs", "missing%20one", "", "failed", "404"]
    assert failed[5] == "NoSuchKey"
    assert len(rows) == 4
    with store.open("reports", f"batch/job-{job_id}/manifest.json.md5") as stream:
        assert len(stream.read()) == 32


def test_failed_scope_lists_only_failures(engine: Engine, store: DirStore) -> None:
    put_objects(store, 2)
    lines = ["logs,data/000000.txt", "logs,nope"]
    job_id = engine.create_job(
        request(
            {"tag": {"tags": {"a": "b"}}},
            csv_manifest(store, lines),
            report={"bucket": "reports", "scope": "failed"},
        )
    )
    Worker(engine, store).run(once=True)
    manifest, rows = _report(store, engine, job_id)
    assert [r[1] for r in rows] == ["nope"]
    assert engine.report_location(job_id) == {
        "bucket": "reports",
        "key": f"job-{job_id}/manifest.json",
    }
    assert manifest["Results"][0]["TaskExecutionStatus"] == "failed"  # type: ignore[index]


def test_no_report_when_not_asked(engine: Engine, store: DirStore) -> None:
    put_objects(store, 1)
    job_id = engine.create_job(request({"untag": {}}, {"generate": {"bucket": "logs"}}))
    Worker(engine, store).run(once=True)
    assert engine.report_location(job_id) is None
