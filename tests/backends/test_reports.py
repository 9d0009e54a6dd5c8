"""Reading completion reports: both column orders, grouping, flat memory at a million rows."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from runner.backends.reports import FIRST_KEYS, read_report, split_row
from runner.stores.dirstore import DirStore


def _report(store: DirStore, rows: list[str], *, key: str = "r/job-1") -> str:
    store.create_bucket("reports")
    store.put("reports", f"{key}/results/a.csv", ("\r\n".join(rows) + "\r\n").encode())
    manifest = {
        "Format": "Report_CSV_20180820",
        "ReportCreationDate": "2026-11-27T00:00:00.000Z",
        "Results": [
            {
                "TaskExecutionStatus": "failed",
                "Bucket": "reports",
                "MD5Checksum": "x",
                "Key": f"{key}/results/a.csv",
            }
        ],
        "ReportSchema": (
            "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
        ),
    }
    store.put("reports", f"{key}/manifest.json", json.dumps(manifest).encode())
    return f"{key}/manifest.json"


def test_both_column_orders() -> None:
    observed = ["b", "k", "", "failed", "404", "NoSuchKey", "gone"]
    schema = ["b", "k", "", "failed", "NoSuchKey", "404", "gone"]
    assert split_row(observed)[4:6] == ("404", "NoSuchKey")
    assert split_row(schema)[4:6] == ("404", "NoSuchKey")
    assert split_row(["b", "k", "", "succeeded", "200", "", "Successful"])[4:6] == ("200", "")


def test_groups_and_first_keys(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "o")
    rows = ["logs,ok%20one,,succeeded,200,,Successful"]
    rows += [f"logs,missing/{i:03d},,failed,404,NoSuchKey,gone" for i in range(30)]
    rows += ["logs,held,,failed,AccessDenied,403,locked", 'logs,q,,failed,500,InternalError,"a, b"']
    report = read_report(store, "reports", _report(store, rows))
    assert (report.succeeded, report.failed) == (1, 32)
    groups = {k: (g.count, len(g.keys)) for k, g in report.groups.items()}
    assert groups == {
        ("NoSuchKey", "404"): (30, FIRST_KEYS),
        ("AccessDenied", "403"): (1, 1),
        ("InternalError", "500"): (1, 1),
    }
    assert report.groups[("NoSuchKey", "404")].keys[0] == "missing/000"
    assert report.files[0]["url"] == "s3://reports/r/job-1/results/a.csv"


def test_a_million_rows_in_flat_memory(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "o")
    store.create_bucket("reports")
    path = tmp_path / "o" / "reports" / "big"
    path.mkdir(parents=True)
    with open(path / "rows.csv", "w", encoding="utf-8") as out:
        for i in range(1_000_000):
            if i % 10:
                out.write(f"logs,data/{i:07d}.log,,succeeded,200,,Successful\r\n")
            else:
                out.write(f"logs,data/{i:07d}.log,,failed,404,NoSuchKey,missing\r\n")
    manifest = {
        "Results": [
            {
                "TaskExecutionStatus": "failed",
                "Bucket": "reports",
                "Key": "big/rows.csv",
                "MD5Checksum": "",
            }
        ]
    }
    store.put("reports", "big/manifest.json", json.dumps(manifest).encode())
    tracemalloc.start()
    report = read_report(store, "reports", "big/manifest.json")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (report.succeeded, report.failed) == (900_000, 100_000)
    assert peak < 5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading a 1M-row report"
