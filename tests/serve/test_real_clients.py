"""The services' own clients judge `engine serve` (issue 15): the AWS CLI v1 through a
job's whole life, and Tencent's cos-python-sdk-v5 signer on raw COS Batch requests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget
from tests.engine.conftest import put_objects

KEY, SECRET = "AKIDREALCLIENT", "real-client-secret"
ACCOUNT = "123456789012"

# An AWS CLI plugin: botocore puts the account ID in the host name (123456789012.127.0.0.1),
# which does not resolve; the plugin sends to the endpoint itself, without touching
# /etc/hosts. The signature is computed after it, so it covers the host actually sent.
PLUGIN = """
def _unprefix(request, **_):
    request.url = request.url.replace("//%s." % "{account}", "//", 1)


def awscli_initialize(cli):
    cli.register("before-sign.s3-control", _unprefix)
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EngineServer, LocalBackend]]:
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    for bucket in ("logs", "reports"):
        local.store.create_bucket(bucket)
    put_objects(local.store, 5)  # type: ignore[arg-type]
    local.store.put("logs", "m.csv", b"".join(b"logs,data/%06d.txt\n" % i for i in range(5)))
    server = EngineServer(local, {KEY: SECRET})
    server.start()
    yield server, local
    server.shutdown()
    local.close()


def _aws(tmp_path: Path, server: EngineServer, *argv: str) -> Any:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "batchctl_unprefix.py").write_text(PLUGIN.replace("{account}", ACCOUNT))
    config = tmp_path / "aws-config"
    config.write_text("[plugins]\nunprefix = batchctl_unprefix\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(plugins),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "s3control",
            *argv,
            "--account-id",
            ACCOUNT,
            "--endpoint-url",
            server.url,
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_the_aws_cli_drives_a_job_through_its_life(
    served: tuple[EngineServer, LocalBackend], tmp_path: Path
) -> None:
    pytest.importorskip("awscli")
    server, local = served
    etag = local.store.head("logs", "m.csv").etag
    manifest = {
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": "arn:aws:s3:::logs/m.csv", "ETag": etag},
    }
    report = {
        "Bucket": "arn:aws:s3:::reports",
        "Format": "Report_CSV_20180820",
        "Enabled": True,
        "Prefix": "cli",
        "ReportScope": "AllTasks",
    }
    create = [
        "create-job",
        "--operation",
        json.dumps({"S3PutObjectTagging": {"TagSet": [{"Key": "by", "Value": "cli"}]}}),
        "--manifest",
        json.dumps(manifest),
        "--report",
        json.dumps(report),
        "--priority",
        "10",
        "--role-arn",
        f"arn:aws:iam::{ACCOUNT}:role/batch",
        "--client-request-token",
        "cli-token-1",
        "--confirmation-required",
        "--tags",
        json.dumps([{"Key": "team", "Value": "data"}]),
    ]
    job_id = _aws(tmp_path, server, *create)["JobId"]
    assert _aws(tmp_path, server, *create)["JobId"] == job_id  # the same token: the same job
    listed = _aws(tmp_path, server, "list-jobs")["Jobs"]
    assert [j["JobId"] for j in listed] == [job_id]
    _aws(tmp_path, server, "update-job-priority", "--job-id", job_id, "--priority", "42")
    local.worker().run(once=True)
    described = _aws(tmp_path, server, "describe-job", "--job-id", job_id)["Job"]
    assert (described["Status"], described["Priority"]) == ("Suspended", 42)
    assert described["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/batch"
    _aws(
        tmp_path, server, "update-job-status", "--job-id", job_id, "--requested-job-status", "Ready"
    )
    local.worker().run(once=True)
    described = _aws(tmp_path, server, "describe-job", "--job-id", job_id)["Job"]
    assert described["Status"] == "Complete"
    assert described["ProgressSummary"]["NumberOfTasksSucceeded"] == 5
    assert _aws(tmp_path, server, "get-job-tagging", "--job-id", job_id)["Tags"] == [
        {"Key": "team", "Value": "data"}
    ]
    _aws(
        tmp_path,
        server,
        "put-job-tagging",
        "--job-id",
        job_id,
        "--tags",
        json.dumps([{"Key": "k", "Value": "v"}]),
    )
    _aws(tmp_path, server, "delete-job-tagging", "--job-id", job_id)
    assert _aws(tmp_path, server, "get-job-tagging", "--job-id", job_id)["Tags"] == []
    assert local.store.get_tags("logs", "data/000000.txt") == {"by": "cli"}


def test_tencents_sdk_signer_is_accepted(served: tuple[EngineServer, LocalBackend]) -> None:
    """cos-python-sdk-v5 signs independently of our q-sign (and without the port)."""
    pytest.importorskip("qcloud_cos")
    import requests
    from qcloud_cos import CosConfig
    from qcloud_cos.cos_auth import CosS3Auth

    server, _ = served
    config = CosConfig(Region="ap-guangzhou", SecretId=KEY, SecretKey=SECRET)
    for params in ({}, {"jobStatuses": "Complete"}):
        answer = requests.get(
            f"{server.url}/jobs",
            params=params,
            headers={"x-cos-appid": "1250000000"},
            auth=CosS3Auth(config, key="jobs", params=params),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert "<ListJobsResult>" in answer.text
    wrong = CosConfig(Region="ap-guangzhou", SecretId=KEY, SecretKey="not-the-secret")
    refused = requests.get(
        f"{server.url}/jobs",
        headers={"x-cos-appid": "1250000000"},
        auth=CosS3Auth(wrong, key="jobs"),
        timeout=30,
    )
    assert refused.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in refused.text


def test_the_readme_shows_how_to_point_the_clients_here() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "unprefix = batchctl_unprefix" in readme
    assert "CosS3Auth" in readme
    assert shutil.which("sh")
    assert textwrap.dedent(PLUGIN).strip().splitlines()[0] in readme


def test_cos_create_job_without_a_role_is_refused(
    served: tuple[EngineServer, LocalBackend],
) -> None:
    """COS requires RoleArn (the reference sheet's CreateJob); the emulator said yes."""
    pytest.importorskip("qcloud_cos")
    import requests
    from qcloud_cos import CosConfig
    from qcloud_cos.cos_auth import CosS3Auth

    from runner.dialects.cos import create_job_body
    from tests.engine.conftest import request

    server, local = served
    job = request(
        {"tag": {"tags": {"a": "b"}}},
        {"csv": {"bucket": "logs", "key": "m.csv", "etag": local.store.head("logs", "m.csv").etag}},
    )
    config = CosConfig(Region="ap-guangzhou", SecretId=KEY, SecretKey=SECRET)

    def post(role: str) -> requests.Response:
        body = create_job_body(job, "etag", "ap-guangzhou", "1250000000", role)
        return requests.post(
            f"{server.url}/jobs",
            data=body,
            headers={"x-cos-appid": "1250000000", "Content-Type": "application/xml"},
            auth=CosS3Auth(config, key="jobs"),
            timeout=30,
        )

    refused = post("")
    assert refused.status_code == 400, refused.text
    assert "<Code>InvalidArgument</Code>" in refused.text
    assert "RoleArn" in refused.text
    accepted = post("qcs::cam::uin/100000000001:roleName/COS_Batch_QcsRole")
    assert accepted.status_code == 200, accepted.text
