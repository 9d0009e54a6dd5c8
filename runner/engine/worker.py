"""The engine's worker: the scheduler loop behind ``batchctl engine run``.

Every pass (``tick``) moves jobs along the seed's lifecycle:

- New → Preparing; Preparing reads the manifest into tasks (from scratch after
  a crash) → Suspended when confirmation is required, else Ready; or Failing →
  Failed when the manifest cannot be read.
- Slots: the Ready, Active and Paused jobs are ranked by priority (ties to the
  older job); the first ``slots`` of them should run. An Active job that falls
  out of that set goes Pausing → Paused; a ranked job starts (Ready or Paused →
  Active) when a slot is free. A Pausing job keeps its slot until its threads
  have stopped. So a higher-priority job preempts the lowest-priority Active job,
  and a paused job resumes by itself when the job ahead of it completes, fails
  or waits for confirmation. Priority changes count at the next pass.
- An Active job whose tasks are all recorded goes Completing → Complete;
  Cancelling → Cancelled and Failing → Failed once its threads have stopped.
  The completion report is written on the way to each final status.

Only one worker may serve a state folder at a time (``WorkerLock``), or two
processes would run the same tasks.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.engine.batches import BatchRunner, DaskPool, Pool, ProcessPool
from runner.engine.executor import JobRunner
from runner.engine.manifests import ManifestError, manifest_tasks
from runner.engine.reports import write_report
from runner.engine.service import Engine, JobRow
from runner.jobs.errors import JobServiceError
from runner.jobs.status import JobStatus
from runner.spec.models import Executor
from runner.stores.base import ObjectStore, StoreError

log = logging.getLogger(__name__)

_BATCH = 10_000
S = JobStatus
BUSY = frozenset(
    {
        S.NEW,
        S.PREPARING,
        S.READY,
        S.ACTIVE,
        S.PAUSING,
        S.PAUSED,
        S.CANCELLING,
        S.FAILING,
        S.COMPLETING,
    }
)

Notify = Callable[[str, str, JobStatus, JobStatus, str], None]


class Worker:
    """Schedules and runs the jobs of one engine."""

    def __init__(
        self,
        engine: Engine,
        store: ObjectStore,
        *,
        slots: int = 1,
        workers: int = 16,
        workdir: Path | None = None,
        poll_seconds: float = 0.25,
        notify: Notify | None = None,
        executor: Executor | None = None,
        store_description: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.slots = slots
        self.workers = workers
        self.workdir = workdir
        self.poll_seconds = poll_seconds
        self.notify = notify
        self.executor = executor if executor is not None and executor.choice != "threads" else None
        self.store_description = store_description
        self.runners: dict[str, JobRunner | BatchRunner] = {}
        self._wake = threading.Event()
        self._pool: Pool | None = None
        self._down_until: float | None = None  # the pool is gone: jobs wait until then
        self._down_for = 1.0

    # -- the loop --------------------------------------------------------------

    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> None:
        """Run passes until stopped; with ``once``, until nothing more can run."""
        try:
            while stop is None or not stop.is_set():
                try:
                    changed = self.tick()
                except JobServiceError as exc:  # a busy database: try again shortly
                    log.warning("scheduling pass skipped: %s", exc)
                    changed = False
                except Exception:
                    # A bug must not stop every job: say it, and try again next pass.
                    log.exception("scheduling pass failed")
                    changed = False
                if once and self.idle():
                    return
                self._wake.wait(0.01 if changed else self.poll_seconds)
                self._wake.clear()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop every runner, letting each thread finish and record its current task."""
        for runner in self.runners.values():
            runner.stop()
        for runner in self.runners.values():
            runner.join()
        self.runners.clear()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- the executor (processes or Dask) -------------------------------------------

    def _open_pool(self) -> Pool:
        if self._pool is None:
            assert self.executor is not None
            if self.executor.processes is not None:
                self._pool = ProcessPool(self.executor.processes.count)
            else:
                assert self.executor.dask is not None
                self._pool = DaskPool(
                    self.executor.dask.scheduler, retries=self.executor.dask.retries
                )
        return self._pool

    def _pool_ready(self) -> bool:
        """Whether jobs may start: always on threads; on a pool, unless it went away and
        has not answered since (asked again with a growing wait, up to a minute)."""
        if self.executor is None or self._down_until is None:
            return True
        if time.monotonic() < self._down_until:
            return False
        if self._open_pool().healthy():
            log.warning("%s is back: paused jobs resume", self._open_pool().name)
            self._down_until = None
            self._down_for = 1.0
            return True
        self._down_for = min(self._down_for * 2, 60.0)
        self._down_until = time.monotonic() + self._down_for
        return False

    def _runner(self, job: JobRow) -> JobRunner | BatchRunner:
        if self.executor is None:
            return JobRunner(
                self.engine,
                self.store,
                job,
                workers=self.workers,
                workdir=self.workdir,
                on_progress=self.wake,
            )
        pool = self._open_pool()
        settings = self.executor.processes or self.executor.dask
        assert settings is not None
        assert self.store_description is not None
        # Enough batches out to keep every process (or a cluster's worker threads) busy
        # while the coordinator records the ones back — and no more: a pause or a cancel
        # waits for the batches out.
        width = pool.capacity()
        return BatchRunner(
            self.engine,
            job,
            pool,
            self.store_description,
            batch=settings.batch,
            in_flight=max(2, 2 * width),
            retries=self.executor.dask.retries if self.executor.dask else 1,
            workdir=self.workdir,
            on_progress=self.wake,
        )

    def idle(self) -> bool:
        """Nothing can move without a person: no job is on its way anywhere."""
        return not self.runners and not self.engine.jobs_in(BUSY)

    def wake(self) -> None:
        """Run the next pass now (a runner made progress)."""
        self._wake.set()

    # -- one pass --------------------------------------------------------------

    def tick(self) -> bool:
        """One scheduling pass; True when anything changed."""
        changed = False
        for job in self.engine.jobs_in([S.NEW]):
            changed |= self._move(job, S.NEW, S.PREPARING, "reading the manifest")
        for job in self.engine.jobs_in([S.PREPARING]):
            self._prepare(job)
            changed = True
        changed |= self._settle_stopping()
        changed |= self._finish_exhausted()
        for job in self.engine.jobs_in([S.COMPLETING]):
            self._finalize(job, S.COMPLETING, S.COMPLETE, "all tasks ran")
            changed = True
        changed |= self._share_slots()
        for job in self.engine.jobs_in([S.ACTIVE]):
            runner = self.runners.get(job.id)
            if runner is None and self._pool_ready():
                self.runners[job.id] = self._runner(job)
                changed = True
        return changed

    def _move(
        self, job: JobRow, old: JobStatus, new: JobStatus, reason: str, **fields: object
    ) -> bool:
        moved = self.engine.transition(job.id, old, new, reason, **fields)
        if moved and self.notify is not None:
            self.notify(job.id, job.request.description, old, new, reason)
        return moved

    def _prepare(self, job: JobRow) -> None:
        self.engine.tasks.clear(job.pk)
        request = job.request
        try:
            if request.report is not None and not self.store.bucket_exists(request.report.bucket):
                raise ManifestError(
                    "ReportBucketNotFound",
                    f"report bucket {request.report.bucket} does not exist",
                )
            total = self._load_tasks(job)
        except ManifestError as exc:
            self._fail_preparing(job, exc.code, exc.reason)
            return
        except StoreError as exc:
            self._fail_preparing(job, exc.code, exc.message)
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.exception("job %s: preparing failed", job.id)
            self._fail_preparing(job, "InternalError", f"{type(exc).__name__}: {exc}")
            return
        if total is None:
            return  # cancelled while preparing; the next pass finishes the cancel
        if total == 0:
            # As S3 does (aws-cli #7830): a job with nothing to do fails, and says why.
            self._fail_preparing(job, "NoTasks", "the manifest lists no object")
            return
        if request.confirmation_required:
            self._move(job, S.PREPARING, S.SUSPENDED, "awaiting confirmation")
        else:
            self._move(job, S.PREPARING, S.READY, f"{total} tasks ready")

    def _load_tasks(self, job: JobRow) -> int | None:
        batch: list[tuple[str, str, str | None]] = []
        total = 0
        for task in manifest_tasks(self.store, job.request.manifest):
            batch.append(task)
            if len(batch) >= _BATCH:
                self.engine.tasks.add(job.pk, total + 1, batch)
                total += len(batch)
                batch = []
                if self.engine.status_of(job.pk) is not S.PREPARING:
                    return None
        if batch:
            self.engine.tasks.add(job.pk, total + 1, batch)
            total += len(batch)
        generate = job.request.manifest.generate
        if generate is not None and generate.save_to is not None and total:
            self._save_manifest(job, generate.save_to.bucket, generate.save_to.prefix)
        return total

    def _save_manifest(self, job: JobRow, bucket: str, prefix: str | None) -> None:
        """Keep the generated manifest (for audit and re-runs), streamed from the tasks."""
        base = (prefix or "").strip("/")
        key = f"{base}/job-{job.id}/manifest.csv" if base else f"job-{job.id}/manifest.csv"
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as body:
            for b, k, v in self.engine.tasks.each(job.pk):
                body.write((",".join([b, k, v] if v else [b, k]) + "\n").encode())
            body.seek(0)
            self.store.put(bucket, key, body, content_type="text/csv")

    def _fail_preparing(self, job: JobRow, code: str, reason: str) -> None:
        if self.engine.fail(job.id, S.PREPARING, code, reason):
            if self.notify is not None:
                self.notify(job.id, job.request.description, S.PREPARING, S.FAILING, reason)
            self._move(job, S.FAILING, S.FAILED, reason)

    def _settle_stopping(self) -> bool:
        changed = False
        for job in self.engine.jobs_in([S.PAUSING, S.CANCELLING, S.FAILING]):
            runner = self.runners.get(job.id)
            if runner is not None:
                runner.stop()
                if not runner.finished:
                    continue
                del self.runners[job.id]
            if job.status is S.PAUSING:
                changed |= self._move(job, S.PAUSING, S.PAUSED, "paused for a higher-priority job")
            elif job.status is S.CANCELLING:
                self._finalize(job, S.CANCELLING, S.CANCELLED, "cancelled")
                changed = True
            else:
                self._finalize(job, S.FAILING, S.FAILED, "failed")
                changed = True
        return changed

    def _finish_exhausted(self) -> bool:
        changed = False
        for job_id, runner in list(self.runners.items()):
            if not runner.finished:
                continue
            del self.runners[job_id]
            changed = True
            job = runner.job
            lost = getattr(runner, "lost", None)
            if lost is not None:
                # The pool went away: the job pauses, says why, and resumes once it is back
                # (its unrecorded tasks are still pending).
                self._down_until = time.monotonic() + self._down_for
                if self._move(job, S.ACTIVE, S.PAUSING, lost):
                    self._move(job, S.PAUSING, S.PAUSED, lost)
                continue
            if runner.exhausted and not self.engine.tasks.has_pending(job.pk):
                self._move(job, S.ACTIVE, S.COMPLETING, "all tasks ran")
        return changed

    def _finalize(self, job: JobRow, old: JobStatus, new: JobStatus, reason: str) -> None:
        try:
            write_report(self.engine, self.store, job)
        except (StoreError, OSError) as exc:
            message = f"the completion report could not be written: {exc}"
            log.error("job %s: %s", job.id, message)
            if new is S.COMPLETE:
                self.engine.fail(job.id, old, "ReportWriteFailed", message)
                self._move(job, S.FAILING, S.FAILED, message)
                return
            reason = f"{reason}; {message}"
        self._move(job, old, new, reason)

    def _share_slots(self) -> bool:
        changed = False
        candidates = self.engine.jobs_in([S.READY, S.ACTIVE, S.PAUSED])
        candidates.sort(key=lambda j: (-j.priority, j.created, j.pk))
        chosen = {j.id for j in candidates[: self.slots]}
        occupied = len(self.engine.jobs_in([S.PAUSING]))
        for job in candidates:
            if job.status is S.ACTIVE:
                if job.id in chosen:
                    occupied += 1
                else:
                    runner = self.runners.get(job.id)
                    if runner is not None:
                        runner.stop()
                    changed |= self._move(
                        job, S.ACTIVE, S.PAUSING, "a higher-priority job is ready"
                    )
                    occupied += 1
        ready = self._pool_ready()
        for job in candidates:
            if not ready:
                break
            if job.id in chosen and job.status in (S.READY, S.PAUSED) and occupied < self.slots:
                reason = "resumed" if job.status is S.PAUSED else "running"
                if self._move(job, job.status, S.ACTIVE, reason):
                    occupied += 1
                    changed = True
        return changed
