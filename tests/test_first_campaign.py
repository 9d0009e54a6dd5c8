"""The README's "Your first campaign", run from an empty folder as a new user types it.

Each `$ batchctl …` line runs in-process and its output must match the README's lines,
where `…` stands for what differs from run to run (times, job IDs); `cd` changes folder
and any other line runs in a shell there.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from runner.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def steps() -> list[tuple[str, list[str]]]:
    """(command, expected lines) of the first-campaign block."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your first campaign", 1)[1]
    block = re.search(r"```shell-session\n(.*?)```", section, re.S)
    assert block is not None, "the README lost its first-campaign block"
    found: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return found


def _matches(expected: list[str], got: list[str]) -> bool:
    if len(expected) != len(got):
        return False
    for want, line in zip(expected, got, strict=True):
        pattern = ".+".join(re.escape(part) for part in want.split("…"))
        if not re.fullmatch(pattern, line):
            return False
    return True


def test_your_first_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = steps()
    assert 8 <= len(ran) <= 12  # "ten commands"
    for command, expected in ran:
        if command.startswith("cd "):
            monkeypatch.chdir(Path.cwd() / command[3:])
            continue
        if not command.startswith("batchctl "):
            subprocess.run(["bash", "-c", command], check=True, cwd=Path.cwd())
            continue
        capsys.readouterr()
        code = main(shlex.split(command)[1:])
        out = capsys.readouterr().out.rstrip("\n").splitlines()
        assert code == 0, (command, out)
        assert _matches(expected, out), f"{command}:\n" + "\n".join(out)
    # the restore is what `objects stat` shows, and the object reads back
    assert main(["objects", "get", "s3://first-bucket/archive/2024/beach.jpg"]) == 0
    assert (Path.cwd() / "beach.jpg").read_text() == "sunny\n"
