"""The engine's job API, with the S3 Control job calls' semantics.

``create_job`` is idempotent on ClientRequestToken (same token and same
request: the same job; same token, another request: ``IdempotencyError``).
``list_jobs`` pages newest first, at most 1,000 a page, and leaves out jobs
that ended more than 90 days ago; so does ``describe_job``, as the services do.
``update_job_priority`` works until a job is final; ``update_job_status``
accepts Ready from Suspended and Cancelled from any status that can still be
cancelled. Everything else raises a typed error naming the current and the
requested status.

The methods below the public API are the worker's: they move jobs between
statuses (each change recorded with its time and reason, ``moves``). A job's
tasks are ``Engine.tasks``, the queue of ``runner.engine.tasks``.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.engine.db import Database
from runner.engine.moves import move
from runner.engine.tasks import TaskQueue
from runner.jobs.errors import BadRequest, IdempotencyError, JobStatusError, NotFound
from runner.jobs.models import (
    FailureReason,
    JobDetail,
    JobPage,
    JobRequest,
    ListedJob,
    ListedProgress,
)
from runner.jobs.status import BY_VALUE, CANCELLABLE, JobStatus

RETENTION_SECONDS = 90 * 86400
MAX_PAGE = 1000
Clock = Callable[[], float]


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class JobRow:
    """The worker's view of a job."""

    pk: int
    id: str
    status: JobStatus
    priority: int
    created: float
    request: JobRequest
    total: int
    succeeded: int
    failed: int


_JOB_COLUMNS = (
    "pk, id, status, priority, description, operation, created, terminated, total, succeeded, "
    "failed, active_seconds, active_since"
)


