"""Tasks in batches on processes and on a Dask LocalCluster (loopback only).

The engine coordinates; batches run elsewhere and come back as per-task results that
are recorded exactly once. Faults: a batch that fails is sent again (bounded), a worker
killed mid-batch has its batch run elsewhere, a scheduler that goes away pauses the job
with the reason until it is back.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner.engine.batches import Batch, BatchRunner, Outcome, run_batch
from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.status import JobStatus
from runner.spec.models import Executor
from runner.stores.dirstore import DirStore
from tests.engine.conftest import history, put_objects, request, until

# Dask's scheduler serves /metrics over HTTP on its host (loopback here) at 8787 and warns
# when a second cluster finds the port taken; its closing leaves sockets to the collector.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

S = JobStatus
GEN = {"generate": {"bucket": "logs"}}
TAG = {"tag": {"tags": {"done": "yes"}}}
REPORT = {"bucket": "reports", "prefix": "r", "scope": "all"}


def _slow(seconds: float) -> dict[str, Any]:
    return {"invoke": {"command": [sys.executable, "-c", f"import time; time.sleep({seconds})"]}}


def _description(root: Path) -> dict[str, Any]:
    return {"store": f"dir://{root / 'objects'}", "root": str(root)}


def _wait(check: Callable[[], bool], timeout: float = 120.0) -> None:
    until(check, None, timeout)


def _exactly_once(engine: Engine, job_id: str, store: DirStore, total: int) -> None:
    """Every task recorded once, and the report lists each object once."""
    job = engine.describe_job(job_id)
    assert job.progress.succeeded + job.progress.failed == total
    rows = []
    for info in store.list("reports", "r/"):
        if info.key.endswith(".csv") and "/results/" in info.key:
            with store.open("reports", info.key) as stream:
                rows += [line for line in stream.read().decode().splitlines() if line]
    keys = [line.split(",")[1] for line in rows]
    assert len(keys) == total
    assert len(set(keys)) == total


class _Running:
    """A worker on its own thread, stopped (and its pool closed) at the end."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = threading.Event()
        self.thread = threading.Thread(target=worker.run, kwargs={"stop": self.stop}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture
def running() -> Iterator[Callable[[Worker], _Running]]:
    started: list[_Running] = []

    def start(worker: Worker) -> _Running:
        started.append(_Running(worker))
        return started[-1]

    yield start
    for item in started:
        item.close()


# -- the coordinator, with a pool of threads standing in --------------------------------


class _FlakyPool:
    """Runs batches on threads; the first batch fails once after doing its work (a worker
    lost after the writes, before the answer), so it is run twice."""

    name = "a flaky pool"

    def __init__(self) -> None:
        self.threads = ThreadPoolExecutor(2)
        self.sent = 0
        self.failed_once = False

    def submit(self, batch: Batch) -> Future[list[Outcome]]:
        self.sent += 1

        def run() -> list[Outcome]:
            outcomes = run_batch(batch)
            if not self.failed_once:
                self.failed_once = True
                raise RuntimeError("the worker died before answering")
            return outcomes

        return self.threads.submit(run)

    def healthy(self) -> bool:
        return True

    def capacity(self) -> int:
        return 2

    def lost(self, exc: BaseException) -> bool:
        return False

    def close(self) -> None:
        self.threads.shutdown()


def test_a_batch_run_twice_is_recorded_once(
    tmp_path: Path, engine: Engine, store: DirStore
) -> None:
    put_objects(store, 50)
    job_id = engine.create_job(request(TAG, GEN, report=REPORT))
    worker = Worker(engine, store)
    _wait(lambda: worker.tick() or engine.describe_job(job_id).status is S.ACTIVE, 10)
    worker.shutdown()  # no thread runner: the batch runner below takes the job
    job = next(j for j in engine.jobs_in([S.ACTIVE]) if j.id == job_id)
    pool = _FlakyPool()
    runner = BatchRunner(engine, job, pool, _description(tmp_path), batch=7, in_flight=3, retries=2)
    _wait(lambda: runner.finished, 30)
    assert runner.error is None
    assert pool.sent == 50 // 7 + 1 + 1  # one batch sent again
    progress = engine.describe_job(job_id).progress
    assert (progress.succeeded, progress.failed) == (50, 0)
    pool.close()


def test_a_batch_that_keeps_failing_fails_its_tasks_with_the_reason(
    tmp_path: Path, engine: Engine, store: DirStore
) -> None:
    put_objects(store, 5)
    job_id = engine.create_job(request(TAG, GEN))
    worker = Worker(engine, store)
    _wait(lambda: worker.tick() or engine.describe_job(job_id).status is S.ACTIVE, 10)
    worker.shutdown()
    job = next(j for j in engine.jobs_in([S.ACTIVE]) if j.id == job_id)

    class Poisoned(_FlakyPool):
        def submit(self, batch: Batch) -> Future[list[Outcome]]:
            self.sent += 1
            return self.threads.submit(lambda: (_ for _ in ()).throw(MemoryError("too big")))

    pool = Poisoned()
    runner = BatchRunner(engine, job, pool, _description(tmp_path), batch=5, in_flight=1, retries=2)
    _wait(lambda: runner.finished, 30)
    assert pool.sent == 3  # the first try and two retries, then no more
    detail = engine.describe_job(job_id)
    assert detail.progress.failed == 5
    pool.close()


# -- processes ---------------------------------------------------------------------------


def test_a_job_on_a_process_pool(
    tmp_path: Path, engine: Engine, store: DirStore, running: Callable[[Worker], _Running]
) -> None:
    put_objects(store, 1200)
    executor = Executor.model_validate({"processes": {"count": 2, "batch": 100}})
    worker = Worker(engine, store, executor=executor, store_description=_description(tmp_path))
    running(worker)
    job_id = engine.create_job(request(TAG, GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE)
    _exactly_once(engine, job_id, store, 1200)
    assert store.get_tags("logs", "data/000777.txt") == {"done": "yes"}


# -- Dask --------------------------------------------------------------------------------

distributed = pytest.importorskip("distributed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cluster(port: int = 0) -> Any:
    """Two worker processes on loopback; no dashboard (it would listen on a public port)."""
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        scheduler_port=port,
        dashboard_address=None,
        silence_logs=40,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    found = _cluster()
    # Nothing a test starts listens or reaches beyond loopback.
    assert found.scheduler_address.startswith("tcp://127.0.0.1:")
    assert found.scheduler.http_server.address == "127.0.0.1"
    assert all(w.startswith("tcp://127.0.0.1:") for w in found.scheduler_info["workers"])
    yield found
    found.close()


def _dask(cluster: Any, batch: int = 50) -> Executor:
    return Executor.model_validate(
        {"dask": {"scheduler": cluster.scheduler_address, "batch": batch, "retries": 3}}
    )


def test_a_tag_job_on_dask(
    tmp_path: Path,
    engine: Engine,
    store: DirStore,
    cluster: Any,
    running: Callable[[Worker], _Running],
) -> None:
    put_objects(store, 5000)
    worker = Worker(
        engine, store, executor=_dask(cluster, 500), store_description=_description(tmp_path)
    )
    running(worker)
    job_id = engine.create_job(request(TAG, GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE)
    _exactly_once(engine, job_id, store, 5000)
    assert store.get_tags("logs", "data/004999.txt") == {"done": "yes"}


def _kill_a_worker(cluster: Any) -> None:
    nanny = next(iter(cluster.workers.values()))
    os.kill(nanny.process.process.pid, signal.SIGKILL)


def _killed_mid_job(
    tmp_path: Path, engine: Engine, store: DirStore, cluster: Any, running: Any
) -> None:
    put_objects(store, 240)
    worker = Worker(
        engine, store, executor=_dask(cluster, 10), store_description=_description(tmp_path)
    )
    runner = running(worker)
    job_id = engine.create_job(request(_slow(0.01), GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).progress.succeeded >= 20)
    _kill_a_worker(cluster)
    _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE, 180)
    _exactly_once(engine, job_id, store, 240)
    runner.close()


def test_a_worker_killed_mid_job(
    tmp_path: Path, engine: Engine, store: DirStore, cluster: Any, running: Any
) -> None:
    _killed_mid_job(tmp_path, engine, store, cluster, running)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(10))
def test_a_worker_killed_mid_job_ten_rounds(
    round_: int, tmp_path: Path, engine: Engine, store: DirStore, running: Any
) -> None:
    del round_
    fresh = _cluster()  # a cluster per round: each starts with both workers
    try:
        _killed_mid_job(tmp_path, engine, store, fresh, running)
    finally:
        fresh.close()


def test_pre_emption_while_batches_are_out(
    tmp_path: Path, engine: Engine, store: DirStore, cluster: Any, running: Any
) -> None:
    put_objects(store, 200)
    worker = Worker(
        engine, store, executor=_dask(cluster, 10), store_description=_description(tmp_path)
    )
    running(worker)
    low = engine.create_job(request(_slow(0.01), GEN, priority=1, report=REPORT))
    _wait(lambda: engine.describe_job(low).progress.succeeded >= 20)
    high = engine.create_job(request(TAG, GEN, priority=9))
    _wait(lambda: engine.describe_job(high).status is S.COMPLETE)
    _wait(lambda: engine.describe_job(low).status is S.COMPLETE, 180)
    assert "Paused" in history(engine, low)
    assert engine.describe_job(high).terminated_at < engine.describe_job(low).terminated_at  # type: ignore[operator]
    _exactly_once(engine, low, store, 200)


def test_cancel_while_batches_are_out(
    tmp_path: Path, engine: Engine, store: DirStore, cluster: Any, running: Any
) -> None:
    put_objects(store, 300)
    worker = Worker(
        engine, store, executor=_dask(cluster, 10), store_description=_description(tmp_path)
    )
    running(worker)
    job_id = engine.create_job(request(_slow(0.02), GEN))
    _wait(lambda: engine.describe_job(job_id).progress.succeeded >= 10)
    engine.update_job_status(job_id, S.CANCELLED, "no longer needed")
    _wait(lambda: engine.describe_job(job_id).status is S.CANCELLED, 60)
    done = engine.describe_job(job_id).progress
    time.sleep(1)  # nothing is recorded after the cancel settled
    assert engine.describe_job(job_id).progress == done
    assert done.succeeded < 300


def test_a_scheduler_that_goes_away_pauses_the_job_until_it_is_back(
    tmp_path: Path, engine: Engine, store: DirStore, running: Any
) -> None:
    port = _free_port()
    first = _cluster(port)
    put_objects(store, 300)
    executor = Executor.model_validate(
        {"dask": {"scheduler": f"tcp://127.0.0.1:{port}", "batch": 10}}
    )
    worker = Worker(engine, store, executor=executor, store_description=_description(tmp_path))
    running(worker)
    job_id = engine.create_job(request(_slow(0.01), GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).progress.succeeded >= 20)
    first.close()
    _wait(lambda: engine.describe_job(job_id).status is S.PAUSED, 60)
    reason = engine.describe_job(job_id).status_update_reason
    assert f"the Dask scheduler tcp://127.0.0.1:{port} is unavailable" in reason
    second = None
    deadline = time.monotonic() + 60
    while second is None:  # the port may linger a moment after the first closed
        try:
            second = _cluster(port)
        except RuntimeError:
            assert time.monotonic() < deadline
            time.sleep(1)
    try:
        _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE, 180)
    finally:
        second.close()
    _exactly_once(engine, job_id, store, 300)


def test_the_dask_executor_without_dask_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from runner.engine.batches import DASK_MISSING, check_executor
    from runner.jobs.errors import JobServiceError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real(name, *a),
    )
    executor = Executor.model_validate({"dask": {"scheduler": "tcp://127.0.0.1:1"}})
    with pytest.raises(JobServiceError, match=r"pip install 'batchctl\[dask\]'"):
        check_executor(executor)
    assert "pip install 'batchctl[dask]'" in DASK_MISSING


