"""The recipes under examples/ and .pre-commit-hooks.yaml, tested where they can be.

Every batchctl command they contain runs against a sample project (the example
campaign on the embedded engine) with the exit code its comments promise; the
pre-commit hook's entry runs as pre-commit would run it; the systemd units and the
CronJob are parsed and their schedules checked.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _commands(script: str) -> list[list[str]]:
    """The batchctl invocations of a shell script (redirections dropped)."""
    found = []
    for line in script.splitlines():
        line = line.strip()
        if not line.startswith("batchctl "):
            continue
        words = shlex.split(line.split(">", 1)[0], comments=True)
        found.append(words[1:])
    return found


def recipe_commands() -> list[list[str]]:
    """Every batchctl command of every recipe, in order."""
    commands: list[list[str]] = []
    workflows = ("batchctl.yml", "batchctl-scheduled.yml")  # a pull request, then the timer
    assert sorted(workflows) == sorted(p.name for p in (EXAMPLES / "github-actions").iterdir())
    for workflow in (EXAMPLES / "github-actions" / name for name in workflows):
        for job in _yaml(workflow)["jobs"].values():
            for step in job["steps"]:
                commands += _commands(step.get("run", ""))
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(EXAMPLES / "systemd" / "batchctl-reconcile.service")
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert exec_start[0].endswith("/batchctl")
    commands.append(exec_start[1:])
    cronjob = _yaml(EXAMPLES / "kubernetes" / "cronjob.yaml")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "batchctl"
    commands.append(container["command"][1:])
    return commands


def test_the_recipes_name_the_commands_they_are_about() -> None:
    verbs = [c[0] for c in recipe_commands()]
    # batchctl.yml, batchctl-scheduled.yml, the systemd service, the CronJob
    assert verbs == ["validate", "plan", "apply", "status", "reconcile", "reconcile", "reconcile"]


@pytest.fixture
def sample(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(repo / "jobs.d", tmp_path / "jobs.d")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "init"]) == 0
    return tmp_path


EXPECTED = {"plan": 2}  # --detailed-exitcode: changes pending; every other command: 0


def test_every_recipe_command_runs(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in recipe_commands():
        code = main(command)
        out = capsys.readouterr()
        assert code == EXPECTED.get(command[0], 0), (command, out.out, out.err)
        if command[0] == "plan":
            assert out.out.startswith("### batchctl plan")  # what the PR comment shows


def test_the_pre_commit_hook(tmp_path: Path, repo: Path) -> None:
    (hook,) = _yaml(repo / ".pre-commit-hooks.yaml")
    assert hook["id"] == "batchctl-validate"
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("jobs.d/log-archive.yaml")
    assert files.search("jobs.d/manifests/contracts.csv")
    assert files.search("batchctl.yaml")
    assert not files.search("README.md")
    shutil.copytree(repo / "jobs.d", tmp_path / "jobs.d")
    # pre-commit runs `entry` with `args` in the repository root, from the hook's venv
    command = [*shlex.split(hook["entry"]), *hook["args"]]
    binary = Path(sys.executable).parent / command[0]
    prefix = [str(binary)] if binary.exists() else [sys.executable, "-m", "runner"]
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *command[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    passed = run()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (tmp_path / "jobs.d" / "broken.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: Bad_Name}\n"
    )
    failed = run()
    assert failed.returncode == 1
    assert "broken.yaml:3:" in failed.stdout
    (tmp_path / "jobs.d" / "broken.yaml").unlink()
    (tmp_path / "batchctl.yaml").write_text("state: {url: s3://ok-bucket/p, leaseSeconds: 1}\n")
    failed = run()
    assert failed.returncode == 1
    assert "batchctl.yaml:1:" in failed.stdout
    assert "state.leaseSeconds" in failed.stdout


def test_the_systemd_units() -> None:
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(EXAMPLES / "systemd" / "batchctl-reconcile.service")
    assert service["Service"]["Type"] == "oneshot"
    assert "OnFailure" in service["Unit"]
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(EXAMPLES / "systemd" / "batchctl-reconcile.timer")
    calendar = timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the calendar was not checked")
    checked = subprocess.run(
        [analyze, "calendar", calendar], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_the_cronjob() -> None:
    cronjob = _yaml(EXAMPLES / "kubernetes" / "cronjob.yaml")
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    spec = cronjob["spec"]
    assert croniter.is_valid(spec["schedule"])
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    for workflow in (EXAMPLES / "github-actions").glob("*.yml"):
        for trigger in _yaml(workflow)[True].get("schedule", []):  # `on:` is YAML 1.1's True
            assert croniter.is_valid(trigger["cron"])


def test_the_gcs_campaign_runs_locally_and_validates_for_gcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.stores.dirstore import DirStore

    project = tmp_path / "photos"
    shutil.copytree(EXAMPLES / "gcs-photos", project)
    store = DirStore(project / ".batchctl" / "objects")
    store.create_bucket("media")
    for index in range(3):
        store.put("media", f"photos/{index}.jpg", b"jpeg", metadata={"camera": "x"})
    store.put("media", "drafts/a.jpg", b"draft")
    store.close()
    monkeypatch.chdir(project)
    until_done = ["reconcile", "--until-done", "--interval", "0.2", "--timeout", "120"]
    assert main(until_done) == 0
    assert "done: 3 final, 0 need attention, 1 awaiting a person" in capsys.readouterr().out
    assert main(["jobs", "confirm", "delete-drafts"]) == 0
    capsys.readouterr()
    assert main(until_done) == 0
    assert "done: 4 final, 0 need attention, 0 awaiting a person" in capsys.readouterr().out
    store = DirStore(project / ".batchctl" / "objects")
    try:
        info = store.head("media", "photos/1.jpg")
        assert info.content_type == "image/jpeg"
        assert info.metadata["camera"] == "x"  # kept: metadata in place changes what it names
        assert info.metadata["reviewed"] == "no"
        assert not store.get_legal_hold("media", "photos/1.jpg")
        assert list(store.list("media", "drafts/")) == []
    finally:
        store.close()
    # the one change the comment names moves the whole campaign to GCS
    spec = project / "jobs.d" / "photos.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("target: local", "target: gcs"))
    assert main(["validate"]) == 0
