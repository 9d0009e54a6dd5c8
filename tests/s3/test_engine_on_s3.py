"""The embedded engine on S3 servers: a campaign reconciled on SeaweedFS and moto, and
a job through a fault-injecting proxy that still completes with an exact report."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.backends.reports import read_report
from runner.cli import main
from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.status import JobStatus
from runner.stores.s3 import S3ObjectStore
from tests.engine.conftest import request
from tests.faultproxy import FaultProxy
from tests.servers import CREDENTIALS

CAMPAIGN = """apiVersion: batchctl/v1
kind: Target
metadata: {{name: local}}
spec:
  local:
    stateDir: state
    store: {{s3: {{endpointUrl: "{endpoint}", region: us-east-1}}}}
    workers: 8
---
apiVersion: batchctl/v1
kind: BatchJob
metadata: {{name: tag-logs}}
spec:
  manifest: {{csv: {{bucket: {prefix}-manifests, key: logs.csv}}}}
  operation: {{tag: {{tags: {{class: archive}}}}}}
  report: {{bucket: {prefix}-reports, prefix: batch}}
---
apiVersion: batchctl/v1
kind: BatchJob
metadata: {{name: copy-logs}}
spec:
  dependsOn: [{{job: tag-logs}}]
  manifest: {{generate: {{bucket: {prefix}-logs, prefix: 2024/}}}}
  operation: {{copy: {{bucket: {prefix}-archive, storageClass: STANDARD_IA}}}}
  report: {{bucket: {prefix}-reports, prefix: batch}}
---
apiVersion: batchctl/v1
kind: BatchJob
metadata: {{name: sums}}
spec:
  dependsOn: [{{job: copy-logs}}]
  manifest: {{generate: {{bucket: {prefix}-archive}}}}
  operation: {{checksum: {{algorithm: SHA256}}}}
  report: {{bucket: {prefix}-reports}}
"""

OBJECTS = 120


def _client(endpoint: str) -> S3ObjectStore:
    return S3ObjectStore(endpoint, "us-east-1", credentials=CREDENTIALS)


def _seed(store: S3ObjectStore, prefix: str) -> None:
    for bucket in ("logs", "archive", "reports", "manifests"):
        store.create_bucket(f"{prefix}-{bucket}")
    lines = []
    for i in range(OBJECTS):
        key = f"2024/{i % 4:02d}/obj {i:04d}.log"
        store.put(f"{prefix}-logs", key, f"line {i}\n".encode())
        lines.append(f"{prefix}-logs,2024/{i % 4:02d}/obj%20{i:04d}.log")
    store.put(f"{prefix}-manifests", "logs.csv", ("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("server", ["seaweedfs", "moto"])
def test_campaign_on_an_s3_server(
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    endpoint = request.getfixturevalue(f"{server}_endpoint")
    prefix = f"camp-{server}"
    store = _client(endpoint)
    _seed(store, prefix)
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "campaign.yaml").write_text(
        CAMPAIGN.format(endpoint=endpoint, prefix=prefix)
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.chdir(tmp_path)
    assert main(["reconcile", "--until-done", "--interval", "0.3", "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    assert "done: 3 final, 0 need attention" in out
    assert store.get_tags(f"{prefix}-logs", "2024/01/obj 0005.log") == {"class": "archive"}
    copies = list(store.list(f"{prefix}-archive"))
    assert len(copies) == OBJECTS
    assert {c.storage_class for c in copies} == {"STANDARD_IA"}
    assert main(["report", "sums", "-o", "json"]) == 0
    view = capsys.readouterr().out
    assert '"succeeded": 120' in view
    assert main(["report", "tag-logs"]) == 0
    assert "| tasks | 120: 120 succeeded, 0 failed (100.0% success) |" in capsys.readouterr().out
    store.close()


def test_faults_do_not_fail_tasks(seaweedfs_endpoint: str, tmp_path: Path) -> None:
    direct = _client(seaweedfs_endpoint)
    prefix = "faults"
    _seed(direct, prefix)
    host, port = seaweedfs_endpoint.removeprefix("http://").split(":")
    proxy = FaultProxy((host, int(port)), reset=0.05, delay=0.05, slow_down=0.05)
    try:
        store = S3ObjectStore(
            proxy.endpoint, "us-east-1", credentials=CREDENTIALS, pool=8, max_attempts=12
        )
        engine = Engine(tmp_path / "state")
        job_id = engine.create_job(
            request(
                {"copy": {"bucket": f"{prefix}-archive", "prefix": "copied/"}},
                {"csv": {"bucket": f"{prefix}-manifests", "key": "logs.csv"}},
                report={"bucket": f"{prefix}-reports", "prefix": "faulty"},
            )
        )
        Worker(engine, store, workers=8).run(once=True)
        job = engine.describe_job(job_id)
        assert job.status is JobStatus.COMPLETE, job.failure_reasons
        assert (job.progress.succeeded, job.progress.failed) == (OBJECTS, 0)
        location = engine.report_location(job_id)
        assert location is not None
        report = read_report(direct, location["bucket"], location["key"])
        assert (report.succeeded, report.failed) == (OBJECTS, 0)
        assert sum(1 for _ in direct.list(f"{prefix}-archive", "copied/")) == OBJECTS
        faults = proxy.counts
        assert faults["reset"], faults
        assert faults["slowdown"], faults
        assert faults["delay"], faults
        engine.close()
        store.close()
    finally:
        proxy.close()
        direct.close()
