"""The engine's task queue: a job's tasks, handed out in order, their results recorded once.

A task is one manifest row (bucket, key, version) with a sequence number. Results
are recorded with ``status IS NULL`` as the guard, so a task run twice (a chunk
re-run after a crash) is counted once; the failure threshold of the seed is
applied as results arrive, inside the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from runner.engine.db import Database
from runner.engine.moves import move
from runner.jobs.status import JobStatus


class TaskResult(NamedTuple):
    """What one task did: succeeded or not, HTTP status, error code, message.

    A tuple: one is made per task, and a frozen dataclass costs three times as much.
    """

    seq: int
    succeeded: bool
    http: int
    code: str
    message: str


SUCCEEDED = 1
FAILED = 2


# The failure threshold of the seed: once more than 1,000 tasks have run, a job
# whose failed share exceeds 50% at any moment fails.
THRESHOLD_TASKS = 1000


class TaskQueue:
    """The tasks of every job in one engine database."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def clear(self, pk: int) -> None:
        """Forget a job's tasks (a preparation that must start over)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM tasks WHERE job=?", (pk,))
            conn.execute("UPDATE jobs SET total=0, succeeded=0, failed=0 WHERE pk=?", (pk,))

    def add(self, pk: int, first_seq: int, rows: Sequence[tuple[str, str, str | None]]) -> None:
        """Store a batch of tasks (bucket, key as in the manifest, version)."""
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO tasks (job, seq, bucket, key, version) VALUES (?,?,?,?,?)",
                [(pk, first_seq + i, b, k, v) for i, (b, k, v) in enumerate(rows)],
            )
            conn.execute("UPDATE jobs SET total=total + ? WHERE pk=?", (len(rows), pk))

    def pending(self, pk: int, after: int, limit: int) -> list[tuple[int, str, str, str | None]]:
        """Up to ``limit`` tasks not yet recorded, with seq above ``after``."""
        return list(
            self.db.conn().execute(
                "SELECT seq, bucket, key, version FROM tasks WHERE job=? AND seq>? "
                "AND status IS NULL ORDER BY seq LIMIT ?",
                (pk, after, limit),
            )
        )

    def has_pending(self, pk: int) -> bool:
        """Whether any task of the job is not recorded yet."""
        row = (
            self.db.conn()
            .execute("SELECT 1 FROM tasks WHERE job=? AND status IS NULL LIMIT 1", (pk,))
            .fetchone()
        )
        return row is not None

    def record(self, pk: int, job_id: str, results: Sequence[TaskResult]) -> bool:
        """Record task results; apply the failure threshold. False when the job must stop."""
        if not results:
            return True
        with self.db.write() as conn:
            status, done_ok, done_failed = conn.execute(
                "SELECT status, succeeded, failed FROM jobs WHERE pk=?", (pk,)
            ).fetchone()
            updated = conn.executemany(
                "UPDATE tasks SET status=?, http=?, code=?, message=? "
                "WHERE job=? AND seq=? AND status IS NULL",
                [
                    (SUCCEEDED if r.succeeded else FAILED, r.http, r.code, r.message, pk, r.seq)
                    for r in results
                ],
            )
            if updated.rowcount != len(results):
                # A task recorded twice would be counted twice; recount from the tasks.
                done_ok, done_failed = conn.execute(
                    "SELECT count(*) FILTER (WHERE status=1), count(*) FILTER (WHERE status=2) "
                    "FROM tasks WHERE job=?",
                    (pk,),
                ).fetchone()
                crossed = False
            else:
                crossed = False
                for result in results:
                    if result.succeeded:
                        done_ok += 1
                    else:
                        done_failed += 1
                    ran = done_ok + done_failed
                    if ran > THRESHOLD_TASKS and done_failed * 2 > ran:
                        crossed = True
            conn.execute(
                "UPDATE jobs SET succeeded=?, failed=? WHERE pk=?", (done_ok, done_failed, pk)
            )
            current = JobStatus(status)
            if crossed and current in (JobStatus.ACTIVE, JobStatus.PAUSING):
                reason = (
                    f"more than {THRESHOLD_TASKS} tasks ran and over 50% of them failed "
                    f"({done_failed} of {done_ok + done_failed})"
                )
                move(
                    conn,
                    self.clock(),
                    job_id,
                    current,
                    JobStatus.FAILING,
                    reason,
                    failure_reasons=json.dumps(
                        [{"code": "TaskFailureThresholdExceeded", "reason": reason}]
                    ),
                )
                return False
            return current is JobStatus.ACTIVE

    def each(self, pk: int) -> Iterable[tuple[str, str, str | None]]:
        """Every task of a job in seq order: (bucket, key as in the manifest, version)."""
        cur = self.db.conn().execute(
            "SELECT bucket, key, version FROM tasks WHERE job=? ORDER BY seq", (pk,)
        )
        while batch := cur.fetchmany(5000):
            yield from batch

    def results(self, pk: int, *, failed_only: bool) -> Iterable[tuple[Any, ...]]:
        """Recorded tasks in seq order: (bucket, key, version, status, http, code, message)."""
        condition = "status = 2" if failed_only else "status IS NOT NULL"
        cur = self.db.conn().execute(
            f"SELECT bucket, key, version, status, http, code, message FROM tasks "
            f"WHERE job=? AND {condition} ORDER BY seq",
            (pk,),
        )
        while batch := cur.fetchmany(5000):
            yield from batch

    def top_error(self, job_id: str) -> tuple[str, int] | None:
        """The commonest error code of a job's failed tasks, and how many tasks had it."""
        row = (
            self.db.conn()
            .execute(
                "SELECT t.code, t.http, count(*) AS n FROM tasks t JOIN jobs j ON j.pk = t.job "
                "WHERE j.id=? AND t.status = 2 GROUP BY t.code, t.http ORDER BY n DESC LIMIT 1",
                (job_id,),
            )
            .fetchone()
        )
        return None if row is None else (str(row[0] or f"HTTP {row[1]}"), int(row[2]))

    def error_groups(
        self, job_id: str, *, samples: int = 5
    ) -> list[tuple[str, int | None, int, list[tuple[str, str, str]]]]:
        """Failed tasks by error: (code, http, count, a few (bucket, key, message)), commonest
        first."""
        conn = self.db.conn()
        groups = conn.execute(
            "SELECT t.code, t.http, count(*) AS n FROM tasks t JOIN jobs j ON j.pk = t.job "
            "WHERE j.id=? AND t.status = 2 GROUP BY t.code, t.http ORDER BY n DESC, t.code",
            (job_id,),
        ).fetchall()
        found = []
        for code, http, count in groups:
            rows = conn.execute(
                "SELECT t.bucket, t.key, coalesce(t.message, '') FROM tasks t "
                "JOIN jobs j ON j.pk = t.job WHERE j.id=? AND t.status = 2 "
                "AND t.code IS ? AND t.http IS ? ORDER BY t.seq LIMIT ?",
                (job_id, code, http, samples),
            ).fetchall()
            label = str(code or f"HTTP {http}")
            found.append((label, http, int(count), [(str(b), str(k), str(m)) for b, k, m in rows]))
        return found
