"""The SQLite ledger of one state folder: ``<folder>/ledger.db``, the default."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from runner.engine.db import connect_read_only
from runner.jobs.progress import Counts, Failure
from runner.jobs.status import BY_VALUE, JobStatus
from runner.spec.gcpause import collector_paused
from runner.state.ledger import Observed
from runner.state.records import LedgerRecord, LedgerView

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    job_id TEXT NOT NULL UNIQUE,
    spec_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    terminated REAL,
    immutable TEXT NOT NULL DEFAULT '',
    staged INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    updated REAL NOT NULL,
    slot REAL,
    failure TEXT,
    rate REAL,
    PRIMARY KEY (target, name, generation)
);
CREATE TABLE IF NOT EXISTS history (
    at REAL NOT NULL,
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    job_id TEXT,
    detail TEXT
)
"""


LEDGER_FILE = "ledger.db"


class SqliteLedger:
    """The SQLite ledger of one state folder."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            # Nothing is created: a missing ledger reads as one without records.
            if path.exists():
                self.conn = connect_read_only(path)
            else:
                self.conn = sqlite3.connect(":memory:")
                self.conn.executescript(_SCHEMA)
            self.conn.isolation_level = None
            self._columns = {row[1] for row in self.conn.execute("PRAGMA table_info(jobs)")}
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self.conn.execute(statement)
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(jobs)")}
        if "slot" not in columns:  # a ledger written before recurring jobs existed
            self.conn.execute("ALTER TABLE jobs ADD COLUMN slot REAL")
        if "failure" not in columns:  # … or before failure reasons were kept
            self.conn.execute("ALTER TABLE jobs ADD COLUMN failure TEXT")
        if "rate" not in columns:  # … or before rates were kept
            self.conn.execute("ALTER TABLE jobs ADD COLUMN rate REAL")
        self._columns = columns | {"slot", "failure", "rate"}

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def records(self) -> list[LedgerRecord]:
        """Every recorded job."""
        return self._select("AS j ORDER BY j.target, j.name, j.generation")

    def view(self) -> LedgerView:
        """Each job's newest generation and every job ID.

        Only the newest generations are built into records: at ten generations a spec,
        building all of them was a fifth of a 100,000-job pass (bench/reconcile.py).
        """
        # The newest generation of each job from the primary key's index alone, then
        # only those rows: half the time of a GROUP BY over the whole table.
        latest = self._select(
            "AS j JOIN (SELECT target, name, max(generation) AS newest FROM jobs "
            "GROUP BY target, name) AS m ON j.target = m.target AND j.name = m.name "
            "AND j.generation = m.newest ORDER BY j.target, j.name"
        )
        ids = frozenset(r[0] for r in self.conn.execute("SELECT job_id FROM jobs"))
        return LedgerView(latest, ids)

    def _select(self, tail: str) -> list[LedgerRecord]:
        # A ledger read without migrating it may lack the newer columns.
        newer = ", ".join(
            f"j.{c}" if c in self._columns else "NULL" for c in ("slot", "failure", "rate")
        )
        rows = self.conn.execute(
            "SELECT j.target, j.name, j.generation, j.job_id, j.spec_hash, j.status, j.total, "
            "j.succeeded, j.failed, j.created, j.terminated, j.immutable, j.staged, j.report, "
            f"{newer} FROM jobs {tail}"
        )
        status = BY_VALUE.__getitem__
        with collector_paused():  # 100,000 records: see there
            return [
                LedgerRecord(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    status(r[5]),
                    Counts(r[6], r[7], r[8]),
                    r[9],
                    r[10],
                    r[11],
                    bool(r[12]),
                    r[13],
                    r[14],
                    Failure.from_json(r[15]) if r[15] else None,
                    r[16],
                )
                for r in rows
            ]

    def record(self, record: LedgerRecord) -> None:
        """Add a job (or refresh it, if its generation is known)."""
        self.conn.execute(
            "INSERT INTO jobs (target, name, generation, job_id, spec_hash, status, total, "
            "succeeded, failed, created, terminated, immutable, staged, report, updated, slot, "
            "failure, rate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (target, name, generation) "
            "DO UPDATE SET status=excluded.status, total=excluded.total, "
            "succeeded=excluded.succeeded, failed=excluded.failed, "
            "terminated=excluded.terminated, updated=excluded.updated, "
            "report=coalesce(excluded.report, jobs.report), "
            "failure=coalesce(excluded.failure, jobs.failure), "
            "rate=coalesce(excluded.rate, jobs.rate)",
            (
                record.target,
                record.name,
                record.generation,
                record.job_id,
                record.spec_hash,
                record.status.value,
                record.counts.total,
                record.counts.succeeded,
                record.counts.failed,
                record.created,
                record.terminated,
                record.immutable,
                int(record.staged),
                record.report,
                time.time(),
                record.slot,
                record.failure.to_json() if record.failure else None,
                record.rate,
            ),
        )

    def refresh_from(self, observed: Iterable[Observed]) -> None:
        """Store the statuses and counts one ListJobs sweep showed."""
        self.refresh((o.job_id, o.status, o.counts, o.terminated) for o in observed)

    def refresh(self, updates: Iterable[tuple[str, JobStatus, Counts, float | None]]) -> None:
        """Store the status and counts just observed (job ID, status, counts, terminated)."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "UPDATE jobs SET status=?, total=?, succeeded=?, failed=?, terminated=?, "
                "updated=? WHERE job_id=? AND status NOT IN ('Complete','Failed','Cancelled')",
                [
                    (s.value, c.total, c.succeeded, c.failed, t, time.time(), job_id)
                    for job_id, s, c, t in updates
                ],
            )

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Remember an applied action."""
        self.conn.execute(
            "INSERT INTO history (at, target, name, action, job_id, detail) VALUES (?,?,?,?,?,?)",
            (time.time(), target, name, action, job_id, detail),
        )

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Fill an empty ledger with another's records and history (``state migrate``)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            count = self.conn.execute(
                "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM history)"
            ).fetchone()[0]
            if count:
                raise ValueError(f"{self.path} is not empty; nothing was moved")
            for record in records:
                self.record(record)
            self.conn.executemany(
                "INSERT INTO history (at, target, name, action, job_id, detail) "
                "VALUES (?,?,?,?,?,?)",
                [
                    (h["at"], h["target"], h["name"], h["action"], h["jobId"], h["detail"])
                    for h in history
                ],
            )

    def history(self) -> list[dict[str, object]]:
        """Every applied action, oldest first."""
        rows = self.conn.execute(
            "SELECT at, target, name, action, job_id, detail FROM history ORDER BY rowid"
        )
        return [
            {
                "at": r[0],
                "target": r[1],
                "name": r[2],
                "action": r[3],
                "jobId": r[4],
                "detail": r[5],
            }
            for r in rows
        ]

    def retire(self, stamp: str) -> str:
        """Close, then set the file aside as ``ledger.db.migrated-<stamp>``; return where to."""
        self.close()
        kept = self.path.with_name(f"{self.path.name}.migrated-{stamp}")
        shutil.move(self.path, kept)
        for suffix in ("-wal", "-shm"):  # normally gone once closed; kept with it if not
            leftover = self.path.with_name(f"{self.path.name}{suffix}")
            if leftover.exists():
                shutil.move(leftover, f"{kept}{suffix}")
        return str(kept)