class Engine:
    """The job API over one engine database (``<stateDir>/engine.db``)."""

    def __init__(
        self, state_dir: str | Path, *, clock: Clock = time.time, read_only: bool = False
    ) -> None:
        self.state_dir = Path(state_dir)
        self.db = Database(self.state_dir / "engine.db", read_only=read_only)
        self.clock = clock
        self.tasks = TaskQueue(self.db, clock)

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    # -- public API ----------------------------------------------------------

    def create_job(self, request: JobRequest) -> str:
        """Create a job (New); return its ID. Idempotent on the request's token."""
        fingerprint = request.fingerprint()
        token = request.client_request_token
        with self.db.write() as conn:
            found = conn.execute(
                "SELECT id, fingerprint FROM jobs WHERE token=?", (token,)
            ).fetchone()
            if found is not None:
                if found[1] != fingerprint:
                    raise IdempotencyError(
                        f"ClientRequestToken {token!r} was already used for job {found[0]} "
                        "with a different request"
                    )
                return str(found[0])
            job_id = str(uuid.uuid4())
            now = self.clock()
            cur = conn.execute(
                "INSERT INTO jobs (id, token, fingerprint, request, operation, status, priority, "
                "description, confirmation_required, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    token,
                    fingerprint,
                    request.model_dump_json(by_alias=True, exclude_none=True),
                    request.operation.choice,
                    JobStatus.NEW.value,
                    request.priority,
                    request.description,
                    int(request.confirmation_required),
                    now,
                ),
            )
            conn.execute(
                "INSERT INTO events (job, at, old, new, reason) VALUES (?,?,?,?,?)",
                (cur.lastrowid, now, None, JobStatus.NEW.value, "job created"),
            )
        return job_id

    def describe_job(self, job_id: str) -> JobDetail:
        """Everything about one job."""
        conn = self.db.conn()
        row = conn.execute(
            f"SELECT {_JOB_COLUMNS}, request, confirmation_required, failure_reasons, "
            "status_reason, suspended, suspended_cause FROM jobs WHERE id=?",
            (job_id,),
        ).fetchone()
        if row is None or self._expired(row[7]):
            raise NotFound(f"No such job: {job_id}")
        summary = self._listed(row).summary()
        request = json.loads(row[13])
        reasons = json.loads(row[15]) if row[15] else []
        return JobDetail(
            **summary.model_dump(),
            confirmation_required=bool(row[14]),
            operation_params=request["operation"],
            manifest=request["manifest"],
            report=request.get("report"),
            failure_reasons=[FailureReason(**r) for r in reasons],
            status_update_reason=row[16],
            suspended_at=_dt(row[17]),
            suspended_cause=row[18],
        )

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = MAX_PAGE,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first, filtered as the seed's console filters."""
        jobs, token = self.list_page(
            statuses=statuses,
            next_token=next_token,
            max_results=max_results,
            description=description,
            job_id=job_id,
        )
        return JobPage(jobs=[job.summary() for job in jobs], next_token=token)

    def list_page(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = MAX_PAGE,
        description: str | None = None,
        job_id: str | None = None,
    ) -> tuple[list[ListedJob], str | None]:
        """``list_jobs`` as plain values and the next token (the served ListJobs' path)."""
        if not 1 <= max_results <= MAX_PAGE:
            raise BadRequest(f"maxResults must be between 1 and {MAX_PAGE}")
        wanted = [JobStatus(s).value for s in statuses]
        clauses = ["(terminated IS NULL OR terminated >= ?)"]
        params: list[Any] = [self.clock() - RETENTION_SECONDS]
        if wanted:
            clauses.append(f"status IN ({','.join('?' * len(wanted))})")
            params += wanted
        if description:
            clauses.append("instr(description, ?) > 0")
            params.append(description)
        if job_id:
            clauses.append("id = ?")
            params.append(job_id)
        if next_token:
            clauses.append("pk < ?")
            params.append(self._decode_token(next_token))
        rows = (
            self.db.conn()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(clauses)} "
                "ORDER BY pk DESC LIMIT ?",
                (*params, max_results + 1),
            )
            .fetchall()
        )
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = self._encode_token(rows[-1][0]) if more and rows else None
        return [self._listed(r) for r in rows], token

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """Change a job's priority; it takes effect at the worker's next scheduling pass."""
        if not 0 <= priority <= 2_147_483_647:
            raise BadRequest("priority must be between 0 and 2147483647")
        with self.db.write() as conn:
            status = self._status_for_update(conn, job_id)
            if status.final:
                raise JobStatusError(
                    f"job {job_id} is {status.value}: the priority of a final job cannot change"
                )
            conn.execute("UPDATE jobs SET priority=? WHERE id=?", (priority, job_id))
        return priority

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """Confirm (Ready) a Suspended job or cancel (Cancelled) one; return its status now."""
        try:
            wanted = JobStatus(requested)
        except ValueError:
            raise BadRequest(
                f"requestedJobStatus must be Ready or Cancelled, not {requested!r}"
            ) from None
        if wanted not in (JobStatus.READY, JobStatus.CANCELLED):
            raise BadRequest(f"requestedJobStatus must be Ready or Cancelled, not {wanted.value}")
        if reason is not None and len(reason) > 256:
            raise BadRequest("statusUpdateReason must be at most 256 characters")
        with self.db.write() as conn:
            status = self._status_for_update(conn, job_id)
            if wanted is JobStatus.READY:
                if status is not JobStatus.SUSPENDED:
                    raise JobStatusError(
                        f"job {job_id} is {status.value}: only a Suspended job can be "
                        "confirmed (requested Ready)"
                    )
                move(conn, self.clock(), job_id, status, JobStatus.READY, reason or "confirmed")
                return JobStatus.READY
            if status is JobStatus.CANCELLING:
                return status
            if status not in CANCELLABLE:
                raise JobStatusError(
                    f"job {job_id} is {status.value}: it cannot be cancelled (requested Cancelled)"
                )
            move(
                conn,
                self.clock(),
                job_id,
                status,
                JobStatus.CANCELLING,
                reason or "cancel requested",
            )
            return JobStatus.CANCELLING

    # -- helpers for the API -------------------------------------------------

    def _expired(self, terminated: float | None) -> bool:
        return terminated is not None and terminated < self.clock() - RETENTION_SECONDS

    def _listed(self, row: Sequence[Any]) -> ListedJob:
        elapsed = float(row[11])
        if row[12] is not None:
            elapsed += max(0.0, self.clock() - float(row[12]))
        return ListedJob(
            row[1],
            BY_VALUE[row[2]],
            row[3],
            row[4],
            row[5],
            ListedProgress(row[8], row[9], row[10], round(elapsed, 3)),
            datetime.fromtimestamp(row[6], UTC),
            _dt(row[7]),
        )

    def _status_for_update(self, conn: sqlite3.Connection, job_id: str) -> JobStatus:
        found = conn.execute("SELECT status, terminated FROM jobs WHERE id=?", (job_id,)).fetchone()
        if found is None or self._expired(found[1]):
            raise NotFound(f"No such job: {job_id}")
        return JobStatus(found[0])

    def job_with_token(self, token: str) -> str | None:
        """The job created with ClientRequestToken ``token``, if any."""
        row = self.db.conn().execute("SELECT id FROM jobs WHERE token=?", (token,)).fetchone()
        return str(row[0]) if row else None

    def page_token_after(self, job_id: str) -> str:
        """A ListJobs nextToken that continues after ``job_id`` (COS pages by the last JobId)."""
        row = self.db.conn().execute("SELECT pk FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise BadRequest(f"invalid nextToken {job_id!r}")
        return self._encode_token(int(row[0]))

    @staticmethod
    def _encode_token(pk: int) -> str:
        return base64.urlsafe_b64encode(f"pk:{pk}".encode()).decode()

    @staticmethod
    def _decode_token(token: str) -> int:
        try:
            text = base64.urlsafe_b64decode(token.encode()).decode()
            if not text.startswith("pk:"):
                raise ValueError(text)
            return int(text[3:])
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(f"invalid nextToken {token!r}") from None

    # -- the worker's side -----------------------------------------------------

    def transition(
        self, job_id: str, old: JobStatus, new: JobStatus, reason: str, **fields: Any
    ) -> bool:
        """Move a job from ``old`` to ``new`` if nobody changed it meanwhile."""
        with self.db.write() as conn:
            return move(conn, self.clock(), job_id, old, new, reason, **fields)

    def fail(self, job_id: str, old: JobStatus, code: str, reason: str) -> bool:
        """Move a job to Failing with a failure reason."""
        reasons = json.dumps([{"code": code, "reason": reason[:256]}])
        return self.transition(
            job_id, old, JobStatus.FAILING, reason[:256], failure_reasons=reasons
        )

    def _job_rows(self, where: str, params: Sequence[Any]) -> list[JobRow]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT pk, id, status, priority, created, request, total, succeeded, failed "
                f"FROM jobs WHERE {where} ORDER BY pk",
                params,
            )
            .fetchall()
        )
        return [
            JobRow(
                pk=r[0],
                id=r[1],
                status=JobStatus(r[2]),
                priority=r[3],
                created=r[4],
                request=JobRequest.model_validate_json(r[5]),
                total=r[6],
                succeeded=r[7],
                failed=r[8],
            )
            for r in rows
        ]

    def jobs_in(self, statuses: Iterable[JobStatus]) -> list[JobRow]:
        """Jobs whose status is one of ``statuses``, oldest first."""
        wanted = [s.value for s in statuses]
        return self._job_rows(f"status IN ({','.join('?' * len(wanted))})", wanted)

    def job_row(self, job_id: str) -> JobRow:
        """One job, as the worker sees it."""
        found = self._job_rows("id = ?", [job_id])
        if not found:
            raise NotFound(f"No such job: {job_id}")
        return found[0]

    def status_of(self, pk: int) -> JobStatus:
        """A job's current status."""
        row = self.db.conn().execute("SELECT status FROM jobs WHERE pk=?", (pk,)).fetchone()
        return JobStatus(row[0])

    def set_report(self, pk: int, location: dict[str, str]) -> None:
        """Remember where the completion report was written."""
        with self.db.write() as conn:
            conn.execute("UPDATE jobs SET report=? WHERE pk=?", (json.dumps(location), pk))

    def report_location(self, job_id: str) -> dict[str, str] | None:
        """Where the job's completion report is (bucket and manifest.json key)."""
        row = self.db.conn().execute("SELECT report FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such job: {job_id}")
        found: dict[str, str] | None = json.loads(row[0]) if row[0] else None
        return found

    def events(self, job_id: str) -> list[tuple[datetime, str | None, str, str | None]]:
        """Every status change of a job: (time, old, new, reason)."""
        rows = self.db.conn().execute(
            "SELECT e.at, e.old, e.new, e.reason FROM events e JOIN jobs j ON j.pk = e.job "
            "WHERE j.id=? ORDER BY e.rowid",
            (job_id,),
        )
        return [(datetime.fromtimestamp(r[0], UTC), r[1], r[2], r[3]) for r in rows]


__all__ = ["Engine", "JobRow"]
