"""Engine throughput and memory: tag and copy jobs of 10k, 100k and 1M objects on the dir store.

Run by hand from the repository root::

    .venv/bin/python bench/engine.py                       # 10k, 100k, 1M; tag and copy
    .venv/bin/python bench/engine.py --sizes 10000 --ops tag --no-record

For each size the objects (100 bytes each, 1,000 per folder) are written straight
to disk, a job with a generated manifest is created through the engine API, and a
separate worker process (``--child``) runs it to the end, so that its peak RSS is
the engine's alone. Reported: tasks/s over the time the job was Active, the wall
time from creation to Complete (listing, preparing and the report included), and
the worker's peak RSS. Results are appended to bench/RESULTS.md with the machine
and the date unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.engine.service import Engine  # noqa: E402
from runner.engine.worker import Worker  # noqa: E402
from runner.jobs.models import JobRequest  # noqa: E402
from runner.spec.models import Manifest, Operation, Report  # noqa: E402
from runner.stores.dirstore import DirStore  # noqa: E402

OPERATIONS = {
    "tag": {"tag": {"tags": {"class": "archive", "bench": "yes"}}},
    "copy": {"copy": {"bucket": "archive"}},
}


def make_objects(root: Path, count: int) -> float:
    """Write ``count`` objects of 100 bytes into bucket ``logs``; return seconds taken."""
    started = time.perf_counter()
    store = DirStore(root)
    for bucket in ("logs", "archive", "reports"):
        store.create_bucket(bucket)
    store.close()
    body = b"x" * 100
    logs = root / "logs"
    for folder in range((count + 999) // 1000):
        path = logs / f"d{folder:05d}"
        path.mkdir(exist_ok=True)
        for i in range(folder * 1000, min(count, folder * 1000 + 1000)):
            with open(path / f"o{i:08d}.log", "wb") as out:
                out.write(body)
    return time.perf_counter() - started


def child(work: Path, workers: int) -> None:
    """Run the worker until idle and print its peak RSS (the --child mode)."""
    engine = Engine(work / "state")
    store = DirStore(work / "objects")
    Worker(engine, store, workers=workers).run(once=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": round(peak_kb / 1024, 1)}))


def run_one(work: Path, op: str, size: int, workers: int) -> dict[str, object]:
    """One job of ``op`` over ``size`` objects; the measured numbers."""
    engine = Engine(work / "state")
    request = JobRequest(
        operation=Operation.model_validate(OPERATIONS[op]),
        manifest=Manifest.model_validate({"generate": {"bucket": "logs"}}),
        report=Report(bucket="reports", prefix=f"bench-{op}"),
        priority=10,
        confirmation_required=False,
        description=f"bench {op} {size}",
        client_request_token=f"bench-{op}-{size}-{time.time_ns()}",
    )
    started = time.perf_counter()
    job_id = engine.create_job(request)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(work), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    job = engine.describe_job(job_id)
    engine.close()
    assert job.status.value == "Complete", job
    assert job.progress.succeeded == size, job.progress
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    active = job.progress.elapsed_seconds
    return {
        "op": op,
        "objects": size,
        "tasks_per_s_active": round(size / active) if active else None,
        "active_s": round(active, 2),
        "wall_s": round(wall, 2),
        "peak_rss_mb": peak,
    }


def machine() -> str:
    """A line that says what machine ran the benchmark."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def append_results(text: str) -> None:
    """Append a section (with its table) to bench/RESULTS.md."""
    with (REPO / "bench" / "RESULTS.md").open("a", encoding="utf-8") as results:
        results.write("\n" + text)


def record(results: list[dict[str, object]], workers: int) -> None:
    """Append a results table to bench/RESULTS.md."""
    lines = [
        "",
        f"## engine.py — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Machine: {machine()}. Dir store on local disk, `workers: {workers}`, one slot, "
        "objects of 100 bytes, generated manifest.",
        "",
        "| operation | objects | tasks/s (Active) | Active s | wall s | worker peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['op']} | {r['objects']:,} | {r['tasks_per_s_active']:,} | {r['active_s']} "
            f"| {r['wall_s']} | {r['peak_rss_mb']} |"
        )
    with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--ops", nargs="+", default=["tag", "copy"], choices=sorted(OPERATIONS))
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path("/tmp/batchctl-bench"))
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers)
        return
    results = []
    for size in args.sizes:
        work = args.work / f"n{size}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        made = make_objects(work / "objects", size)
        print(f"{size:,} objects written in {made:.1f} s", flush=True)
        for op in args.ops:
            result = run_one(work, op, size, args.workers)
            print(json.dumps(result), flush=True)
            results.append(result)
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_record:
        record(results, args.workers)


if __name__ == "__main__":
    main()
