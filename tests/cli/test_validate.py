"""`batchctl validate`: exit codes, text and JSON output, no traceback for any input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main

CASES = Path(__file__).resolve().parent.parent / "spec" / "cases"


def test_valid_folder(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(repo / "jobs.d")]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("resources valid (5 BatchJob, 1 Target) in 3 files")


def test_default_folder_is_jobs_d(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("jobs.d: 6 resources valid")


def test_invalid_prints_every_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CASES / "generate-on-cos.yaml")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        "generate-on-cos.yaml:6:14: spec.manifest.generate: manifest 'generate' is listed by "
        "batchctl and uploaded to the target's stagingBucket, and target 'cos' has none"
    )
    assert lines[1].endswith(
        "generate-on-cos.yaml:7:15: spec.operation.untag: operation 'untag' is not "
        "supported: target 'cos' is Tencent COS Batch Operation (cos), which supports "
        "copy, delete, restore, tag"
    )
    assert lines[2] == f"2 errors in {CASES / 'generate-on-cos.yaml'}"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CASES / "priority-too-high.yaml"), "--output", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert document["resources"] == 0
    assert document["errors"] == [
        {
            "file": str(CASES / "priority-too-high.yaml"),
            "line": 7,
            "column": 3,
            "path": "spec.priority",
            "message": "must be at most 2147483647",
        }
    ]


def test_json_output_valid(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(repo / "jobs.d"), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "valid": True,
        "resources": 6,
        "errors": [],
        "warnings": [],
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--bogus"],
        ["validate", "-o", "xml"],
        ["no-such-command"],
        ["validate", "a", "b"],
    ],
)
def test_usage_errors_exit_64(argv: list[str]) -> None:
    assert main(argv) == 64


def test_credential_values_are_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", str(CASES / "credential-in-aws-target.yaml"), "-o", "json"])
    main(["validate", str(CASES / "credential-in-aws-target.yaml")])
    out = capsys.readouterr().out
    assert "wJalrXUtnFEMI" not in out
    assert "looks like a credential" in out


HOSTILE = [
    b"",
    b"\x00\x01\x02",
    b"\xff\xfe\x00a",
    b"- - - -\n",
    b"apiVersion: [\n",
    b"{{{{",
    b"apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: 5\nspec: []\n",
    b"apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: x}\nspec: {local: {store: [1]}}\n",
    b"apiVersion: 1\nkind: [BatchJob]\n",
    b"apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: a}\nspec:\n  dependsOn: 7\n",
    b"? [a, b]\n: c\n",
    b"a: &a [*a]\n",
    b"!!binary aGVsbG8=\n",
    b"--- !!set {a, b}\n",
    b"apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: a, labels: {x: [1]}}\n",
    "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: ünïcode}\n".encode(),
]


@pytest.mark.parametrize("data", HOSTILE)
def test_no_input_gives_a_traceback(
    tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.yaml").write_bytes(data)
    assert main(["validate", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "internal error" not in captured.err
    assert "x.yaml:" in captured.out or "no resources found" in captured.out


def test_python_dash_m_runner(repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", "jobs.d"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "resources valid" in done.stdout


def test_a_priority_on_gcs_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "jobs.yaml"
    spec.write_text(
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: a}\nspec:\n  target: g\n"
        "  priority: 5\n  manifest: {csv: {bucket: media, key: m.csv}}\n  operation: {delete: {}}\n"
        "---\napiVersion: batchctl/v1\nkind: Target\nmetadata: {name: g}\n"
        "spec: {gcs: {project: media-prod-1}}\n"
        "---\napiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {name: b}\nspec:\n  target: g\n"
        "  manifest: {csv: {bucket: media, key: m.csv}}\n  operation: {delete: {}}\n"
    )
    assert main(["validate", str(spec), "-o", "json"]) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]  # not b: no priority given
    assert (warning["line"], warning["path"]) == (6, "spec.priority")
    assert "has no priority" in warning["message"]
