"""The engine's SQLite database: schema, per-thread connections, write transactions.

One file, ``<stateDir>/engine.db``, in WAL mode so that the CLI can read while
a worker writes. Every thread has its own connection. Write transactions are
``BEGIN IMMEDIATE``: the writer takes the lock up front, so a
read-then-write (check a status, then change it) cannot interleave with
another writer. A lock held longer than the busy timeout surfaces as
``TooManyRequests``, which callers may retry.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from runner.jobs.errors import TooManyRequests
from runner.support.sqlite import ThreadConnections, open_wal

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    token TEXT UNIQUE,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    operation TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    description TEXT NOT NULL,
    confirmation_required INTEGER NOT NULL,
    created REAL NOT NULL,
    suspended REAL,
    suspended_cause TEXT,
    terminated REAL,
    status_reason TEXT,
    failure_reasons TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    active_seconds REAL NOT NULL DEFAULT 0,
    active_since REAL,
    report TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS tasks (
    job INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT,
    status INTEGER,
    http INTEGER,
    code TEXT,
    message TEXT,
    PRIMARY KEY (job, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_pending ON tasks (job, seq) WHERE status IS NULL;
CREATE TABLE IF NOT EXISTS events (
    job INTEGER NOT NULL,
    at REAL NOT NULL,
    old TEXT,
    new TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events (job);
"""

BUSY_TIMEOUT_SECONDS = 30.0


def connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only; nothing is created, not even -wal or -shm files.

    A read-only connection to a WAL database still makes the -wal and -shm files when
    they are missing. They exist while any writer has the database open, so then it is
    opened ``mode=ro`` (reading the writer's latest commits); when they are missing, no
    writer is there and the file alone is the whole database: it is opened immutable,
    which creates nothing and also works in a read-only folder.
    """
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            pass  # a -shm that cannot be opened (read-only folder): the file as it is
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


class Database:
    """Thread-local connections to one engine database.

    ``read_only`` opens it for reading only (``status``, ``plan --no-lock``): nothing is
    written or created, and a database that does not exist reads as empty.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._connections = ThreadConnections(self._open)
        # Writers of this process queue here rather than in SQLite's busy handler,
        # which sleeps in steps of milliseconds and would stall the worker threads.
        self._write_lock = threading.RLock()
        if read_only:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.conn()
        with self.write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _open(self) -> sqlite3.Connection:
        if not self.read_only:
            return open_wal(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        if self.path.exists():
            conn = connect_read_only(self.path)
        else:
            conn = sqlite3.connect(":memory:")
            conn.executescript(_SCHEMA)
        conn.isolation_level = None
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; transactions are explicit)."""
        return self._connections.get()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        if self.read_only:
            raise PermissionError(f"{self.path} was opened read-only")
        conn = self.conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise TooManyRequests(f"engine database busy: {exc}", delay=1.0) from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close()
