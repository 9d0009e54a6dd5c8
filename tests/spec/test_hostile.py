"""Hostile specs and manifest files (issue 14): a clear error naming the place, in
bounded time and memory, and nothing applied. What could hang (a FIFO) runs in a
subprocess with a hard timeout, so a regression fails instead of blocking the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli import main
from runner.spec.loader import SourceFile, parse_sources
from runner.stores.dirstore import DirStore

REPO = Path(__file__).resolve().parents[2]

JOB = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {{name: {name}}}
spec:
  manifest: {manifest}
  operation: {{untag: {{}}}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "jobs.d").mkdir(parents=True)
    store = DirStore(root / ".batchctl" / "objects")
    store.create_bucket("logs")
    store.close()
    monkeypatch.chdir(root)
    return root


def _batchctl(root: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _staged(root: Path) -> list[str]:
    store = DirStore(root / ".batchctl" / "objects")
    try:
        return [o.key for o in store.list("batchctl-manifests", "")]
    except Exception:
        return []
    finally:
        store.close()


def test_a_manifest_file_outside_the_project_is_refused_and_never_staged(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = project.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("logs,top-secret\n")
    (project / "jobs.d" / "a.yaml").write_text(
        JOB.format(name="a", manifest="{file: ../../outside/secret.txt}")
    )
    (project / "jobs.d" / "link.csv").symlink_to(outside / "secret.txt")
    (project / "jobs.d" / "b.yaml").write_text(JOB.format(name="b", manifest="{file: link.csv}"))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "a.yaml:5:14: spec.manifest.file: " in out
    assert "resolves outside the project" in out
    assert "b.yaml:5:14: spec.manifest.file: " in out
    assert main(["apply", "--yes"]) == 1
    assert _staged(project) == []
    assert "top-secret" not in capsys.readouterr().out


def test_devices_and_fifos_are_never_opened(project: Path) -> None:
    (project / "jobs.d" / "zero.csv").symlink_to("/dev/zero")
    os.mkfifo(project / "jobs.d" / "fifo.csv")
    (project / "jobs.d" / "a.yaml").write_text(
        JOB.format(name="a", manifest="{file: zero.csv}")
        + "---\n"
        + JOB.format(name="b", manifest="{file: fifo.csv}")
    )
    os.mkfifo(project / "jobs.d" / "blocked.yaml")
    done = _batchctl(project, "validate", timeout=30)
    assert done.returncode == 1
    assert "zero.csv resolves outside the project" in done.stdout
    assert "fifo.csv is not a regular file" in done.stdout
    assert "blocked.yaml:1:1: not a regular file (a FIFO, a device …): skipped" in done.stdout


def test_spec_symlinks_that_leave_the_project_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = project.parent / "elsewhere.yaml"
    elsewhere.write_text(JOB.format(name="sneaky", manifest="{generate: {bucket: logs}}"))
    (project / "jobs.d" / "sneaky.yaml").symlink_to(elsewhere)
    (project / "jobs.d" / "passwd.yaml").symlink_to("/etc/passwd")
    (project / "jobs.d" / "loop").symlink_to(project / "jobs.d")  # a folder loop
    (project / "shared").mkdir()
    (project / "shared" / "ok.yaml").write_text(
        JOB.format(name="ok", manifest="{generate: {bucket: logs}}")
    )
    (project / "jobs.d" / "inside.yaml").symlink_to(project / "shared" / "ok.yaml")
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert f"jobs.d/sneaky.yaml:1:1: a symlink to {elsewhere}, outside the project" in out
    assert "jobs.d/passwd.yaml:1:1: a symlink to /etc/passwd, outside the project" in out
    assert "root:" not in out
    assert "2 errors in jobs.d" in out  # the link inside the project is fine; the loop ends
    assert main(["apply", "--yes"]) == 1
    assert not (project / ".batchctl" / "ledger.db").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec: " + "[" * 600 + "]" * 600, "nested deeper than 64 levels"),
        ("spec: " + "{a: " * 600 + "1" + "}" * 600, "nested deeper than 64 levels"),
        ("spec:\n  priority: " + "9" * 4301, "a number of 4301 characters is too long"),
    ],
    ids=["sequences", "mappings", "long-number"],
)
def test_deep_nesting_and_long_numbers_are_spec_errors(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (project / "jobs.d" / "a.yaml").write_text(text + "\n")
    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert "internal error" not in captured.err
    assert message in captured.out
    assert "jobs.d/a.yaml:" in captured.out


def test_a_flood_of_errors_is_cut_on_the_terminal_not_in_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "jobs.d" / "a.yaml").write_text("--- {}\n" * 2000)
    assert main(["validate"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 52
    assert lines[-2] == "… and 3,950 more errors"
    assert lines[-1] == "4,000 errors in jobs.d"
    assert main(["validate", "-o", "json"]) == 1
    import json

    assert len(json.loads(capsys.readouterr().out)["errors"]) == 4000
    assert main(["plan"]) == 1
    assert "… and 3,950 more errors" in capsys.readouterr().err


def test_a_long_dependency_chain_plans(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = [JOB.format(name="j0", manifest="{generate: {bucket: logs}}")]
    for i in range(1, 1200):
        jobs.append(
            JOB.format(name=f"j{i}", manifest="{generate: {bucket: logs}}")
            + f"  dependsOn: [{{job: j{i - 1}}}]\n"
        )
    (project / "jobs.d" / "chain.yaml").write_text("---\n".join(jobs))
    assert main(["plan", "--no-lock"]) == 0
    out = capsys.readouterr().out
    assert "+   j0: create generation 1: new spec" in out
    assert "Plan: 1 to create, 0 to recreate, 0 to change, 0 to cancel; 1199 waiting" in out


# -- property tests: whatever the bytes, an answer, never an internal error ----------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
_yaml_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


def _to_yaml(value: object) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=None, allow_unicode=True)


def _parse(data: bytes) -> None:
    specs = parse_sources([SourceFile("x.yaml", data)])
    for error in specs.errors:
        assert error.file == "x.yaml"
        assert error.line >= 1


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(_yaml_values)
def test_any_yaml_structure_gets_located_errors(value: object) -> None:
    _parse(_to_yaml(value).encode())
    _parse(_to_yaml({"apiVersion": "batchctl/v1", "kind": "BatchJob", "spec": value}).encode())


@settings(max_examples=200, deadline=5000)
@given(st.binary(max_size=300))
def test_any_bytes_get_located_errors(data: bytes) -> None:
    _parse(data)


@settings(max_examples=40, deadline=5000)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", "{a: ", "- "]))
def test_any_nesting_depth_is_an_error_not_a_crash(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        text = "".join("  " * i + "- \n" for i in range(depth))
    else:
        text = "a: " + opener * depth + "1" + closer * depth
    _parse(text.encode())
