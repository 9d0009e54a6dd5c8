"""A job's status change, and the event that records it.

Both the job API (confirm, cancel, priority) and the task queue (the failure
threshold) change a job's status inside their own write transaction; this is the
one place that knows what a change writes besides the status: the reason, active
time, suspension, termination, and a row in ``events``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from runner.jobs.status import JobStatus


def move(
    conn: sqlite3.Connection,
    now: float,
    job_id: str,
    old: JobStatus,
    new: JobStatus,
    reason: str,
    **fields: Any,
) -> bool:
    """Change status from ``old`` to ``new`` if it is still ``old``; record the change."""
    sets = ["status=?"]
    values: list[Any] = [new.value]
    if old is JobStatus.CANCELLING and new is JobStatus.CANCELLED:
        # The reason given with the cancel request stays the job's StatusUpdateReason,
        # as DescribeJob shows it on S3; the event below still records this step.
        sets.append("status_reason=coalesce(status_reason, ?)")
    else:
        sets.append("status_reason=?")
    values.append(reason)
    if new is JobStatus.ACTIVE:
        sets.append("active_since=?")
        values.append(now)
    elif old is JobStatus.ACTIVE:
        sets += [
            "active_seconds=active_seconds + max(0, ? - coalesce(active_since, ?))",
            "active_since=NULL",
        ]
        values += [now, now]
    if new is JobStatus.SUSPENDED:
        sets += ["suspended=?", "suspended_cause=?"]
        values += [now, reason]
    if new.final:
        sets.append("terminated=?")
        values.append(now)
    for name, value in fields.items():
        sets.append(f"{name}=?")
        values.append(value)
    cur = conn.execute(
        f"UPDATE jobs SET {', '.join(sets)} WHERE id=? AND status=?",
        (*values, job_id, old.value),
    )
    if cur.rowcount != 1:
        return False
    pk = conn.execute("SELECT pk FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
    conn.execute(
        "INSERT INTO events (job, at, old, new, reason) VALUES (?,?,?,?,?)",
        (pk, now, old.value, new.value, reason),
    )
    return True
