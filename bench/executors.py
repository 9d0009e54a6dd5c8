"""The engine's executors against one SeaweedFS on loopback: threads, processes, Dask.

Run by hand from the repository root (``.venv/bin/pip install -e '.[test]'`` brings
Dask)::

    .venv/bin/python bench/executors.py               # 20,000 objects
    .venv/bin/python bench/executors.py --objects 5000 --no-record

Each contender tags every object of a fresh bucket in its own process (its CPU, and
that of the Dask workers it starts, is its own): ``threads`` (16), ``processes`` (2),
``dask`` with 1 and with 2 worker processes (a LocalCluster on 127.0.0.1, no
dashboard). Reported: tasks/s of the job's Active time and client CPU milliseconds per
object (the server's CPU is not counted). Then, apart:

- the scheduling cost of one batch on a warm Dask cluster (a batch of no tasks, sent
  and answered), against a batch's own cost, to size batches (issue 21: under 2%);
- the coordinator's recording rate: results per second that SQLite takes
  (``tasks.record`` in batches), the bound of one coordinator however many workers;

and from those a model of the workers needed for 1 billion objects in 24 hours.
"""

from __future__ import annotations

import argparse
import json
import resource
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

from bench.engine import append_results, machine  # noqa: E402
from tests.servers import CREDENTIALS, seaweedfs  # noqa: E402

BODY = b"x" * 1024
DAY = 86_400
BILLION = 1_000_000_000


def seed(endpoint: str, bucket: str, count: int) -> None:
    """``count`` objects of 1 KiB in a new bucket."""
    from runner.stores.s3 import S3ObjectStore

    store = S3ObjectStore(endpoint, "us-east-1", credentials=CREDENTIALS, pool=32)
    store.create_bucket(bucket)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: store.put(bucket, f"d/{i:07d}", BODY), range(count)))
    store.close()


def _cluster(workers: int) -> Any:
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=4,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )


def child(endpoint: str, bucket: str, kind: str, count: int) -> None:
    """Tag every object of ``bucket`` with one executor; print the job's Active seconds."""
    import os

    from runner.engine.service import Engine
    from runner.engine.worker import Worker
    from runner.jobs.models import JobRequest
    from runner.spec.models import Executor, Manifest, Operation
    from runner.stores.s3 import S3ObjectStore

    os.environ["AWS_ACCESS_KEY_ID"] = CREDENTIALS["aws_access_key_id"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = CREDENTIALS["aws_secret_access_key"]
    cluster = None
    if kind == "threads":
        executor = None
    elif kind == "processes":
        executor = Executor.model_validate({"processes": {"count": 2, "batch": 500}})
    else:
        cluster = _cluster(int(kind.split("-")[1]))
        executor = Executor.model_validate(
            {"dask": {"scheduler": cluster.scheduler_address, "batch": 500}}
        )
    store = S3ObjectStore(endpoint, "us-east-1", credentials=CREDENTIALS, pool=16)
    try:
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(Path(state))
            engine.create_job(
                JobRequest(
                    operation=Operation.model_validate({"tag": {"tags": {"k": kind}}}),
                    manifest=Manifest.model_validate({"generate": {"bucket": bucket}}),
                    priority=1,
                    confirmation_required=False,
                    client_request_token="bench",
                )
            )
            description = {"store": {"s3": {"endpointUrl": endpoint}}, "root": state}
            Worker(engine, store, workers=16, executor=executor, store_description=description).run(
                once=True
            )
            job = engine.list_jobs().jobs[0]
            assert job.status.value == "Complete", job
            assert job.progress.succeeded == count, job
            detail = engine.describe_job(job.job_id)
            print(json.dumps({"active": detail.progress.elapsed_seconds}))
    finally:
        store.close()
        if cluster is not None:
            cluster.close()


def run_child(endpoint: str, bucket: str, kind: str, count: int) -> dict[str, Any]:
    """The contender's rate and client CPU per object, from its own process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", endpoint, bucket, kind, str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    active = json.loads(done.stdout.strip().splitlines()[-1])["active"]
    return {
        "executor": kind,
        "objects": count,
        "active_s": round(active, 2),
        "wall_s": round(wall, 2),
        "tasks_per_s": round(count / active) if active else None,
        "cpu_ms_per_object": round(1000 * cpu / count, 3),
    }


def batch_overhead(rounds: int = 200) -> dict[str, float]:
    """Milliseconds to send a batch of no tasks to a warm Dask worker and get its answer."""
    from distributed import Client

    from runner.engine.batches import Batch, run_batch

    cluster = _cluster(1)
    try:
        with tempfile.TemporaryDirectory() as root:
            empty = Batch({"store": f"dir://{root}", "root": root}, {"untag": None}, None, [])
            with Client(cluster, set_as_default=False) as client:
                client.submit(run_batch, empty, pure=False).result()  # warm: store, imports
                started = time.perf_counter()
                for _ in range(rounds):
                    client.submit(run_batch, empty, pure=False).result()
                sequential = (time.perf_counter() - started) / rounds
                started = time.perf_counter()
                futures = [client.submit(run_batch, empty, pure=False) for _ in range(rounds)]
                client.gather(futures)
                pipelined = (time.perf_counter() - started) / rounds
    finally:
        cluster.close()
    return {
        "sequential_ms": round(1000 * sequential, 2),
        "pipelined_ms": round(1000 * pipelined, 2),
    }


def recording_rate(total: int = 1_000_000, batch: int = 1000) -> float:
    """Results per second the coordinator's SQLite records (tasks.record in batches)."""
    from runner.engine.service import Engine
    from runner.engine.tasks import TaskResult
    from runner.jobs.models import JobRequest
    from runner.spec.models import Manifest, Operation

    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Path(state))
        job_id = engine.create_job(
            JobRequest(
                operation=Operation.model_validate({"untag": None}),
                manifest=Manifest.model_validate({"generate": {"bucket": "rates"}}),
                priority=1,
                confirmation_required=False,
                client_request_token="rate",
            )
        )
        pk = next(j.pk for j in engine.jobs_in([engine.describe_job(job_id).status]))
        rows = [("rates", f"k{i:08d}", None) for i in range(total)]
        for start in range(0, total, 10_000):
            engine.tasks.add(pk, start + 1, rows[start : start + 10_000])
        started = time.perf_counter()
        for start in range(1, total + 1, batch):
            results = [
                TaskResult(seq, True, 200, "", "ok")
                for seq in range(start, min(start + batch, total + 1))
            ]
            engine.tasks.record(pk, job_id, results)
        elapsed = time.perf_counter() - started
        engine.close()
    return total / elapsed