# -- through batchctl reconcile ----------------------------------------------------------


def _status_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    import json

    from runner.cli import main

    capsys.readouterr()
    main(["status", "-o", "json"])
    loaded: dict[str, Any] = json.loads(capsys.readouterr().out)
    return loaded


def test_the_example_campaign_on_dask(
    tmp_path: Path,
    cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """jobs.d with its local target on the cluster: the same `batchctl reconcile`."""
    import shutil

    from runner.cli import main

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "jobs.d", tmp_path / "jobs.d")
    targets = tmp_path / "jobs.d" / "targets.yaml"
    targets.write_text(
        targets.read_text().replace(
            "    workers: 16 ",
            f"    executor: {{dask: {{scheduler: '{cluster.scheduler_address}', batch: 500}}}}\n"
            "    workers: 16 ",
        )
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert main(["demo", "init"]) == 0
    until_done = ["reconcile", "--until-done", "--interval", "0.3", "--timeout", "300"]
    assert main(until_done) == 0
    assert "done: 4 final, 0 need attention, 1 awaiting a person" in capsys.readouterr().out
    assert main(["jobs", "confirm", "delete-2024-originals"]) == 0
    assert main(until_done) == 0
    assert "done: 5 final, 0 need attention, 0 awaiting a person" in capsys.readouterr().out
    for action in _status_json(capsys)["actions"]:
        progress = action["progress"]
        assert action["status"] == "Complete", action
        assert progress["succeeded"] == progress["total"] > 0, action
    assert main(["report", "tag-2024-logs", "-o", "json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["tasks"] == report["totals"]["succeeded"] == 10_080


def test_a_copy_job_on_seaweedfs_with_dask(
    tmp_path: Path,
    engine: Engine,
    seaweedfs_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    running: Any,
) -> None:
    """Workers open the store from its description and their own environment's keys."""
    import uuid

    from runner.stores.s3 import S3ObjectStore
    from tests.servers import CREDENTIALS

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    suffix = uuid.uuid4().hex[:8]
    src, dst = f"src-{suffix}", f"dst-{suffix}"
    s3 = S3ObjectStore(seaweedfs_endpoint, "us-east-1", credentials=CREDENTIALS)
    for bucket in (src, dst):
        s3.create_bucket(bucket)
    for index in range(300):
        s3.put(src, f"photos/{index:04d}.jpg", f"photo {index}".encode())
    own = _cluster()  # spawned now: its workers have the keys in their environment
    try:
        description = {
            "store": {"s3": {"endpointUrl": seaweedfs_endpoint}},
            "root": str(tmp_path),
        }
        assert "secret" not in str(description).lower()
        executor = Executor.model_validate(
            {"dask": {"scheduler": own.scheduler_address, "batch": 50}}
        )
        worker = Worker(engine, s3, executor=executor, store_description=description)
        running(worker)
        job_id = engine.create_job(
            request({"copy": {"bucket": dst}}, {"generate": {"bucket": src, "prefix": "photos/"}})
        )
        _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE, 180)
        progress = engine.describe_job(job_id).progress
        assert (progress.succeeded, progress.failed) == (300, 0)
        with s3.open(dst, "photos/0123.jpg") as copied:
            assert copied.read() == b"photo 123"
    finally:
        own.close()
        s3.close()


def test_a_100000_task_tag_job_on_dask(
    tmp_path: Path, engine: Engine, cluster: Any, running: Any
) -> None:
    store = DirStore(tmp_path / "objects")
    store.create_bucket("logs")
    store.create_bucket("reports")
    with store.session():
        for index in range(100_000):
            store.put("logs", f"data/{index:06d}.txt", b"x")
    worker = Worker(
        engine, store, executor=_dask(cluster, 2000), store_description=_description(tmp_path)
    )
    running(worker)
    job_id = engine.create_job(request(TAG, GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE, 1200)
    _exactly_once(engine, job_id, store, 100_000)
    store.close()


def test_a_process_killed_pauses_the_job_and_a_new_pool_finishes_it(
    tmp_path: Path, engine: Engine, store: DirStore, running: Callable[[Worker], _Running]
) -> None:
    """A killed process breaks the whole pool: the job pauses with the reason, the pool is
    replaced, and the job resumes and ends with every task recorded once."""
    put_objects(store, 60)
    executor = Executor.model_validate({"processes": {"count": 2, "batch": 5}})
    worker = Worker(engine, store, executor=executor, store_description=_description(tmp_path))
    running(worker)
    job_id = engine.create_job(request(_slow(0.01), GEN, report=REPORT))
    _wait(lambda: engine.describe_job(job_id).progress.succeeded >= 5)
    pool = worker._pool
    assert pool is not None
    victim = next(iter(pool._pool._processes))  # type: ignore[attr-defined]
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: engine.describe_job(job_id).status is S.COMPLETE, 180)
    assert "Paused" in history(engine, job_id)
    reasons = [why for _, _, new, why in engine.events(job_id) if new == "Paused"]
    assert any("the process pool (2) is unavailable" in (why or "") for why in reasons)
    _exactly_once(engine, job_id, store, 60)
