"""Planning cost: 1,000 specs against 10,000 existing jobs on a counting in-memory backend.

Run by hand from the repository root::

    .venv/bin/python bench/reconcile.py            # appends to bench/RESULTS.md
    .venv/bin/python bench/reconcile.py --no-record

The backend holds 10,000 managed jobs: ten generations of each of the 1,000 specs
(the newest Active, Complete or Suspended, the older ones final), all recorded in a
SQLite ledger. Measured: loading and validating the 1,000 specs from YAML, one
observe (paged ListJobs) + ledger read + plan, and the API calls that took.
Targets (issue 4): plan under 1 s, and no more than ceil(jobs / 1000) ListJobs calls
when no job needs details.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.engine import machine  # noqa: E402
from runner.backends.memory import MemoryBackend  # noqa: E402
from runner.jobs.progress import Counts  # noqa: E402
from runner.jobs.status import JobStatus  # noqa: E402
from runner.reconcile.apply import build_request  # noqa: E402
from runner.reconcile.controller import desired_jobs  # noqa: E402
from runner.reconcile.model import Action, ActionKind, LedgerRecord  # noqa: E402
from runner.reconcile.observe import observe  # noqa: E402
from runner.reconcile.plan import plan  # noqa: E402
from runner.spec.checks import check_all  # noqa: E402
from runner.spec.loader import SourceFile, parse_sources  # noqa: E402
from runner.state.ledger.sqlite import SqliteLedger  # noqa: E402

SPECS = 1000
GENERATIONS = 10


def spec_text(index: int) -> str:
    """One BatchJob; every tenth depends on the one before it."""
    depends = f"\n  dependsOn: [{{job: job-{index - 1:05d}}}]" if index % 10 else ""
    return (
        "apiVersion: batchctl/v1\nkind: BatchJob\n"
        f"metadata: {{name: job-{index:05d}, campaign: bench}}\n"
        "spec:\n"
        f"  priority: {index % 50}{depends}\n"
        f"  manifest: {{generate: {{bucket: logs, prefix: p{index}/}}}}\n"
        f"  operation: {{tag: {{tags: {{n: '{index}'}}}}}}\n"
    )


def run(rounds: int, spec_count: int = SPECS) -> dict[str, float]:
    """Build the scene once, then time ``rounds`` observe+plan passes."""
    text = "---\n".join(spec_text(i) for i in range(spec_count)).encode()
    started = time.perf_counter()
    specs = parse_sources([SourceFile("bench.yaml", text)])
    errors = specs.errors + check_all(specs)
    items = desired_jobs(specs)
    load_s = time.perf_counter() - started
    assert errors == [], errors[:3]

    backend = MemoryBackend()
    folder = tempfile.mkdtemp()
    ledger = SqliteLedger(Path(folder) / "ledger.db")
    statuses = [JobStatus.COMPLETE, JobStatus.ACTIVE, JobStatus.SUSPENDED]
    for generation in range(1, GENERATIONS + 1):
        for index, item in enumerate(items):
            action = Action(
                ActionKind.CREATE,
                target="local",
                name=item.key[1],
                reason="",
                generation=generation,
            )
            job_id = backend.create_job(build_request(item, action, backend, None))
            newest = generation == GENERATIONS
            status = statuses[index % 3] if newest else JobStatus.COMPLETE
            backend.set_status(job_id, status, total=100, succeeded=100 if status.final else 40)
            ledger.record(
                LedgerRecord(
                    target="local",
                    name=item.key[1],
                    generation=generation,
                    job_id=job_id,
                    spec_hash=item.spec_hash,
                    status=status,
                    counts=Counts(100, 100, 0),
                    created=time.time(),
                    immutable=item.immutable,
                )
            )
    jobs = len(backend.jobs)
    # The in-memory service's own answering (building 100,000 job summaries) is timed
    # apart: batchctl's share of a pass is the rest.
    listing = [0.0]
    answer = backend.list_jobs

    def timed_list(**kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return answer(**kwargs)
        finally:
            listing[0] += time.perf_counter() - begun

    backend.list_jobs = timed_list  # type: ignore[method-assign]
    base_mb = _reset_peak()
    timings = []
    own = []
    calls: dict[str, int] = {}
    for _ in range(rounds):
        backend.calls.clear()
        listing[0] = 0.0
        started = time.perf_counter()
        seen = observe({"local": backend})
        result = plan(items, seen, _ledger_view(ledger), now=time.time())
        timings.append(time.perf_counter() - started)
        own.append(timings[-1] - listing[0])
        calls = dict(backend.calls)
    assert len(result.actions) == spec_count, (len(result.actions), spec_count)
    assert not result.adoptions
    ledger.close()
    return {
        "specs": spec_count,
        "jobs": jobs,
        "load_s": round(load_s, 3),
        "plan_s_median": round(statistics.median(timings), 3),
        "plan_s_max": round(max(timings), 3),
        "batchctl_s_median": round(statistics.median(own), 3),
        "list_calls": calls.get("ListJobs", 0),
        "list_calls_allowed": math.ceil(jobs / 1000),
        "describe_calls": calls.get("DescribeJob", 0),
        "changes": len(result.changes),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pass_peak_mb": round(_status_mb("VmHWM") - base_mb),
    }


def _ledger_view(ledger: SqliteLedger) -> Any:
    """What the controller reads of the ledger for a plan (all records before it had a view)."""
    view = getattr(ledger, "view", None)
    return view() if view is not None else ledger.records()


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> float:
    """Reset the process's peak RSS (Linux: clear_refs 5); return the RSS now, in MB.

    The peak after the passes minus this is what observe + plan add to a process that
    already holds the scene (the in-memory service's 100,000 jobs are the bench's own).
    """
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def record(result: dict[str, float]) -> None:
    """Append the numbers to bench/RESULTS.md."""
    lines = [
        "",
        f"## reconcile.py — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Machine: {machine()}. Counting in-memory backend, SQLite ledger.",
        "",
        "| specs | existing jobs | load+validate s | observe+plan s (median) | max s "
        "| of which batchctl s | ListJobs calls (allowed) | DescribeJob calls | peak RSS MB "
        "| pass adds MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result['specs']:,} | {result['jobs']:,} | {result['load_s']} | "
        f"{result['plan_s_median']} | {result['plan_s_max']} | {result['batchctl_s_median']} "
        f"| {result['list_calls']} "
        f"({result['list_calls_allowed']}) | {result['describe_calls']} | "
        f"{result['peak_rss_mb']} | {result['pass_peak_mb']} |",
    ]
    with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--specs", type=int, default=SPECS, help="ten jobs exist per spec")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    result = run(args.rounds, args.specs)
    print(result)
    if not args.no_record:
        record(result)


if __name__ == "__main__":
    main()
