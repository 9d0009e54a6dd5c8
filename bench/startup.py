"""Start-up time of commands that never touch a cloud (issue 17.6), against `aws --version`.

Run by hand from the repository root::

    .venv/bin/python bench/startup.py [--tree OTHER_CHECKOUT …] [--no-record]

Each command runs RUNS times in a fresh interpreter; the median wall time is reported,
with the contender (the AWS CLI v1 printing its version) measured in the same run.
``--tree`` adds the same commands run from another checkout (say, the commit before a
change), so before and after share one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.engine import append_results, machine  # noqa: E402

RUNS = 15


def _median(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run(trees: list[Path]) -> list[tuple[str, str, float]]:
    rows = []
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws:
        rows.append(
            ("contender", "aws --version", _median([aws, "--version"], REPO, dict(os.environ)))
        )
    for tree in [REPO, *trees]:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        label = "this tree" if tree == REPO else str(tree)
        for command in (["--help"], ["validate", "jobs.d"]):
            argv = [sys.executable, "-m", "runner", *command]
            # run from the tree itself: `python -m` puts the working folder first on the path
            rows.append((label, "batchctl " + " ".join(command), _median(argv, tree, env)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, default=[])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = run(args.tree)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"## startup.py — {stamp}",
            "",
            f"Machine: {machine()}. Median wall time of {RUNS} runs each, fresh interpreter.",
            "",
            "| code | command | median ms |",
            "|---|---|---:|",
            *(f"| {a} | {b} | {ms:.0f} |" for a, b, ms in rows),
            "",
        ]
    )
    print(text)
    if not args.no_record:
        append_results(text)


if __name__ == "__main__":
    main()
