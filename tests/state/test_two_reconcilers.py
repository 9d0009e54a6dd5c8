"""Two reconcilers, real processes, one state bucket on a real S3 server (SeaweedFS).

Round after round a new job is added and both runners apply at the same moment,
as two CI jobs or two cron hosts would. The target is the COS dialect of the
served engine, which refuses a reused ClientRequestToken: a job created twice
would show as an error, and as a second job. At the end there is exactly one job
per spec, and a ledger record (and a history entry) for each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget
from runner.state.ledger.bucket import S3Ledger
from tests.servers import CREDENTIALS

KEY, SECRET = "AKIDTWORUNNERS", "two-runners-secret"
ROUNDS = 10


def _job(index: int) -> str:
    return (
        "apiVersion: batchctl/v1\nkind: BatchJob\n"
        f"metadata: {{name: job-{index}}}\n"
        "spec:\n  target: cos\n"
        "  manifest: {csv: {bucket: logs-1250000000, key: m.csv, etag: abc}}\n"
        f"  operation: {{tag: {{tags: {{round: '{index}'}}}}}}\n"
    )


def test_two_reconcilers_share_one_state_bucket(tmp_path: Path, seaweedfs_endpoint: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    s3 = boto3.client("s3", endpoint_url=seaweedfs_endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = f"state-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    engine = LocalBackend(LocalTarget(state_dir="engine", store="dir://objects"), tmp_path)
    server = EngineServer(engine, {KEY: SECRET})
    server.start()
    project = tmp_path / "project"
    (project / "jobs.d").mkdir(parents=True)
    (project / "jobs.d" / "target.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: cos}\nspec:\n  cos:\n"
        "    uin: '100000000001'\n    appId: '1250000000'\n    region: ap-guangzhou\n"
        f"    endpoint: '{server.url}'\n"
    )
    (project / "batchctl.yaml").write_text(
        f"state:\n  url: s3://{bucket}/team\n  endpointUrl: '{seaweedfs_endpoint}'\n"
        "  region: us-east-1\n  leaseSeconds: 15\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COS_", "TENCENT"))},
        "PYTHONPATH": str(repo),
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "COS_SECRET_ID": KEY,
        "COS_SECRET_KEY": SECRET,
    }
    command = [sys.executable, "-m", "runner", "apply", "--yes", "--lock-timeout", "120"]
    try:
        for index in range(ROUNDS):
            (project / "jobs.d" / f"job-{index}.yaml").write_text(_job(index))
            runners = [
                subprocess.Popen(
                    command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                for _ in range(2)
            ]
            for runner in runners:
                out, err = runner.communicate(timeout=300)
                assert runner.returncode == 0, (out.decode(), err.decode())
        jobs = engine.list_jobs().jobs
        names = sorted(j.description.split(":")[1] for j in jobs)
        assert names == sorted(f"job-{i}" for i in range(ROUNDS))  # one job per spec
        ledger = S3Ledger(s3, bucket, "team/ledger.json")
        records = ledger.records()
        assert sorted(r.name for r in records) == names  # no record lost
        assert {r.job_id for r in records} == {j.job_id for j in jobs}
        created = [h for h in ledger.history() if h["action"] == "create"]
        assert len(created) == ROUNDS
        assert s3.list_objects_v2(Bucket=bucket, Prefix="team/lock.json").get("KeyCount") == 0
    finally:
        server.shutdown()
        engine.close()
        s3.close()
