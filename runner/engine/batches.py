"""An Active job's tasks in batches, on a process pool or a Dask cluster.

The engine stays the coordinator: it claims a batch of pending tasks, sends it out,
and records what comes back — by task sequence, so a batch run twice (its worker died
and the scheduler ran it again elsewhere) changes nothing already recorded. At most
``in_flight`` batches are out at once. ``stop()`` (pause, pre-emption, cancel) stops
sending; the batches out finish and are recorded, as the seed's Pausing and Cancelling
describe.

Credentials never travel: a batch carries the store's *description* (a folder path, or
an S3 endpoint, region and profile name), and each worker builds its own client from
its own environment (boto3's chain). Operations are idempotent per task; ``invoke`` is
at-least-once under a batch run again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from runner.engine.service import Engine, JobRow
from runner.engine.tasks import TaskResult
from runner.jobs.errors import JobServiceError

log = logging.getLogger(__name__)

Row = tuple[int, str, str, str | None]  # (seq, bucket, key, version)
Outcome = tuple[int, bool, int, str, str]  # (seq, succeeded, http, code, message)


class PoolLost(Exception):
    """The pool (a Dask scheduler) is gone: the job pauses until it is back."""


class Pool(Protocol):
    """Where batches run: a process pool, a Dask client."""

    name: str

    def submit(self, batch: Batch) -> Future[list[Outcome]]:
        """Send one batch; its future gives the outcomes (or raises)."""
        ...

    def healthy(self) -> bool:
        """Whether batches can be sent now (reconnecting if it can)."""
        ...

    def capacity(self) -> int:
        """Batches it runs at once (processes, or the cluster's worker threads)."""
        ...

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` from a batch means the pool is gone, not that the batch failed."""
        ...

    def close(self) -> None:
        """Release the pool."""
        ...


@dataclass(frozen=True)
class Batch:
    """What a worker needs to run some tasks, and no secret."""

    store: dict[str, Any]  # {"store": <the target's store spec>, "root": project folder}
    operation: dict[str, Any]  # the job's operation, as JSON
    workdir: str | None
    rows: list[Row]


# -- the worker side (runs in the pool's processes) ------------------------------------

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


def run_batch(batch: Batch) -> list[Outcome]:
    """Run a batch's tasks with a store client built here; one outcome per task."""
    import json

    from runner.engine.operations import task_function
    from runner.spec.models import LocalTarget, Operation
    from runner.stores import open_store

    store_key = json.dumps(batch.store, sort_keys=True)
    op_key = store_key + json.dumps(batch.operation, sort_keys=True) + str(batch.workdir)
    with _CACHE_LOCK:
        store = _CACHE.get(store_key)
        if store is None:
            spec = LocalTarget.model_validate({"store": batch.store["store"]})
            store = open_store(spec.store, Path(batch.store["root"]), workers=4)
            _CACHE[store_key] = store
        task = _CACHE.get(op_key)
        if task is None:
            operation = Operation.model_validate(batch.operation)
            workdir = Path(batch.workdir) if batch.workdir else None
            task = task_function(store, operation, workdir=workdir)
            _CACHE[op_key] = task
    outcomes: list[Outcome] = []
    for seq, bucket, key, version in batch.rows:
        result = task(bucket, unquote(key) if "%" in key else key, version)
        outcomes.append((seq, *result))
    return outcomes


# -- the coordinator side -----------------------------------------------------------------


class BatchRunner:
    """Sends one job's tasks out in batches and records what comes back.

    The same face as ``executor.JobRunner``: stop, stopped, finished, exhausted, join,
    error; ``lost`` says why when the pool went away (the job pauses).
    """

    def __init__(
        self,
        engine: Engine,
        job: JobRow,
        pool: Pool,
        store: dict[str, Any],
        *,
        batch: int,
        in_flight: int,
        retries: int = 3,
        workdir: Path | None = None,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.job = job
        self.pool = pool
        self.size = max(1, batch)
        self.in_flight = max(1, in_flight)
        self.retries = retries
        self.on_progress = on_progress
        self.error: BaseException | None = None
        self.lost: str | None = None
        self._store = store
        self._operation = job.request.operation.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        self._workdir = str(workdir) if workdir else None
        self._stop = threading.Event()
        self._exhausted = False
        self._done = threading.Event()
        self._cursor = 0
        self._out: dict[Future[list[Outcome]], tuple[list[Row], int]] = {}
        self._finished: list[Future[list[Outcome]]] = []
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"batches-{job.id[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Send no more batches; those out finish and are recorded."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    @property
    def stopped(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """Whether no batch is out and nothing more will be sent."""
        return self._done.is_set()

    @property
    def exhausted(self) -> bool:
        """Whether every task was sent (the job is done once the batches are back)."""
        return self._exhausted

    def join(self, timeout: float | None = None) -> None:
        """Wait for the batches out to come back."""
        self._thread.join(timeout)

    # -- the loop ------------------------------------------------------------------

    def _send(self, rows: list[Row], attempt: int) -> None:
        future = self.pool.submit(Batch(self._store, self._operation, self._workdir, rows))
        with self._lock:
            self._out[future] = (rows, attempt)
        future.add_done_callback(self._back)

    def _back(self, future: Future[list[Outcome]]) -> None:
        with self._lock:
            self._finished.append(future)
            self._lock.notify_all()

    def _claim(self) -> list[Row]:
        if self._exhausted or self._stop.is_set():
            return []
        rows = self.engine.tasks.pending(self.job.pk, self._cursor, self.size)
        if not rows:
            self._exhausted = True
            return []
        self._cursor = rows[-1][0]
        return rows

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug must pause one job, not take the worker down
            log.exception("job %s: batch runner failed", self.job.id)
            self.error = exc
            self._stop.set()
            self._drain()
        finally:
            self._done.set()
            if self.on_progress is not None:
                self.on_progress()

    def _loop(self) -> None:
        while True:
            with self._lock:
                out = len(self._out)
            while out < self.in_flight and not self._stop.is_set():
                rows = self._claim()
                if not rows:
                    break
                try:
                    self._send(rows, 1)
                except Exception as exc:
                    if not self.pool.lost(exc):
                        raise
                    self._pool_lost(exc)
                    break
                out += 1
            with self._lock:
                if not self._out and (self._stop.is_set() or self._exhausted):
                    return
                while not self._finished:
                    self._lock.wait(0.5)
                finished, self._finished = self._finished, []
            for future in finished:
                self._collect(future)

    def _collect(self, future: Future[list[Outcome]]) -> None:
        with self._lock:
            rows, attempt = self._out.pop(future)
        try:
            outcomes = future.result()
        except BaseException as exc:  # a dask future cancelled raises a BaseException
            if self.pool.lost(exc):
                self._pool_lost(exc)  # its tasks stay pending: run again on resume
                return
            if attempt <= self.retries and not self._stop.is_set():
                log.warning("job %s: a batch failed (%s); sending it again", self.job.id, exc)
                self._send(rows, attempt + 1)
                return
            # Retried enough: each task fails with the reason, so the job can end and the
            # report says what happened (rather than retrying a poisoned batch forever).
            message = f"its batch failed {attempt} time(s): {type(exc).__name__}: {exc}"[:1000]
            outcomes = [(seq, False, 500, "WorkerLost", message) for seq, *_ in rows]
        results = [TaskResult(*outcome) for outcome in outcomes]
        try:
            if not self.engine.tasks.record(self.job.pk, self.job.id, results):
                self._stop.set()
        except JobServiceError as exc:  # a busy database: the tasks stay pending
            log.warning("job %s: %s; its tasks will be sent again", self.job.id, exc)
            self.error = exc
            self._stop.set()
        if self.on_progress is not None:
            self.on_progress()

    def _pool_lost(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = f"{self.pool.name} is unavailable ({type(exc).__name__}: {exc})"[:500]
            log.warning("job %s: %s; pausing it", self.job.id, self.lost)
        self._stop.set()

    def _drain(self) -> None:
        """After a failure: wait for the batches out, recording what they did."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self._lock:
                if not self._out:
                    return
                if not self._finished:
                    self._lock.wait(0.5)
                finished, self._finished = self._finished, []
            for future in finished:
                try:
                    self._collect(future)
                except Exception:
                    log.exception("job %s: a batch could not be recorded", self.job.id)


# -- pools -----------------------------------------------------------------------------

DASK_MISSING = (
    "the dask executor needs Dask distributed, which is not installed: pip install 'batchctl[dask]'"
)


def check_executor(executor: Any) -> None:
    """Refuse an executor that cannot run here, with the command that makes it run."""
    import importlib.util

    if (
        getattr(executor, "dask", None) is not None
        and importlib.util.find_spec("distributed") is None
    ):
        raise JobServiceError(DASK_MISSING)


class ProcessPool:
    """A pool of processes on this machine (spawned: the engine's threads are not forked)."""

    def __init__(self, count: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.name = f"the process pool ({count})"
        self.count = count
        self._context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(count, mp_context=self._context)

    def submit(self, batch: Batch) -> Future[list[Outcome]]:
        """Send one batch."""
        return self._pool.submit(run_batch, batch)

    def healthy(self) -> bool:
        """A broken pool (a process killed) is replaced."""
        from concurrent.futures import ProcessPoolExecutor

        if getattr(self._pool, "_broken", False):
            self._retire()
            self._pool = ProcessPoolExecutor(self.count, mp_context=self._context)
        return True

    def capacity(self) -> int:
        """One batch per process."""
        return self.count

    def lost(self, exc: BaseException) -> bool:
        """A process killed breaks the whole pool: its batches run again once replaced."""
        from concurrent.futures.process import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)

    def _retire(self) -> None:
        """End a broken pool: its surviving processes are stopped, not waited for (a
        process left running would hold the engine's exit until its batch ended)."""
        for process in list(getattr(self._pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the processes."""
        if getattr(self._pool, "_broken", False):
            self._retire()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)


class DaskPool:
    """A Dask distributed cluster, through its scheduler (an optional extra)."""

    def __init__(self, scheduler: str, *, retries: int = 3, timeout: float = 10.0) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError as exc:
            raise JobServiceError(DASK_MISSING) from exc
        self.name = f"the Dask scheduler {scheduler}"
        self.scheduler = scheduler
        self.retries = retries
        self.timeout = timeout
        self._client: Any = None

    def _connect(self) -> Any:
        from distributed import Client

        if self._client is None or self._client.status not in ("running", "connecting"):
            if self._client is not None:
                self._close_client()
            self._client = Client(  # type: ignore[no-untyped-call]
                self.scheduler, timeout=self.timeout, set_as_default=False, direct_to_workers=False
            )
        return self._client

    def submit(self, batch: Batch) -> Future[list[Outcome]]:
        """Send one batch; the scheduler runs it again elsewhere if its worker dies."""
        client = self._connect()
        future: Future[list[Outcome]] = Future()
        remote = client.submit(run_batch, batch, pure=False)

        def settle(done: Any) -> None:
            try:
                future.set_result(done.result())
            except BaseException as exc:
                future.set_exception(exc)

        remote.add_done_callback(settle)
        return future

    def healthy(self) -> bool:
        """Whether the scheduler answers (a new connection is tried when it did not)."""
        try:
            client = self._connect()
            client.scheduler_info()
        except Exception:
            self._close_client()
            return False
        return True

    def capacity(self) -> int:
        """The cluster's worker threads now (at least 1: workers may join later)."""
        try:
            threads = self._connect().nthreads()
        except Exception:  # asked again at the next job
            return 1
        return max(1, sum(int(n) for n in threads.values()))

    def lost(self, exc: BaseException) -> bool:
        """The scheduler gone (a connection closed, a timeout) — not a worker killed, after
        which the scheduler runs the batch elsewhere, and after too many deaths says
        KilledWorker (then the batch is the coordinator's to retry)."""
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            return False
        names = {cls.__name__ for cls in type(exc).__mro__}
        return bool(names & {"CommClosedError", "CancelledError", "TimeoutError", "OSError"})

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=2)
            self._client = None

    def close(self) -> None:
        """Disconnect (the cluster keeps running)."""
        self._close_client()
