"""`batchctl state …` and `--state s3://…` from the command line, on moto."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from runner.cli import main
from runner.stores.dirstore import DirStore
from tests.engine.conftest import put_objects
from tests.servers import CREDENTIALS

JOB = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: tag-logs}
spec:
  manifest: {generate: {bucket: logs}}
  operation: {tag: {tags: {a: b}}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Path:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "job.yaml").write_text(JOB)
    store = DirStore(tmp_path / ".batchctl" / "objects")
    store.create_bucket("logs")
    put_objects(store, 3)
    store.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)  # boto3 reads it
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return tmp_path


def _bucket(moto_endpoint: str) -> str:
    name = f"state-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=name)
    client.close()
    return name


def test_migrate_to_a_bucket_and_back(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--until-done", "--interval", "0.2", "--timeout", "60"]) == 0
    capsys.readouterr()
    url = f"s3://{_bucket(moto_endpoint)}/team"
    assert main(["state", "migrate", "--to", url]) == 0
    out = capsys.readouterr().out
    assert (
        f"moved 1 job record(s) and 1 history entr(ies) from {project / '.batchctl'} to {url}"
        in out
    )
    assert not (project / ".batchctl" / "ledger.db").exists()
    assert list((project / ".batchctl").glob("ledger.db.migrated-*"))
    assert main(["state", "show", "--state", url, "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["records"], shown["history"], shown["lock"]) == (1, 1, None)
    # the bucket ledger knows the job: nothing to create again
    assert main(["plan", "--state", url]) == 0
    assert "0 to create" in capsys.readouterr().out
    assert main(["state", "migrate", "--state", url, "--to", str(project / "again")]) == 0
    assert f"the old ledger is kept as {url}/migrated-" in capsys.readouterr().out
    assert main(["state", "show", "--state", url, "-o", "json"]) == 0
    moved_out = json.loads(capsys.readouterr().out)
    assert (moved_out["records"], moved_out["history"]) == (0, 0)  # ledger and history moved aside
    assert main(["state", "show", "--state", str(project / "again")]) == 0
    assert "1 job record(s), 1 history entr(ies)" in capsys.readouterr().out
    assert main(["report", "tag-logs", "--state", str(project / "again"), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["name"] == "tag-logs"
    # refusing to move onto a ledger, or from nothing
    other = str(project / "other")
    assert main(["apply", "--yes", "--state", other]) == 0  # adopts the job: a ledger there
    capsys.readouterr()
    assert main(["state", "migrate", "--state", str(project / "again"), "--to", other]) == 1
    assert "already holds a ledger; nothing was moved" in capsys.readouterr().err
    assert main(["state", "migrate", "--to", other]) == 1
    assert "there is no ledger at" in capsys.readouterr().err


def test_state_from_batchctl_yaml_unlock_and_errors(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = _bucket(moto_endpoint)
    (project / "batchctl.yaml").write_text(
        f"state:\n  url: s3://{bucket}/p\n  endpointUrl: '{moto_endpoint}'\n  region: us-east-1\n"
    )
    assert main(["apply", "--yes"]) == 0
    capsys.readouterr()
    assert not (project / ".batchctl" / "ledger.db").exists()
    assert main(["state", "show"]) == 0
    assert "1 job record(s)" in capsys.readouterr().out
    # a lease left by a runner that died
    from runner.state.locks.lease import S3Lease

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDENTIALS)
    stuck = S3Lease(client, bucket, "p/lock.json", seconds=3600)
    stuck.acquire()
    stuck._stop.set()  # the process "dies": no renewal, no release
    assert main(["plan"]) == 1
    err = capsys.readouterr().err
    assert f"another reconcile holds s3://{bucket}/p/lock.json" in err
    assert f"lock ID {stuck.lock_id}" in err
    # a read-only plan neither waits for the lock nor writes the ledger
    from runner.state.ledger.bucket import S3Ledger

    serial = S3Ledger(client, bucket, "p/ledger.json").serial()
    assert main(["plan", "--no-lock"]) == 0
    assert "0 to create" in capsys.readouterr().out
    assert main(["status", "--no-lock"]) == 0
    capsys.readouterr()
    assert S3Ledger(client, bucket, "p/ledger.json").serial() == serial
    assert main(["state", "unlock", "wrong-id"]) == 1
    assert f"has ID {stuck.lock_id}, not wrong-id" in capsys.readouterr().err
    assert main(["state", "unlock", str(stuck.lock_id)]) == 0
    assert f"removed lock {stuck.lock_id}" in capsys.readouterr().out
    assert main(["plan"]) == 0
    capsys.readouterr()
    client.close()
    (project / "batchctl.yaml").write_text("state:\n  url: s3://xyz/y\n  leaseSeconds: 5\n")
    assert main(["plan"]) == 1
    err = capsys.readouterr().err
    assert "batchctl.yaml:3:3: state.leaseSeconds: must be at least 15" in err
    (project / "batchctl.yaml").unlink()
    assert main(["state", "unlock", "x", "--state", str(project / "elsewhere")]) == 1
    assert "cannot be stuck" in capsys.readouterr().err
