"""The local backend: the embedded engine of a ``local`` target.

State (``engine.db``, the worker lock) lives in the target's ``stateDir`` and
objects in its store, both relative to the project folder (the folder that
holds ``jobs.d``). The job calls go straight to the engine. Jobs move only while a
worker runs: ``running()`` runs one in a thread for a block (the reconciler, ``engine
serve``), ``run_engine()`` in the foreground (``engine run``); both hold the worker
lock, so one folder never has two workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from runner.engine.batches import check_executor
from runner.engine.lock import worker_lock, worker_running
from runner.engine.service import Clock, Engine
from runner.engine.worker import Notify, Worker
from runner.jobs.models import JobDetail, JobPage, JobRequest
from runner.jobs.status import JobStatus
from runner.spec.models import CsvManifest, LocalTarget
from runner.stores import open_store
from runner.stores.base import ObjectStore, StoreError
from runner.support.filelock import FileLock, Holder, LockHeld

MANIFEST_BUCKET = "batchctl-manifests"


class LocalBackend:
    """JobService over the embedded engine."""

    def __init__(
        self,
        target: LocalTarget,
        project_root: Path,
        *,
        clock: Clock = time.time,
        read_only: bool = False,
    ) -> None:
        self.target = target
        self.project_root = project_root
        state = Path(target.state_dir)
        self.state_dir = state if state.is_absolute() else project_root / state
        self.engine = Engine(self.state_dir, clock=clock, read_only=read_only)
        self._store: ObjectStore | None = None

    @property
    def store(self) -> ObjectStore:
        """The target's object store (opened on first use)."""
        if self._store is None:
            self._store = open_store(
                self.target.store, self.project_root, workers=self.target.workers
            )
        return self._store

    def job_events(self, job_id: str) -> list[tuple[datetime, str | None, str, str | None]]:
        """Every status change of a job: (time, old, new, reason), oldest first."""
        return self.engine.events(job_id)

    def create_job(self, request: JobRequest) -> str:
        """Create a job."""
        return self.engine.create_job(request)

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """One page of jobs."""
        return self.engine.list_jobs(
            statuses=statuses,
            next_token=next_token,
            max_results=max_results,
            description=description,
            job_id=job_id,
        )

    def describe_job(self, job_id: str) -> JobDetail:
        """One job in full."""
        return self.engine.describe_job(job_id)

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """Change a job's priority."""
        return self.engine.update_job_priority(job_id, priority)

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """Confirm or cancel a job."""
        return self.engine.update_job_status(job_id, requested, reason)

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Put a repository manifest in the store's ``batchctl-manifests`` bucket, by content."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{name}/{digest}.csv"
        self.store.create_bucket(MANIFEST_BUCKET)
        try:
            info = self.store.head(MANIFEST_BUCKET, key)
        except StoreError:
            self.store.put(MANIFEST_BUCKET, key, data, content_type="text/csv")
            info = self.store.head(MANIFEST_BUCKET, key)
        return CsvManifest(bucket=MANIFEST_BUCKET, key=key, etag=info.etag)

    def report_store(self) -> ObjectStore:
        """The target's store: the engine writes reports there."""
        return self.store

    def written_report(self, job_id: str) -> tuple[str, str] | None:
        """(bucket, manifest.json key) of the job's completion report, once written."""
        written = self.engine.report_location(job_id)
        return (written["bucket"], written["key"]) if written else None

    def top_error(self, job_id: str) -> tuple[str, int] | None:
        """The commonest error of the job's failed tasks (the engine keeps every task)."""
        return self.engine.tasks.top_error(job_id)

    def worker_lock(self) -> FileLock:
        """The lock a worker of this state folder must hold."""
        return worker_lock(self.state_dir)

    def worker_running(self) -> bool:
        """Whether a worker (``engine run`` or a reconcile) serves this state folder now."""
        return worker_running(self.state_dir)

    @contextlib.contextmanager
    def running(self, *, notify: Notify | None = None) -> Iterator[Holder | None]:
        """Run this target's worker in a thread for the block; running tasks finish first.

        Yields None when the worker runs here, or who holds the worker lock (another
        ``engine run``, ``engine serve`` or reconcile serves this folder: nothing to start).
        """
        lock = self.worker_lock()
        try:
            lock.acquire()
        except LockHeld as exc:
            yield exc.holder or Holder(0, "?", "?")
            return
        stop = threading.Event()
        try:
            worker = self.worker(notify=notify)
        except BaseException:
            lock.release()
            raise
        thread = threading.Thread(
            target=worker.run,
            kwargs={"stop": stop},
            name=f"engine-{self.state_dir.name}",
            daemon=True,
        )
        thread.start()
        try:
            yield None
        finally:
            stop.set()
            thread.join()
            lock.release()

    def run_engine(
        self,
        *,
        once: bool = False,
        stop: threading.Event | None = None,
        notify: Notify | None = None,
    ) -> None:
        """Run the worker in this thread until ``stop`` (or, ``once``, until nothing can run).

        Raises LockHeld when another worker serves this folder.
        """
        with self.worker_lock():
            self.worker(notify=notify).run(once=once, stop=stop)

    def worker(self, *, notify: Notify | None = None) -> Worker:
        """A worker for this target (the caller must hold ``worker_lock()``).

        Raises JobServiceError when the target's executor cannot run here (Dask missing):
        said before any job starts, not left Active with nothing running it.
        """
        check_executor(self.target.executor)
        return Worker(
            self.engine,
            self.store,
            slots=self.target.slots,
            workers=self.target.workers,
            workdir=self.project_root,
            notify=notify,
            executor=self.target.executor,
            # What a process or a Dask worker opens the store from: no secret in it.
            store_description={
                "store": self.target.model_dump(mode="json", by_alias=True)["store"],
                "root": str(self.project_root.resolve()),
            },
        )

    def close(self) -> None:
        """Close the engine and the store."""
        self.engine.close()
        if self._store is not None:
            self._store.close()
