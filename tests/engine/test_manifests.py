"""Manifests: CSV rows and their errors, ETag pins, inventory reports, generated listings."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from runner.engine.manifests import ManifestError, glob_regex, manifest_tasks
from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.status import JobStatus
from runner.spec.models import Manifest
from runner.stores.dirstore import DirStore
from tests.engine.conftest import put_objects, request


def _tasks(store: DirStore, manifest: dict[str, object]) -> list[tuple[str, str, str | None]]:
    return list(manifest_tasks(store, Manifest.model_validate(manifest)))


def _csv(store: DirStore, text: str, **extra: object) -> dict[str, object]:
    store.put("manifests", "m.csv", text.encode())
    return {"csv": {"bucket": "manifests", "key": "m.csv", **extra}}


def test_csv_rows_keep_their_encoding(store: DirStore) -> None:
    manifest = _csv(store, 'logs,a%20b.txt\r\nlogs,c%2Cd\nlogs,"quoted,key"\n')
    assert _tasks(store, manifest) == [
        ("logs", "a%20b.txt", None),
        ("logs", "c%2Cd", None),
        ("logs", "quoted,key", None),
    ]


def test_csv_with_versions(store: DirStore) -> None:
    manifest = _csv(store, "logs,a,v1\nlogs,b,\n", fields=["Bucket", "Key", "VersionId"])
    assert _tasks(store, manifest) == [("logs", "a", "v1"), ("logs", "b", None)]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("logs,a\nlogs,b,extra\n", "line 2: expected 2 fields (Bucket, Key), got 3"),
        ("logs,a\n\nlogs,b\n", "line 2: blank line"),
        ("logs,a\n,b\n", "line 2: empty bucket or key"),
        ("logs,a\nlogs\n", "line 2: expected 2 fields"),
    ],
)
def test_bad_csv_rows_are_named_by_line(store: DirStore, text: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as raised:
        _tasks(store, _csv(store, text))
    assert raised.value.code == "InvalidManifestContent"
    assert fragment in raised.value.reason


def test_non_utf8_csv(store: DirStore) -> None:
    store.put("manifests", "m.csv", b"logs,\xff\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        _tasks(store, {"csv": {"bucket": "manifests", "key": "m.csv"}})


def test_etag_is_checked_when_pinned(store: DirStore) -> None:
    manifest = _csv(store, "logs,a\n")
    etag = store.head("manifests", "m.csv").etag
    assert _tasks(store, _csv(store, "logs,a\n", etag=f'"{etag}"'))
    with pytest.raises(ManifestError) as raised:
        _tasks(store, _csv(store, "logs,a\n", etag="0" * 32))
    assert raised.value.code == "ManifestETagMismatch"
    assert manifest


def test_missing_manifest(store: DirStore) -> None:
    with pytest.raises(ManifestError) as raised:
        _tasks(store, {"csv": {"bucket": "manifests", "key": "absent.csv"}})
    assert raised.value.code == "ManifestNotFound"


def test_inventory_report(store: DirStore) -> None:
    rows = io.BytesIO()
    with gzip.GzipFile(fileobj=rows, mode="wb") as gz:
        gz.write(b'"logs","a+b.txt","v1","true"\n"logs","c%2Fd","v2","false"\n')
    store.put("manifests", "inv/data/1.csv.gz", rows.getvalue())
    document = {
        "sourceBucket": "logs",
        "destinationBucket": "arn:aws:s3:::manifests",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, VersionId, IsLatest",
        "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    store.put("manifests", "inv/manifest.json", json.dumps(document).encode())
    tasks = _tasks(store, {"inventory": {"bucket": "manifests", "key": "inv/manifest.json"}})
    assert tasks == [("logs", "a%20b.txt", "v1"), ("logs", "c/d", "v2")]


def test_generate_filters(store: DirStore) -> None:
    store.put("logs", "2024/01/app.log", b"x" * 10)
    store.put("logs", "2024/01/app.txt", b"x" * 10)
    store.put("logs", "2024/02/big.log", b"x" * 1000)
    store.put("logs", "2024/cold.log", b"x" * 10, storage_class="GLACIER")
    store.put("logs", "2025/new.log", b"x")
    base = {"bucket": "logs", "prefix": "2024/"}

    def keys(filters: dict[str, object]) -> list[str]:
        return sorted(k for _, k, _ in _tasks(store, {"generate": {**base, "filters": filters}}))

    assert keys({"keyMatches": "**/*.log"}) == [
        "2024/01/app.log",
        "2024/02/big.log",
        "2024/cold.log",
    ]
    assert keys({"keyMatches": "2024/*.log"}) == ["2024/cold.log"]
    assert keys({"maxSize": 100, "keyMatches": "**/*.log"}) == ["2024/01/app.log", "2024/cold.log"]
    assert keys({"minSize": 100}) == ["2024/02/big.log"]
    assert keys({"storageClasses": ["GLACIER"]}) == ["2024/cold.log"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert keys({"createdAfter": future}) == []
    assert len(keys({"createdBefore": future})) == 4


def test_glob() -> None:
    assert glob_regex("**/*.log").match("a/b/c.log")
    assert glob_regex("**/*.log").match("c.log")
    assert not glob_regex("*.log").match("a/c.log")
    assert glob_regex("a/?.[tl]og").match("a/x.log")


def test_generated_manifest_is_saved(engine: Engine, store: DirStore) -> None:
    put_objects(store, 3)
    manifest = {"generate": {"bucket": "logs", "saveTo": {"bucket": "manifests", "prefix": "gen"}}}
    job_id = engine.create_job(request({"tag": {"tags": {"a": "b"}}}, manifest))
    Worker(engine, store).run(once=True)
    assert engine.describe_job(job_id).status is JobStatus.COMPLETE
    with store.open("manifests", f"gen/job-{job_id}/manifest.csv") as stream:
        assert stream.read().decode().splitlines() == [f"logs,data/{i:06d}.txt" for i in range(3)]
