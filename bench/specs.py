"""Spec loading: `validate` of 10,000 BatchJobs against composing their YAML with libyaml.

Run by hand from the repository root::

    .venv/bin/python bench/specs.py            # appends to bench/RESULTS.md
    .venv/bin/python bench/specs.py --no-record

Issue 17.3: validating 10,000 specs took 9.7 s, 92% of it in PyYAML's pure-Python
scanner and composer, though libyaml is installed. The contender, measured in the same
run, is composing the same files with ``yaml.CSafeLoader`` alone (nodes with line and
column marks, which is what a loader that reports positions needs at least); the goal is
``jobsdir.load`` (read, parse, validate, cross-check: what ``batchctl validate`` does)
within 2x of it. The pure-Python composer is shown for reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.engine import append_results, machine  # noqa: E402
from runner.jobsdir import load  # noqa: E402

SPECS = 10_000
PER_FILE = 100


def spec_text(index: int) -> str:
    """One BatchJob as people write them: block style, a dependency, a report, tags."""
    depends = f"  dependsOn:\n    - job: job-{index - 1:05d}\n" if index % 10 else ""
    return (
        "apiVersion: batchctl/v1\n"
        "kind: BatchJob\n"
        "metadata:\n"
        f"  name: job-{index:05d}\n"
        "  campaign: bench\n"
        "  labels:\n"
        "    team: data\n"
        "spec:\n"
        f"  priority: {index % 50}\n"
        "  confirmation: auto\n"
        f"{depends}"
        "  manifest:\n"
        "    generate:\n"
        "      bucket: logs\n"
        f"      prefix: p{index}/\n"
        "  operation:\n"
        "    tag:\n"
        "      tags:\n"
        f"        n: '{index}'\n"
        "        owner: data\n"
        "  report:\n"
        "    bucket: reports\n"
        "    scope: failed\n"
    )


def write_project(folder: Path) -> list[Path]:
    """10,000 specs in files of 100 documents under ``folder/jobs.d``."""
    jobs = folder / "jobs.d"
    jobs.mkdir(parents=True)
    files = []
    for start in range(0, SPECS, PER_FILE):
        path = jobs / f"jobs-{start:05d}.yaml"
        path.write_text("---\n".join(spec_text(i) for i in range(start, start + PER_FILE)))
        files.append(path)
    return files


def _compose(files: list[Path], loader: type) -> None:
    for path in files:
        for _ in yaml.compose_all(path.read_text(), Loader=loader):
            pass


def _median(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        files = write_project(folder)

        def validate() -> None:
            specs = load(folder / "jobs.d")
            assert not specs.errors, specs.errors[:3]
            assert len(specs.jobs) == SPECS

        rows = [
            (
                "contender",
                "compose, yaml.CSafeLoader (libyaml)",
                _median(lambda: _compose(files, yaml.CSafeLoader), args.rounds),
            ),
            (
                "reference",
                "compose, yaml.SafeLoader (pure Python)",
                _median(lambda: _compose(files, yaml.SafeLoader), 1),
            ),
            ("this tree", "jobsdir.load (batchctl validate)", _median(validate, args.rounds)),
        ]
    contender = rows[0][2]
    lines = [
        "",
        f"## specs.py — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Machine: {machine()}. {SPECS:,} BatchJobs in {SPECS // PER_FILE} files; "
        f"median of {args.rounds} rounds (the pure-Python composer: one).",
        "",
        "| code | what | s | × libyaml compose |",
        "|---|---|---:|---:|",
    ]
    for code, what, seconds in rows:
        lines.append(f"| {code} | {what} | {seconds:.2f} | {seconds / contender:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_record:
        append_results(text)


if __name__ == "__main__":
    main()
