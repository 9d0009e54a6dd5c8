"""`batchctl init`: a project that validates and plans, idempotent, never overwriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.cli.init import RECIPES, Ci

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "github/batchctl.yml": "examples/github-actions/batchctl.yml",
    "github/batchctl-scheduled.yml": "examples/github-actions/batchctl-scheduled.yml",
    "gitlab/gitlab-ci.yml": "examples/gitlab/gitlab-ci.yml",
    "systemd/batchctl-reconcile.service": "examples/systemd/batchctl-reconcile.service",
    "systemd/batchctl-reconcile.timer": "examples/systemd/batchctl-reconcile.timer",
    "k8s/cronjob.yaml": "examples/kubernetes/cronjob.yaml",
}


def test_a_new_project_validates_and_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "new"
    assert main(["init", str(project)]) == 0
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "batchctl.yaml",
        "jobs.d/first-campaign.yaml",
        "jobs.d/targets.yaml",
        "schemas/batchjob.v1.json",
        "schemas/target.v1.json",
    ]
    assert (project / ".gitignore").read_text().splitlines()[-1] == ".batchctl/"
    first = (project / "jobs.d" / "first-campaign.yaml").read_text()
    assert first.startswith("# yaml-language-server: $schema=../schemas/batchjob.v1.json")
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert main(["validate"]) == 0
    assert main(["schema", "--check"]) == 0  # the schemas written are the current ones
    assert main(["plan", "--detailed-exitcode"]) == 2
    assert "+   restore-archive: create generation 1: new spec" in capsys.readouterr().out
    assert (
        sorted(p.name for p in project.iterdir())
        == [
            ".gitignore",
            "batchctl.yaml",
            "jobs.d",
            "schemas",
        ]
        or (project / ".batchctl").exists()
    )


def test_init_is_idempotent_and_keeps_what_a_person_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path)]) == 0
    assert main(["init", str(tmp_path)]) == 0
    assert "6 file(s) already as init writes them" in capsys.readouterr().out
    own = "state: {url: s3://team-state/p, region: us-east-1}\n"
    (tmp_path / "batchctl.yaml").write_text(own)
    assert main(["init", str(tmp_path), "--ci", "gitlab"]) == 0
    out = capsys.readouterr().out
    assert "kept" in out
    assert "batchctl.yaml: it differs" in out
    assert (tmp_path / "batchctl.yaml").read_text() == own  # never overwritten
    assert (tmp_path / ".gitlab-ci.yml").is_file()  # what was missing is added
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert "batchctl.yaml (replaced)" in capsys.readouterr().out
    assert (tmp_path / "batchctl.yaml").read_text() != own


def test_init_refuses_a_file_in_the_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "jobs.d").write_text("not a folder")
    capsys.readouterr()
    assert main(["init", str(tmp_path)]) == 1
    assert "jobs.d: exists and is not a folder: nothing was written" in capsys.readouterr().err
    assert (tmp_path / "jobs.d").read_text() == "not a folder"
    assert not (tmp_path / "batchctl.yaml").exists()  # nothing written


@pytest.mark.parametrize("ci", list(Ci))
def test_each_recipe_is_the_one_in_examples(ci: Ci, tmp_path: Path) -> None:
    assert main(["init", str(tmp_path), "--ci", ci.value]) == 0
    for packaged, path in RECIPES[ci]:
        written = (tmp_path / path).read_text(encoding="utf-8")
        assert written == (REPO / EXAMPLES[packaged]).read_text(encoding="utf-8"), packaged
