"""The dir store's SQLite sidecar: what a file system cannot hold about an object.

Tags, metadata, storage class, ACL, versions, object lock, restore state, cached
ETags and checksums live in ``<root>/.batchctl-store/meta.db``, one row per object
version. A file without a row is an object with default attributes.

Writes of attributes only (tags, ACL, lock, restore), the bulk of a batch campaign,
are buffered per thread inside ``session()`` and committed in one transaction;
writes of data (put, copy, delete) commit at once, so that the sidecar never
disagrees with the files for long.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from sqlite3 import Connection
from typing import Any

from runner.support.sqlite import ThreadConnections, open_wal

SIDECAR = ".batchctl-store"
NULL_VERSION = "null"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    versioning INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL DEFAULT 1,
    delete_marker INTEGER NOT NULL DEFAULT 0,
    blob TEXT,
    last_modified REAL,
    storage_class TEXT,
    content_type TEXT,
    metadata TEXT,
    tags TEXT,
    acl TEXT,
    lock_mode TEXT,
    lock_until REAL,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    restore_until REAL,
    etag TEXT,
    stamp TEXT,
    checksums TEXT,
    encryption TEXT,
    grants TEXT,
    PRIMARY KEY (bucket, key, version_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_latest ON objects (bucket, key) WHERE is_latest = 1;
"""

COLUMNS = (
    "version_id",
    "is_latest",
    "delete_marker",
    "blob",
    "last_modified",
    "storage_class",
    "content_type",
    "metadata",
    "tags",
    "acl",
    "lock_mode",
    "lock_until",
    "legal_hold",
    "restore_until",
    "etag",
    "stamp",
    "checksums",
    "encryption",
    "grants",
)
_SELECT = ", ".join(COLUMNS)
_KEYED = ("key", *COLUMNS)

Row = dict[str, Any]
# One statement per attribute column, made once.
_UPSERT: dict[str, str] = {}


