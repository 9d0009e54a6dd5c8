"""Completion reports in S3's layout and CSV format.

With report bucket B and prefix P the engine writes::

    B/P/job-<id>/manifest.json
    B/P/job-<id>/results/<40-hex>.csv    one file for succeeded, one for failed tasks

Rows carry Bucket, Key (URL-encoded, as in the manifest), VersionId, TaskStatus,
HTTPStatusCode, ErrorCode, ResultMessage: the order real S3 reports use, while
their manifest.json's ReportSchema names ErrorCode before HTTPStatusCode (the
reference sheet's §3.3 and §7.1). We write both exactly as S3 does, so that
readers built for S3 read ours. Result file names are derived from the job ID
and the status, so a report rewritten after a crash replaces itself. Rows are
streamed to temporary files: a million-task report never sits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from datetime import UTC, datetime
from typing import IO, Any

from runner.engine.service import Engine, JobRow
from runner.engine.tasks import SUCCEEDED
from runner.stores.base import ObjectStore

REPORT_FORMAT = "Report_CSV_20180820"
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
_SPOOL = 8 << 20


def report_prefix(prefix: str | None, job_id: str) -> str:
    """``<prefix>/job-<id>`` (or ``job-<id>`` without a prefix)."""
    base = (prefix or "").strip("/")
    return f"{base}/job-{job_id}" if base else f"job-{job_id}"


def write_report(engine: Engine, store: ObjectStore, job: JobRow) -> dict[str, str] | None:
    """Write the job's report if it asked for one and a task ran; return its location."""
    report = job.request.report
    if report is None:
        return None
    current = engine.job_row(job.id)
    if current.succeeded + current.failed == 0:
        return None  # as S3: a report only when at least one task ran
    failed_only = report.scope == "failed"
    files: dict[str, IO[bytes]] = {}
    writers: dict[str, Any] = {}
    digests: dict[str, Any] = {}
    counts = {"succeeded": 0, "failed": 0}
    try:
        for bucket, key, version, status, http, code, message in engine.tasks.results(
            job.pk, failed_only=failed_only
        ):
            name = "succeeded" if status == SUCCEEDED else "failed"
            if name not in files:
                files[name] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115
                text = io.TextIOWrapper(files[name], encoding="utf-8", newline="")
                writers[name] = (text, csv.writer(text))
                digests[name] = None
            text, writer = writers[name]
            writer.writerow([bucket, key, version or "", name, http, code or "", message or ""])
            counts[name] += 1
        base = report_prefix(report.prefix, job.id)
        results = []
        for name in ("succeeded", "failed"):
            if name not in files:
                continue
            text, _ = writers[name]
            text.flush()
            text.detach()
            body = files[name]
            body.seek(0)
            md5 = hashlib.md5(usedforsecurity=False)
            while chunk := body.read(1 << 20):
                md5.update(chunk)
            body.seek(0)
            digest = hashlib.sha1(f"{job.id}:{name}".encode(), usedforsecurity=False).hexdigest()
            key = f"{base}/results/{digest}.csv"
            store.put(report.bucket, key, body, content_type="text/csv")
            results.append(
                {
                    "TaskExecutionStatus": name,
                    "Bucket": report.bucket,
                    "MD5Checksum": md5.hexdigest(),
                    "Key": key,
                }
            )
        manifest = {
            "Format": REPORT_FORMAT,
            "ReportCreationDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "Results": results,
            "ReportSchema": REPORT_SCHEMA,
        }
        body_bytes = json.dumps(manifest, indent=2).encode()
        store.put(
            report.bucket, f"{base}/manifest.json", body_bytes, content_type="application/json"
        )
        md5_hex = hashlib.md5(body_bytes, usedforsecurity=False).hexdigest()
        store.put(
            report.bucket, f"{base}/manifest.json.md5", md5_hex.encode(), content_type="text/plain"
        )
        location = {"bucket": report.bucket, "key": f"{base}/manifest.json"}
        engine.set_report(job.pk, location)
        return location
    finally:
        for body in files.values():
            body.close()
