"""The layers of docs/architecture.md are import-linter contracts in pyproject.toml.

``make lint`` runs ``lint-imports`` over the tree; here the contracts are shown to
catch what they are meant to catch, on a copy of the tree with one crossing added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("runner/engine/crossing.py", "from runner.cli import app\n", "Layers"),
        ("runner/state/crossing.py", "from runner.backends import base\n", "Layers"),
        ("runner/stores/crossing.py", "from runner.reconcile import plan\n", "Layers"),
        ("runner/spec/crossing.py", "import os\n", "touch no file"),
        ("runner/spec/crossing.py", "import boto3\n", "do no I/O"),
        ("runner/reconcile/plan_extra.py", "x = 1\n", None),
    ],
)
def test_the_contracts_catch_crossings(
    tmp_path: Path, module: str, line: str, contract: str | None
) -> None:
    shutil.copytree(RUNNER, tmp_path / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(RUNNER.parent / "pyproject.toml", tmp_path)
    (tmp_path / module).write_text(line, encoding="utf-8")
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    if contract is None:  # an import-free module changes nothing
        assert done.returncode == 0, done.stdout
    else:
        assert done.returncode == 1, done.stdout
        assert f"{contract}" in done.stdout.split("Broken contracts", 1)[-1]


def test_commands_that_never_touch_a_cloud_do_not_load_boto3() -> None:
    """boto3 and botocore cost ~0.3 s at start-up (bench/startup.py): only what uses them
    loads them (a state in a bucket, an aws target, engine serve)."""
    probe = (
        "import sys, runner.cli; "
        "print(sorted(m for m in ('boto3', 'botocore', 'runner.serve.server') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=RUNNER.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"