def model(rows: list[dict[str, Any]], overhead: dict[str, float], record_rate: float) -> str:
    """Workers for 1 billion objects in 24 hours, and where one coordinator stops."""
    need = BILLION / DAY
    dask2 = next(r for r in rows if r["executor"] == "dask-2")
    dask1 = next(r for r in rows if r["executor"] == "dask-1")
    per_worker = dask1["tasks_per_s"] or 1
    lines = [
        f"- 1 billion objects in 24 h is {need:,.0f} tasks/s sustained.",
        f"- One Dask worker process (4 threads) tagged {per_worker:,} tasks/s here, two "
        f"{dask2['tasks_per_s']:,}/s — on 2 cores shared with SeaweedFS and the "
        "coordinator, so the server, not the workers, bounds these figures.",
        f"- At {per_worker:,} tasks/s a worker, {need / per_worker:,.0f} worker processes; "
        f"at the client CPU measured ({dask1['cpu_ms_per_object']} ms an object, the whole "
        f"process tree), {need * dask1['cpu_ms_per_object'] / 1000:,.0f} cores of client CPU.",
        f"- A batch costs {overhead['sequential_ms']} ms to send and answer one at a time, "
        f"{overhead['pipelined_ms']} ms pipelined; at 500 tasks of "
        f"{1000 / per_worker:.2f} ms each that is "
        f"{100 * overhead['pipelined_ms'] / (500 * 1000 / per_worker):.2f}% (target < 2%).",
        f"- The coordinator records {record_rate:,.0f} results/s into SQLite: "
        + (
            f"above the {need:,.0f}/s needed — one coordinator suffices."
            if record_rate > need
            else f"below the {need:,.0f}/s needed — one coordinator is the bound; "
            "split the campaign into jobs on several state folders."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as data, seaweedfs(Path(data)) as endpoint:
        rows = []
        for kind in ("threads", "processes", "dask-1", "dask-2"):
            bucket = f"b-{kind}"
            seed(endpoint, bucket, args.objects)
            rows.append(run_child(endpoint, bucket, kind, args.objects))
            print(rows[-1], flush=True)
    overhead = batch_overhead()
    print(overhead, flush=True)
    rate = recording_rate()
    print(f"recording: {rate:,.0f} results/s", flush=True)
    table = [
        "| executor | objects | tasks/s (Active) | Active s | wall s | client CPU ms/object |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r['executor']} | {r['objects']:,} | {r['tasks_per_s']:,} | {r['active_s']} "
            f"| {r['wall_s']} | {r['cpu_ms_per_object']} |"
            for r in rows
        ),
    ]
    text = (
        f"## executors.py — {stamp}\n\n{machine()} SeaweedFS (`weed mini`) on loopback, "
        "objects of 1 KiB, a tag job, generated manifest.\n\n"
        + "\n".join(table)
        + f"\n\nBatch cost on a warm cluster: {overhead['sequential_ms']} ms one at a time, "
        f"{overhead['pipelined_ms']} ms pipelined. Coordinator recording: "
        f"{rate:,.0f} results/s.\n\nModel:\n\n{model(rows, overhead, rate)}\n"
    )
    print(text)
    if not args.no_record:
        append_results(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
