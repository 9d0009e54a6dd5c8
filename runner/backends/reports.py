"""Reading completion reports: manifest.json, then every results CSV, streamed.

The CSV columns are Bucket, Key, VersionId, TaskStatus, then HTTP status and error
code in either order (S3's ReportSchema names ErrorCode first while its rows put
the HTTP status first; the reference sheet's §3.3): the numeric one is the HTTP
status. Rows are counted, not kept: failures are grouped by (error code, HTTP
status) with only the first keys of each group, so a million-row report is read in
flat memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from runner.stores.base import ObjectStore, StoreError

FIRST_KEYS = 20


class ReportUnreadable(Exception):
    """The report is missing or malformed."""


@dataclass
class FailureGroup:
    """Failed tasks with one error code and HTTP status."""

    code: str
    http: str
    count: int = 0
    keys: list[str] = field(default_factory=list)


@dataclass
class CompletionReport:
    """What a completion report says, summed up."""

    bucket: str
    manifest_key: str
    created: str | None
    succeeded: int = 0
    failed: int = 0
    groups: dict[tuple[str, str], FailureGroup] = field(default_factory=dict)
    files: list[dict[str, str]] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        """Rows read."""
        return self.succeeded + self.failed


def split_row(row: list[str]) -> tuple[str, str, str, str, str, str, str]:
    """(bucket, key, version, status, http, code, message) whatever the column order."""
    padded = [*row, "", "", "", "", "", "", ""][:7]
    bucket, key, version, status, first, second, message = padded
    if len(row) > 7:
        message = ",".join(row[6:])
    if first.isdigit() or not second.isdigit():
        return bucket, key, version, status, first, second, message
    return bucket, key, version, status, second, first, message


def _rows(store: ObjectStore, bucket: str, key: str) -> Iterator[list[str]]:
    try:
        stream = store.open(bucket, key)
    except StoreError as exc:
        raise ReportUnreadable(f"cannot read s3://{bucket}/{key}: {exc.code}") from exc
    with stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        yield from csv.reader(text)


def read_report(store: ObjectStore, bucket: str, manifest_key: str) -> CompletionReport:
    """Read and sum up the report whose manifest.json is ``bucket/manifest_key``."""
    try:
        with store.open(bucket, manifest_key) as stream:
            manifest: dict[str, Any] = json.loads(stream.read())
    except StoreError as exc:
        raise ReportUnreadable(
            f"cannot read s3://{bucket}/{manifest_key}: {exc.code} {exc.message}"
        ) from exc
    except ValueError as exc:
        raise ReportUnreadable(f"s3://{bucket}/{manifest_key} is not JSON") from exc
    report = CompletionReport(bucket, manifest_key, manifest.get("ReportCreationDate"))
    for result in manifest.get("Results", []):
        file_bucket, file_key = str(result["Bucket"]), str(result["Key"])
        report.files.append(
            {
                "status": str(result.get("TaskExecutionStatus", "")),
                "url": f"s3://{file_bucket}/{file_key}",
                "md5": str(result.get("MD5Checksum", "")),
            }
        )
        for row in _rows(store, file_bucket, file_key):
            if not row:
                continue
            _, key, _, status, http, code, _ = split_row(row)
            if status == "succeeded":
                report.succeeded += 1
                continue
            report.failed += 1
            group = report.groups.setdefault((code, http), FailureGroup(code, http))
            group.count += 1
            if len(group.keys) < FIRST_KEYS:
                group.keys.append(unquote(key))
    return report
