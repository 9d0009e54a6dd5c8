"""Running the tasks of one Active job on ``workers`` threads.

Threads claim chunks of pending tasks under a lock (a cursor over the task
sequence), run them, commit the store's writes for the chunk, and only then
record the results. So a result is recorded only for work that is durable, a
recorded task is never handed out again, and a task in flight when the process
dies is simply still pending on restart (it may run twice; it is recorded and
reported once). ``stop()`` makes threads finish the task at hand and leave the
rest of their chunk pending: pausing and cancelling take effect within one task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from runner.engine.operations import TaskFunction, task_function
from runner.engine.service import Engine, JobRow
from runner.engine.tasks import TaskResult
from runner.jobs.errors import JobServiceError
from runner.stores.base import ATTRIBUTE_OPERATIONS, ObjectStore

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 1024
FLUSH_SECONDS = 0.25


class JobRunner:
    """The threads working on one job until it runs out of tasks or is stopped."""

    def __init__(
        self,
        engine: Engine,
        store: ObjectStore,
        job: JobRow,
        *,
        workers: int,
        workdir: Path | None = None,
        chunk: int = DEFAULT_CHUNK,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.job = job
        self.task: TaskFunction = task_function(store, job.request.operation, workdir=workdir)
        # Slow tasks (a command per object) get small chunks, so that little work is
        # pending in a thread's hands when the job pauses or the process dies; copies
        # (a file or a request each) middling ones, so that threads share the last of
        # the job evenly; attribute writes large ones: each chunk is two commits.
        operation = job.request.operation
        size = 16 if operation.invoke is not None else 64 if operation.copy_ is not None else chunk
        self.chunk = max(1, min(chunk, size))
        self._cursor = 0
        self._claim_lock = threading.Lock()
        self._stop = threading.Event()
        self._exhausted = False
        self._on_progress = on_progress
        self.error: BaseException | None = None
        # Attribute writes let the store look up the chunk's versions at once (session).
        self._read_ahead = job.request.operation.choice in ATTRIBUTE_OPERATIONS
        if self._read_ahead and store.attribute_threads:
            workers = min(workers, store.attribute_threads)
        self._threads = [
            threading.Thread(target=self._run, name=f"job-{job.id[:8]}-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        self._live = len(self._threads)
        self._live_lock = threading.Lock()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish the tasks at hand and stop claiming more."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """Whether every thread is done with the job (it may still be returning)."""
        return self._live == 0

    @property
    def exhausted(self) -> bool:
        """Whether every task was claimed (the job is done once the threads exit)."""
        return self._exhausted

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads to exit."""
        for thread in self._threads:
            thread.join(timeout)

    def _claim(self) -> list[tuple[int, str, str, str | None]]:
        with self._claim_lock:
            if self._exhausted or self._stop.is_set():
                return []
            rows = self.engine.tasks.pending(self.job.pk, self._cursor, self.chunk)
            if not rows:
                self._exhausted = True
                return []
            self._cursor = rows[-1][0]
            return rows

    def _latest_of(self, rows: list[tuple[int, str, str, str | None]]) -> list[tuple[str, str]]:
        """The objects whose latest version the store may look up at once (session)."""
        if not self._read_ahead:
            return []
        return [(bucket, _key(key)) for _, bucket, key, version in rows if version is None]

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._live_lock:
                self._live -= 1
            # The worker waits for this (else it looks again only after its poll interval,
            # a quarter of a second of an idle Active job).
            if self._on_progress is not None:
                self._on_progress()

    def _loop(self) -> None:
        task, stopped, record = self.task, self._stop.is_set, self.engine.tasks.record
        try:
            while not stopped():
                rows = self._claim()
                if not rows:
                    return
                index = 0
                while index < len(rows) and not stopped():
                    results: list[TaskResult] = []
                    started = time.monotonic()
                    with self.store.session(self._latest_of(rows[index:])):
                        while index < len(rows) and not stopped():
                            seq, bucket, key, version = rows[index]
                            index += 1
                            outcome = task(bucket, _key(key), version)
                            results.append(TaskResult(seq, *outcome))
                            # Slow tasks: record what is done now and then, so progress
                            # shows and a crash loses little.
                            if time.monotonic() - started > FLUSH_SECONDS:
                                break
                    if not record(self.job.pk, self.job.id, results):
                        self._stop.set()
                    if self._on_progress is not None:
                        self._on_progress()
        except JobServiceError as exc:
            # The database stayed busy: leave the chunk pending for the next runner.
            log.warning("job %s: %s; its tasks will be retried", self.job.id, exc)
            self.error = exc
            self._stop.set()
        except BaseException as exc:
            log.exception("job %s: worker thread failed", self.job.id)
            self.error = exc
            self._stop.set()


def _key(manifest_key: str) -> str:
    """A task's key as the store knows it (manifests URL-encode keys)."""
    return unquote(manifest_key) if "%" in manifest_key else manifest_key
