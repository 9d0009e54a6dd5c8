"""Every invalid spec under cases/ gives exactly the errors its expectations name.

A case is either one YAML file ending in `# expect: LINE:COL PATH: FRAGMENT`
lines, or a folder with an EXPECT file of `FILE:LINE:COL PATH: FRAGMENT` lines
(FILE relative to the folder; empty for the folder itself). PATH `-` means the
error names no field. The number of errors must match the number of
expectations, so a case also fails when extra errors appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.jobsdir import load

CASES = Path(__file__).parent / "cases"
_EXPECT = re.compile(r"^(?P<file>[^:]*):?(?P<line>\d+):(?P<col>\d+) (?P<path>\S+): (?P<frag>.+)$")


@dataclass(frozen=True)
class Expected:
    file: Path
    line: int
    column: int
    path: str
    fragment: str


def _parse(line: str, default_file: Path, base: Path) -> Expected:
    found = _EXPECT.match(line.strip())
    assert found, f"bad expectation: {line!r}"
    name = found["file"]
    return Expected(
        file=(base / name) if name else default_file,
        line=int(found["line"]),
        column=int(found["col"]),
        path="" if found["path"] == "-" else found["path"],
        fragment=found["frag"],
    )


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.suffix == ".yaml" or p.is_dir())


def _expectations(case: Path) -> list[Expected]:
    if case.is_dir():
        lines = (case / "EXPECT").read_text(encoding="utf-8").splitlines()
        return [_parse(line, case, case) for line in lines if line.strip()]
    text = case.read_text(encoding="utf-8")
    lines = [m[1] for m in re.finditer(r"^# expect: (.+)$", text, re.MULTILINE)]
    return [
        _parse(":" + line if not line.split()[0].count(":") > 1 else line, case, case.parent)
        for line in lines
    ]


def test_at_least_forty_cases() -> None:
    assert len(_cases()) >= 40


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.stem)
def test_invalid_case(case: Path) -> None:
    expected = _expectations(case)
    assert expected, f"{case} has no expectations"
    errors = load(case).errors
    shown = "\n".join(str(e) for e in errors)
    for want in expected:
        matches = [
            e
            for e in errors
            if Path(e.file) == want.file
            and (e.line, e.column) == (want.line, want.column)
            and e.path == want.path
            and want.fragment in e.message
        ]
        assert matches, f"no error like {want} in:\n{shown}"
    assert len(errors) == len(expected), f"expected {len(expected)} errors, got:\n{shown}"
