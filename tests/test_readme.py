"""The README's console examples run and print exactly what the README shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def examples() -> list[tuple[str, str]]:
    """(command, expected stdout) for every `$ batchctl …` line in ```console blocks."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        command: str | None = None
        output: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            found.append((command, "\n".join(output)))
    return found


def test_readme_has_examples() -> None:
    assert len(examples()) >= 3


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh checkout's worth of files (jobs.d, the spec cases) with the demo data."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "jobs.d", root / "jobs.d")
    shutil.copytree(REPO / "tests" / "spec" / "cases", root / "tests" / "spec" / "cases")
    previous = os.getcwd()
    os.chdir(root)
    try:
        assert main(["demo", "init"]) == 0
    finally:
        os.chdir(previous)
    return root


@pytest.mark.parametrize(("command", "expected"), examples(), ids=lambda v: v[:40])
def test_readme_example(
    command: str,
    expected: str,
    checkout: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = shlex.split(command)
    assert argv[0] == "batchctl"
    monkeypatch.chdir(checkout)
    capsys.readouterr()
    main(argv[1:])
    assert capsys.readouterr().out.rstrip("\n") == expected.rstrip("\n")


def test_readme_tree_is_what_the_finished_demo_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `status --tree` picture in the README, from the example campaign run to its end."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"\$ batchctl status --tree\n(.*?)```", text, re.S)
    assert block is not None
    shown = "\n".join(line.removeprefix("  ") for line in block.group(1).splitlines())
    shutil.copytree(REPO / "jobs.d", tmp_path / "jobs.d")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "init"]) == 0
    assert main(["reconcile", "--until-done", "--interval", "0.2", "--timeout", "300"]) == 0
    capsys.readouterr()
    assert main(["status", "--tree"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == shown.rstrip("\n").rstrip()
