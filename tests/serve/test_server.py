"""The AWS backend drives `engine serve` on 127.0.0.1 through plain boto3."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends.aws import AwsBackend
from runner.backends.local import LocalBackend
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.status import JobStatus
from runner.serve.server import EngineServer
from runner.spec.models import AwsTarget, LocalTarget
from tests.engine.conftest import put_objects, request

KEY, SECRET = "AKIDSERVETEST", "serve-test-secret"
ACCOUNT = "123456789012"


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AwsBackend, LocalBackend, EngineServer]]:
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    for bucket in ("logs", "reports"):
        local.store.create_bucket(bucket)
    put_objects(local.store, 30)  # type: ignore[arg-type]
    server = EngineServer(local, {KEY: SECRET})
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    target = AwsTarget(
        account_id=ACCOUNT,
        region="us-east-1",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/r",
        endpoint_url=server.url,
    )
    backend = AwsBackend(target)
    yield backend, local, server
    backend.close()
    server.shutdown()
    local.close()


def test_the_job_api_end_to_end(served: tuple[AwsBackend, LocalBackend, EngineServer]) -> None:
    aws, local, _ = served
    job = request(
        {"tag": {"tags": {"k": "v"}}},
        {"generate": {"bucket": "logs", "prefix": "data/"}},
        report={"bucket": "reports", "prefix": "out"},
        confirm=True,
        description="served [batchctl:tag-logs:0123456789abcdef]",
        token="served-1",
    )
    job_id = aws.create_job(job)
    assert aws.create_job(job) == job_id  # the same token: the same job
    listed = aws.list_jobs()
    assert [j.job_id for j in listed.jobs] == [job_id]
    assert listed.jobs[0].description.endswith("[batchctl:tag-logs:0123456789abcdef]")
    assert aws.update_job_priority(job_id, 42) == 42
    worker = local.worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 30
        while aws.describe_job(job_id).status is not JobStatus.SUSPENDED:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert aws.update_job_status(job_id, "Ready", "confirmed") is JobStatus.READY
        while aws.describe_job(job_id).status is not JobStatus.COMPLETE:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    detail = aws.describe_job(job_id)
    assert (detail.progress.total, detail.progress.succeeded) == (30, 30)
    assert detail.priority == 42
    assert detail.operation == "tag"  # our name, as every backend says it
    assert detail.report == {
        "Enabled": True,
        "Bucket": "arn:aws:s3:::reports",
        "Format": "Report_CSV_20180820",
        "ReportScope": "AllTasks",
        "Prefix": "out",
    }
    tags = aws.client.get_job_tagging(AccountId=ACCOUNT, JobId=job_id)["Tags"]
    assert tags == [
        {"Key": "batchctl/name", "Value": "tag-logs"},
        {"Key": "batchctl/hash", "Value": "0123456789abcdef"},
    ]
    with pytest.raises(JobStatusError):
        aws.update_job_status(job_id, "Cancelled")
    with pytest.raises(NotFound):
        aws.describe_job("00000000-0000-0000-0000-000000000000")
    with pytest.raises(IdempotencyError):
        aws.create_job(job.model_copy(update={"priority": 1}))
    with pytest.raises(BadRequest, match="priority"):
        aws.update_job_priority(job_id, 2**31)
    with pytest.raises(BadRequest, match="Lambda"):
        aws.create_job(request({"invoke": {"function": "f"}}, {"generate": {"bucket": "logs"}}))
    aws.put_job_tags(job_id, {"team": "data"})
    assert aws.get_job_tags(job_id) == {"team": "data"}
    aws.delete_job_tags(job_id)
    assert aws.get_job_tags(job_id) == {}


def test_paging_over_more_than_1000_jobs(
    served: tuple[AwsBackend, LocalBackend, EngineServer],
) -> None:
    aws, local, _ = served
    for i in range(1003):  # made straight in the engine: the paging over HTTP is under test
        local.create_job(request({"untag": {}}, {"generate": {"bucket": "logs"}}, token=f"p-{i}"))
    first = aws.list_jobs()
    assert len(first.jobs) == 1000
    second = aws.list_jobs(next_token=first.next_token)
    assert len(second.jobs) == 3
    assert second.next_token is None


def test_a_bad_signature_is_refused(
    served: tuple[AwsBackend, LocalBackend, EngineServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, server = served
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    target = AwsTarget(
        account_id=ACCOUNT,
        region="us-east-1",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/r",
        endpoint_url=server.url,
    )
    impostor = AwsBackend(target)
    with pytest.raises(BadRequest, match="SignatureDoesNotMatch"):
        impostor.list_jobs()
    impostor.close()


def test_the_serve_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "t.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: local}\n"
        "spec: {local: {stateDir: state}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHCTL_SERVE_")}
    env["PYTHONPATH"] = str(repo)
    command = [sys.executable, "-m", "runner", "engine", "serve", "--port", "0"]
    refused = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 1
    assert "needs BATCHCTL_SERVE_ACCESS_KEY_ID" in refused.stderr
    env |= {"BATCHCTL_SERVE_ACCESS_KEY_ID": KEY, "BATCHCTL_SERVE_SECRET_ACCESS_KEY": SECRET}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(f"{url}/v20180820/jobs", timeout=10)
        assert unsigned.value.code == 403
        assert b"<Code>AccessDenied</Code>" in unsigned.value.read()
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "engine serve stopped" in out


def _campaign_on(target: str, repo: Path) -> str:
    """The example campaign moved to ``target``, less the manual delete (AWS has none)."""
    documents = []
    for name in ("log-archive.yaml", "contracts.yaml"):
        text = (repo / "jobs.d" / name).read_text(encoding="utf-8")
        for doc in text.split("\n---\n"):
            if "delete-2024-originals" in doc:
                continue
            lines = [line for line in doc.splitlines() if "  target: local" not in line]
            documents.append(
                "\n".join(lines).replace("\nspec:\n", f"\nspec:\n  target: {target}\n", 1)
            )
    return "\n---\n".join(documents)


def test_the_example_campaign_through_the_aws_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    from runner.cli import main
    from runner.stores.s3 import S3ObjectStore
    from tests.servers import CREDENTIALS, reset_moto

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    reset_moto(moto_endpoint)
    objects = S3ObjectStore(moto_endpoint, "us-east-1", credentials=CREDENTIALS)
    for bucket in ("logs", "archive", "reports", "staging"):
        objects.create_bucket(bucket)
    objects.create_bucket("contracts", object_lock=True)
    for day in range(1, 6):
        objects.put("logs", f"2024/01/{day:02d}/app-000.log", b"line\n")
    objects.put("logs", "2024/README.txt", b"not a log\n")
    for line in (repo / "jobs.d" / "manifests" / "contracts.csv").read_text().splitlines():
        from urllib.parse import unquote

        objects.put("contracts", unquote(line.split(",", 1)[1]), b"%PDF-1.4\n")
    engine_side = LocalBackend(
        LocalTarget.model_validate(
            {"stateDir": "served", "store": {"s3": {"endpointUrl": moto_endpoint}}}
        ),
        tmp_path,
    )
    server = EngineServer(engine_side, {KEY: SECRET})
    server.start()
    stop = threading.Event()
    worker = threading.Thread(target=engine_side.worker().run, kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        project = tmp_path / "project"
        (project / "jobs.d" / "manifests").mkdir(parents=True)
        shutil.copy(
            repo / "jobs.d" / "manifests" / "contracts.csv", project / "jobs.d" / "manifests"
        )
        (project / "jobs.d" / "targets.yaml").write_text(
            "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: prod}\nspec:\n  aws:\n"
            f"    accountId: '{ACCOUNT}'\n    region: us-east-1\n"
            f"    roleArn: 'arn:aws:iam::{ACCOUNT}:role/batch'\n"
            f"    endpointUrl: '{server.url}'\n    stagingBucket: staging\n"
            f"    s3EndpointUrl: '{moto_endpoint}'\n"
        )
        (project / "jobs.d" / "campaign.yaml").write_text(_campaign_on("prod", repo))
        monkeypatch.chdir(project)
        assert main(["validate"]) == 0
        capsys.readouterr()
        # what it will cost, before anything runs: four jobs at AWS's prices
        assert main(["plan", "-o", "json"]) == 0
        estimate = json.loads(capsys.readouterr().out)["estimate"]
        assert sorted(j["name"] for j in estimate["jobs"]) == [
            "archive-2024-logs",
            "hold-signed-contracts",
            "tag-2024-logs",
            "verify-archive",
        ]
        assert all(j["seconds"] is None for j in estimate["jobs"])  # no history yet
        objects_by_job = {j["name"]: j["objects"] for j in estimate["jobs"]}
        assert objects_by_job["tag-2024-logs"] == 5  # listed with the spec's filters
        assert estimate["usd"] >= 4 * 0.25
        assert main(["plan", "--max-cost", "0.5"]) == 3
        assert "is above --max-cost 0.5" in capsys.readouterr().err
        # Below the bound, a cost not wholly known still stops the gate: verify-archive's
        # checksums have a per-GB fee batchctl does not price.
        unknown = {j["name"]: j["unknown"] for j in estimate["jobs"] if j["unknown"]}
        assert unknown == {
            "verify-archive": ["checksum: the service's per-GB processing fee is not priced"]
        }
        assert main(["plan", "--max-cost", "1000"]) == 3
        assert "the cost is not wholly known" in capsys.readouterr().err
        assert main(["reconcile", "--until-done", "--interval", "0.3", "--timeout", "180"]) == 0
        out = capsys.readouterr().out
        assert "done: 4 final, 0 need attention, 0 awaiting a person" in out
        # after one run, the next run of an operation has a measured duration
        assert main(["plan", "--replace", "tag-2024-logs"]) == 0
        replanned = capsys.readouterr().out
        line = replanned.split("tag-2024-logs (prod): recreate")[1].splitlines()[1]
        assert "≈ 5 objects · $0.25" in line
        assert "tasks/s, as measured here" in line
        assert objects.get_tags("logs", "2024/01/03/app-000.log") == {
            "class": "archive",
            "year": "2024",
        }
        assert len(list(objects.list("archive", "2024/"))) == 5
        assert objects.get_legal_hold("contracts", "signed/2024/Q4 amendment (final).pdf")
    finally:
        stop.set()
        worker.join()
        server.shutdown()
        engine_side.close()
        objects.close()