class _Buffer(threading.local):
    """This thread's session depth and the attribute writes it has not committed."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: list[tuple[str, tuple[Any, ...]]] = []


class Sidecar:
    """The attribute rows of one dir store."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "meta.db"
        self._connections = ThreadConnections(lambda: open_wal(self.path, timeout=60))
        self._buffer = _Buffer()
        # See runner.engine.db: in-process writers wait here, not in SQLite's busy handler.
        self._write_lock = threading.RLock()
        conn = self.conn()
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
        for added in ("encryption", "grants"):  # a store made before copies could set them
            if added not in columns:
                conn.execute(f"ALTER TABLE objects ADD COLUMN {added} TEXT")

    def conn(self) -> Connection:
        """This thread's connection."""
        return self._connections.get()

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close()
        self._buffer = _Buffer()

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Buffer attribute writes made in the block; commit them once at its end."""
        buffer = self._buffer
        buffer.depth += 1
        try:
            yield
        finally:
            buffer.depth -= 1
        if buffer.depth == 0 and buffer.pending:
            pending, buffer.pending = buffer.pending, []
            with self.transaction() as conn:
                # A chunk of one operation is one statement many times: one executemany
                # per run of the same statement, in order.
                start = 0
                while start < len(pending):
                    sql = pending[start][0]
                    end = start + 1
                    while end < len(pending) and pending[end][0] == sql:
                        end += 1
                    if end - start == 1:
                        conn.execute(sql, pending[start][1])
                    else:
                        conn.executemany(sql, [params for _, params in pending[start:end]])
                    start = end

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, committed at the end of the block, rolled back on error."""
        conn = self.conn()
        with self._write_lock, conn:
            conn.execute("BEGIN")
            yield conn

    def write(self, sql: str, params: tuple[Any, ...]) -> None:
        """An attribute write: buffered inside a session, else committed at once."""
        buffer = self._buffer
        if buffer.depth:
            buffer.pending.append((sql, params))
        else:
            with self._write_lock:
                self.conn().execute(sql, params)

    def upsert(self, bucket: str, key: str, version: str, column: str, value: Any) -> None:
        """Set one attribute of one version (buffered as ``write``)."""
        sql = _UPSERT.get(column)
        if sql is None:
            sql = _UPSERT[column] = (
                f"INSERT INTO objects (bucket, key, version_id, {column}) VALUES (?, ?, ?, ?) "
                f"ON CONFLICT (bucket, key, version_id) DO UPDATE SET {column} = excluded.{column}"
            )
        buffer = self._buffer  # write(), inlined: this runs once per task of a tag job
        if buffer.depth:
            buffer.pending.append((sql, (bucket, key, version, value)))
        else:
            self.write(sql, (bucket, key, version, value))

    def set_versioning(self, bucket: str, on: bool) -> None:
        """Record a bucket; versioning once on stays on (as S3: it can only be suspended)."""
        with self._write_lock:
            self.conn().execute(
                "INSERT INTO buckets (name, versioning) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "versioning = max(versioning, excluded.versioning)",
                (bucket, int(on)),
            )

    # -- reading -------------------------------------------------------------

    def row(self, bucket: str, key: str, version_id: str | None) -> Row | None:
        """The row of a version (the latest when ``version_id`` is None)."""
        if version_id is None:
            cur = self.conn().execute(
                f"SELECT {_SELECT} FROM objects WHERE bucket=? AND key=? AND is_latest=1",
                (bucket, key),
            )
        else:
            cur = self.conn().execute(
                f"SELECT {_SELECT} FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id),
            )
        found = cur.fetchone()
        return None if found is None else dict(zip(COLUMNS, found, strict=True))

    def latest(self, bucket: str, key: str) -> tuple[str, bool] | None:
        """The latest version's id and whether it is a delete marker; the lean read."""
        found: tuple[str, int] | None = (
            self._connections.get()
            .execute(
                "SELECT version_id, delete_marker FROM objects WHERE bucket=? AND key=? "
                "AND is_latest=1",
                (bucket, key),
            )
            .fetchone()
        )
        return None if found is None else (found[0], bool(found[1]))

    def latest_of(
        self, objects: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, bool] | None]:
        """``latest`` of many objects at once: every one asked for, None where no row."""
        found: dict[tuple[str, str], tuple[str, bool] | None] = dict.fromkeys(objects)
        by_bucket: dict[str, list[str]] = {}
        for bucket, key in found:
            by_bucket.setdefault(bucket, []).append(key)
        conn = self._connections.get()
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 500):  # SQLite's bound on parameters
                part = keys[start : start + 500]
                for key, version, marker in conn.execute(
                    "SELECT key, version_id, delete_marker FROM objects WHERE bucket=? "
                    f"AND is_latest=1 AND key IN ({','.join('?' * len(part))})",
                    (bucket, *part),
                ):
                    found[(bucket, key)] = (version, bool(marker))
        return found

    def latest_rows(self, bucket: str, keys: Iterable[str]) -> dict[str, Row]:
        """The latest rows of ``keys`` (at most a few hundred), by key."""
        keys = list(keys)
        marks = ",".join("?" * len(keys))
        cur = self.conn().execute(
            f"SELECT key, {_SELECT} FROM objects WHERE bucket=? AND is_latest=1 "
            f"AND key IN ({marks})",
            (bucket, *keys),
        )
        return {found[0]: dict(zip(_KEYED, found, strict=True)) for found in cur}

    def noncurrent_rows(self, bucket: str, prefix: str) -> Iterator[Row]:
        """Noncurrent versions (no delete markers) of keys under ``prefix``, newest first."""
        cur = self.conn().execute(
            f"SELECT key, {_SELECT} FROM objects WHERE bucket=? AND is_latest=0 "
            "AND delete_marker=0 AND key >= ? ORDER BY key, last_modified DESC",
            (bucket, prefix),
        )
        for found in cur.fetchall():
            row = dict(zip(_KEYED, found, strict=True))
            if not row["key"].startswith(prefix):
                return
            yield row

    def newest(self, bucket: str, key: str) -> tuple[str, bool, str | None] | None:
        """The newest remaining version of ``key``: id, delete marker, blob."""
        found = (
            self.conn()
            .execute(
                "SELECT version_id, delete_marker, blob FROM objects WHERE bucket=? AND key=? "
                "ORDER BY last_modified DESC LIMIT 1",
                (bucket, key),
            )
            .fetchone()
        )
        return None if found is None else (str(found[0]), bool(found[1]), found[2])

    def lock_of(self, bucket: str, key: str, version: str) -> tuple[bool, float | None]:
        """The legal hold and retain-until of one version (no hold, no date if no row)."""
        found = (
            self.conn()
            .execute(
                "SELECT legal_hold, lock_until FROM objects WHERE bucket=? AND key=? "
                "AND version_id=?",
                (bucket, key, version),
            )
            .fetchone()
        )
        return (False, None) if found is None else (bool(found[0]), found[1])

    def versioning(self, bucket: str) -> bool:
        """Whether versioning is on for ``bucket``."""
        found = (
            self.conn().execute("SELECT versioning FROM buckets WHERE name=?", (bucket,)).fetchone()
        )
        return bool(found and found[0])
