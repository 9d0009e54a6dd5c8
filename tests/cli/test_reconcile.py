"""plan, apply, reconcile and status end to end on the example campaign and on failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main
from runner.state.ledger.sqlite import SqliteLedger
from runner.stores.dirstore import DirStore
from runner.support.filelock import FileLock

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's jobs.d with its demo data."""
    shutil.copytree(REPO / "jobs.d", tmp_path / "jobs.d")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "init"]) == 0
    return tmp_path


def _job_ids(root: Path) -> dict[str, str]:
    ledger = SqliteLedger(root / ".batchctl" / "ledger.db")
    try:
        return {r.name: r.job_id for r in ledger.records()}
    finally:
        ledger.close()


def test_example_campaign_end_to_end(campaign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["plan", "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "+   tag-2024-logs: create generation 1: new spec" in out
    assert "…   verify-archive: waiting for archive-2024-logs: staged, suspended" in out
    *_, summary, estimate = out.strip().splitlines()
    assert summary == (
        "Plan: 3 to create, 0 to recreate, 0 to change, 0 to cancel; 2 waiting, 0 blocked, "
        "0 unchanged."
    )
    # five jobs still to create (two behind their dependencies), on a folder store: free
    assert estimate.startswith("Estimate: $0.00 for the 5 job(s) still to create;")
    assert "≈ 10,080 objects · $0.00 (folder store: no fees) · duration no estimate yet" in out
    assert main(["plan", "--max-cost", "0"]) == 0  # wholly known, and not above the bound
    capsys.readouterr()
    assert main(["plan", "-o", "json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["summary"]["create"] == 3
    assert [a["action"] for a in view["actions"]] == ["create", "stage", "wait", "wait", "create"]

    assert main(["reconcile", "--until-done", "--interval", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "done: 4 final, 0 need attention, 1 awaiting a person" in out
    ids = _job_ids(campaign)
    assert "? delete-2024-originals: batchctl jobs confirm delete-2024-originals" in out

    store = DirStore(campaign / ".batchctl" / "objects")
    tagged = store.get_tags("logs", "2024/03/07/app-005.log")
    assert tagged == {"class": "archive", "year": "2024"}
    assert store.get_tags("logs", "2024/README.txt") == {}
    archived = list(store.list("archive", "2024/"))
    assert len(archived) == 12 * 28 * 30
    assert {o.storage_class for o in archived} == {"STANDARD_IA"}
    assert store.get_tags("archive", "2024/12/28/app-029.log") == tagged
    assert store.get_legal_hold("contracts", "signed/2024/Q4 amendment (final).pdf")
    report = next(
        o.key for o in store.list("reports", f"log-archive/job-{ids['verify-archive']}/results/")
    )
    with store.open("reports", report) as stream:
        rows = stream.read().decode().splitlines()
    assert len(rows) == 12 * 28 * 30
    assert all(",succeeded,200,,SHA256:" in row for row in rows)

    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "delete-2024-originals  Awaiting confirmation" in status

    assert main(["jobs", "confirm", "delete-2024-originals"]) == 0
    assert main(["reconcile", "--until-done", "--interval", "0.3"]) == 0
    capsys.readouterr()
    assert [o.key for o in store.list("logs", "2024/")] == ["2024/README.txt"]
    assert len(list(store.list("logs", "2023/"))) == 20
    assert main(["plan", "--detailed-exitcode"]) == 0
    store.close()


FAILING = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: broken}
spec:
  manifest: {csv: {bucket: logs, key: no-such-manifest.csv}}
  operation: {untag: {}}
---
apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: after-broken}
spec:
  dependsOn: [{job: broken}]
  manifest: {generate: {bucket: logs}}
  operation: {untag: {}}
---
apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: later}
spec:
  dependsOn: [{job: after-broken}]
  manifest: {generate: {bucket: logs}}
  operation: {untag: {}}
"""


@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "jobs.yaml").write_text(FAILING)
    store = DirStore(tmp_path / ".batchctl" / "objects")
    store.create_bucket("logs")
    store.put("logs", "a", b"x")
    store.close()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_failed_and_blocked_exit_4(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--until-done", "--interval", "0.2"]) == 4
    out = capsys.readouterr().out
    assert "done: 1 final, 3 need attention, 0 awaiting a person" in out
    assert "✗ broken: ManifestNotFound: cannot read manifest s3://logs/no-such-manifest.csv" in out
    assert "✗ after-broken: broken failed" in out
    assert "✗ later: broken failed" in out
    assert main(["status"]) == 4
    capsys.readouterr()
    assert main(["status", "-o", "json"]) == 4
    view = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["action"], a["failed"]) for a in view["actions"]] == [
        ("broken", "noop", True),
        ("after-broken", "blocked", False),
        ("later", "blocked", False),
    ]


def test_verbose_shows_api_calls(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-v"]) == 0
    assert "api: local: ListJobs" in capsys.readouterr().err
    assert main(["apply", "--yes", "-v"]) == 0
    err = capsys.readouterr().err
    assert "api: local: CreateJob token=batchctl-" in err


def test_invalid_specs_change_nothing(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (failing / "jobs.d" / "bad.yaml").write_text("apiVersion: batchctl/v1\nkind: BatchJob\n")
    assert main(["apply", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:1:1: metadata: is required" in err
    assert "nothing was done" in err
    assert _job_ids(failing) == {}


def test_the_lock_names_its_holder(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = FileLock(failing / ".batchctl" / "reconcile.lock")
    lock.acquire()
    try:
        assert main(["apply", "--yes"]) == 1
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err
        assert "--lock-timeout" in err
    finally:
        lock.release()


def test_two_applies_at_once_make_no_duplicate(failing: Path) -> None:
    (failing / "jobs.d" / "jobs.yaml").write_text(
        "\n---\n".join(
            f"apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {{name: j{i}}}\nspec:\n"
            "  manifest: {generate: {bucket: logs}}\n  operation: {untag: {}}"
            for i in range(8)
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "runner", "apply", "--yes", "--lock-timeout", "60"]
    processes = [
        subprocess.Popen(
            command, cwd=failing, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    ids = _job_ids(failing)
    assert sorted(ids) == [f"j{i}" for i in range(8)]
    assert main(["jobs", "list", "-o", "json"]) == 0


def test_apply_asks_on_a_terminal(failing: Path) -> None:
    """On a terminal, apply shows the plan and asks; 'n' changes nothing."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("util-linux `script` is needed for a pseudo-terminal")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = f"{sys.executable} -m runner apply"
    answered = subprocess.run(
        [script, "-qec", command, "/dev/null"],
        cwd=failing,
        env=env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Apply 1 change(s)?" in answered.stdout
    assert "Apply cancelled; nothing was changed." in answered.stdout
    assert answered.returncode == 1
    assert _job_ids(failing) == {}
    confirmed = subprocess.run(
        [script, "-qec", command, "/dev/null"],
        cwd=failing,
        env=env,
        input="y\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert confirmed.returncode == 0, confirmed.stdout
    assert list(_job_ids(failing)) == ["broken"]
