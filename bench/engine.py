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
import sqlite3
import subprocess
import sys
import tempfile
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


def bare_copy(root: Path, count: int) -> float:
    """The contender of a dir-store copy: one thread reading each object and writing it
    to a new file (``mkstemp`` + write + ``os.replace``), as little as a copy can be.
    Returns copies per second."""
    target = root / "bare-copy"
    tmp = target / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    sources = sorted((root / "logs").rglob("*.log"))[:count]
    made: set[Path] = set()
    started = time.perf_counter()
    for source in sources:
        data = source.read_bytes()
        folder = target / source.parent.name
        if folder not in made:
            folder.mkdir(exist_ok=True)
            made.add(folder)
        fd, name = tempfile.mkstemp(dir=tmp)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(name, folder / source.name)
    rate = len(sources) / (time.perf_counter() - started)
    shutil.rmtree(target)
    return rate


def bare_tag(work: Path, count: int) -> float:
    """The contender of a dir-store tag: one thread doing, per object, an SQLite upsert of
    its tags and an update of its task row, committed every 256 objects (a chunk).
    Returns tasks per second."""
    path = work / "bare-tag.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE objects (bucket TEXT, key TEXT, version_id TEXT, tags TEXT, "
        "PRIMARY KEY (bucket, key, version_id)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE tasks (job INTEGER, seq INTEGER, status INTEGER, "
        "PRIMARY KEY (job, seq)) WITHOUT ROWID"
    )
    conn.executemany("INSERT INTO tasks VALUES (1, ?, NULL)", [(i,) for i in range(count)])
    tags = json.dumps({"class": "archive", "bench": "yes"})
    started = time.perf_counter()
    for first in range(0, count, 256):
        conn.execute("BEGIN")
        for i in range(first, min(count, first + 256)):
            conn.execute(
                "INSERT INTO objects VALUES ('logs', ?, 'null', ?) ON CONFLICT "
                "(bucket, key, version_id) DO UPDATE SET tags = excluded.tags",
                (f"d{i // 1000:05d}/o{i:08d}.log", tags),
            )
            conn.execute("UPDATE tasks SET status=1 WHERE job=1 AND seq=?", (i,))
        conn.execute("COMMIT")
    rate = count / (time.perf_counter() - started)
    conn.close()
    path.unlink()
    return rate


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
        "objects of 100 bytes, generated manifest. Bare loops (the contenders, same run, one "
        "thread): copy = read + mkstemp + write + os.replace; tag = an SQLite upsert of the "
        "tags and a task-row update, committed every 256.",
        "",
        "| operation | objects | tasks/s (Active) | Active s | wall s | worker peak RSS MB "
        "| bare loop/s | engine/bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['op']} | {r['objects']:,} | {r['tasks_per_s_active']:,} | {r['active_s']} "
            f"| {r['wall_s']} | {r['peak_rss_mb']} | {r['bare_per_s']:,} | {r['ratio']} |"
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
            # The contender first, each after the disk has written back what came before.
            os.sync()
            bare = bare_copy(work / "objects", size) if op == "copy" else bare_tag(work, size)
            os.sync()
            result = run_one(work, op, size, args.workers)
            result["bare_per_s"] = round(bare)
            result["ratio"] = round(result["tasks_per_s_active"] / bare, 2)  # type: ignore[operator]
            print(json.dumps(result), flush=True)
            results.append(result)
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_record:
        record(results, args.workers)


if __name__ == "__main__":
    main()
