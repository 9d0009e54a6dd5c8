"""A Target's own state block: its jobs' records and lock live there, the rest in the project's."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from runner.backends.local import LocalBackend
from runner.cli import main
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget
from runner.state.ledger.bucket import S3Ledger
from runner.state.ledger.sqlite import SqliteLedger
from runner.state.locks.lease import S3Lease
from runner.stores.dirstore import DirStore
from tests.engine.conftest import put_objects
from tests.servers import CREDENTIALS

KEY, SECRET = "AKIDTARGETSTATE", "target-state-secret"


def test_a_target_keeps_its_own_state(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = f"state-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    engine = LocalBackend(LocalTarget(state_dir="engine", store="dir://served"), tmp_path)
    server = EngineServer(engine, {KEY: SECRET})
    server.start()
    project = tmp_path / "project"
    (project / "jobs.d").mkdir(parents=True)
    store = DirStore(project / ".batchctl" / "objects")
    store.create_bucket("logs")
    put_objects(store, 2)
    store.close()
    (project / "jobs.d" / "targets.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: cos}\nspec:\n  cos:\n"
        "    uin: '100000000001'\n    appId: '1250000000'\n    region: ap-guangzhou\n"
        f"    endpoint: '{server.url}'\n"
        f"    state: {{url: 's3://{bucket}/cos-team', endpointUrl: '{moto_endpoint}', "
        "region: us-east-1}\n"
    )
    (project / "jobs.d" / "jobs.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: on-cos}\nspec:\n"
        "  target: cos\n"
        "  manifest: {csv: {bucket: logs-1250000000, key: m.csv, etag: abc}}\n"
        "  operation: {delete: {}}\n"
        "---\n"
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: on-local}\nspec:\n"
        "  manifest: {generate: {bucket: logs}}\n  operation: {tag: {tags: {a: b}}}\n"
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("COS_SECRET_ID", KEY)
    monkeypatch.setenv("COS_SECRET_KEY", SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    try:
        assert main(["apply", "--yes"]) == 0
        capsys.readouterr()
        remote = S3Ledger(s3, bucket, "cos-team/ledger.json")
        assert [r.name for r in remote.records()] == ["on-cos"]
        assert [h["name"] for h in remote.history()] == ["on-cos"]
        local = SqliteLedger(project / ".batchctl" / "ledger.db")
        assert [r.name for r in local.records()] == ["on-local"]
        local.close()
        assert main(["plan"]) == 0
        assert "0 to create" in capsys.readouterr().out  # both known, each in its place
        assert main(["report", "on-cos", "-o", "json"]) == 0
        assert '"name": "on-cos"' in capsys.readouterr().out
        # the target's lock is taken too: a runner holding it keeps this one out
        other = S3Lease(s3, bucket, "cos-team/lock.json", seconds=300)
        other.acquire()
        try:
            assert main(["plan"]) == 1
            assert f"s3://{bucket}/cos-team/lock.json" in capsys.readouterr().err
        finally:
            other.release()
        assert main(["plan"]) == 0  # and the project's lock was not left behind
    finally:
        server.shutdown()
        engine.close()
        s3.close()
