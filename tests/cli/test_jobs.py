"""`batchctl jobs …` and `batchctl engine run` against a project on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli import main
from runner.engine.service import Engine
from runner.stores.dirstore import DirStore
from tests.engine.conftest import put_objects, request

TARGETS = """apiVersion: batchctl/v1
kind: Target
metadata: {name: local}
spec:
  local: {stateDir: state, store: "dir://objects", workers: 2}
---
apiVersion: batchctl/v1
kind: Target
metadata: {name: prod}
spec:
  aws: {region: us-east-1, roleArn: "arn:aws:iam::123456789012:role/b"}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "targets.yaml").write_text(TARGETS)
    store = DirStore(tmp_path / "objects")
    for bucket in ("logs", "reports"):
        store.create_bucket(bucket)
    put_objects(store, 5)
    store.close()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _jobs(project: Path) -> tuple[str, str]:
    engine = Engine(project / "state")
    done = engine.create_job(
        request(
            {"tag": {"tags": {"a": "b"}}},
            {"generate": {"bucket": "logs"}},
            report={"bucket": "reports"},
            description="tag the logs",
        )
    )
    waiting = engine.create_job(
        request({"untag": {}}, {"generate": {"bucket": "logs"}}, confirm=True, description="untag")
    )
    engine.close()
    return done, waiting


def test_engine_run_once_and_list(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no jobs"
    done, waiting = _jobs(project)
    assert main(["engine", "run", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"job {done} Active → Completing: all tasks ran" in out
    assert f"job {waiting} Preparing → Suspended: awaiting confirmation" in out
    assert out.strip().endswith("nothing left to run")
    assert main(["jobs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "JOB",
        "ID",
        "NAME",
        "STATUS",
        "PRIORITY",
        "PROGRESS",
        "OPERATION",
        "CREATED",
        "(UTC)",
        "DESCRIPTION",
    ]
    assert lines[1].split()[:6] == [waiting, "-", "Suspended", "10", "0/5", "untag"]
    assert lines[2].split()[:6] == [done, "-", "Complete", "10", "5/5", "tag"]
    assert main(["jobs", "list", "--status", "Complete", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["jobs"]
    assert [j["jobId"] for j in listed] == [done]
    assert listed[0]["progress"]["succeeded"] == 5
    assert set(listed[0]) >= {
        "jobId",
        "status",
        "priority",
        "description",
        "operation",
        "progress",
        "createdAt",
        "terminatedAt",
    }
    assert main(["jobs", "list", "--description", "untag", "-o", "json"]) == 0
    assert [j["jobId"] for j in json.loads(capsys.readouterr().out)["jobs"]] == [waiting]
    assert main(["jobs", "list", "--id", done, "-o", "json"]) == 0
    assert [j["jobId"] for j in json.loads(capsys.readouterr().out)["jobs"]] == [done]


def test_describe_priority_confirm_cancel(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done, waiting = _jobs(project)
    main(["engine", "run", "--once"])
    capsys.readouterr()
    assert main(["jobs", "describe", done]) == 0
    text = capsys.readouterr().out
    assert "Status:       Complete" in text
    assert f"Report:       s3://reports/job-{done}/manifest.json" in text
    assert main(["jobs", "describe", done, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failureReasons"] == []
    assert data["reportLocation"] == {"bucket": "reports", "key": f"job-{done}/manifest.json"}

    assert main(["jobs", "priority", waiting, "42"]) == 0
    assert capsys.readouterr().out.strip() == f"job {waiting}: priority 42"
    assert main(["jobs", "priority", done, "42"]) == 1
    assert "JobStatusException" in capsys.readouterr().err
    assert main(["jobs", "priority", waiting, "-1"]) == 64

    assert main(["jobs", "confirm", waiting]) == 0
    assert capsys.readouterr().out.strip() == f"job {waiting}: Ready"
    assert main(["jobs", "confirm", waiting]) == 1
    assert "only a Suspended job can be confirmed" in capsys.readouterr().err
    assert main(["jobs", "cancel", waiting, "--reason", "changed my mind"]) == 0
    assert capsys.readouterr().out.strip() == f"job {waiting}: Cancelling"
    main(["engine", "run", "--once"])
    capsys.readouterr()
    assert main(["jobs", "describe", waiting, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "Cancelled"
    assert main(["jobs", "cancel", done]) == 1
    assert "cannot be cancelled" in capsys.readouterr().err


def test_unknown_job_and_target(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "describe", "no-such-job"]) == 1
    assert "NotFoundException: No such job: no-such-job" in capsys.readouterr().err
    assert main(["jobs", "list", "--target", "nope"]) == 1
    assert "unknown target 'nope'" in capsys.readouterr().err


def test_invalid_specs_stop_before_the_engine(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "jobs.d" / "bad.yaml").write_text("apiVersion: batchctl/v1\nkind: Nope\n")
    assert main(["engine", "run", "--once"]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:2:1: kind: unknown kind 'Nope'" in err
    assert "nothing was done" in err
    assert not (project / "state").exists()
