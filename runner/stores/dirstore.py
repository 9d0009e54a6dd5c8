"""The embedded ``dir://`` store: buckets are folders, keys are files.

What a file system cannot hold — tags, metadata, storage class, ACL, versions,
object lock, restore state, cached ETags and checksums — lives in an SQLite
sidecar, ``<root>/.batchctl-store/meta.db``. A file without a sidecar row is an
object with default attributes, so a store can be pointed at an existing tree.
Noncurrent versions are kept under ``.batchctl-store/versions/``.

Keys are confined to their bucket folder: a key with a NUL, a backslash, an
empty, ``.`` or ``..`` segment, a leading or trailing ``/`` is refused, and so is
any path that passes through a symlink already in the tree. Bucket names cannot
start with a dot, so the sidecar folder never collides with a bucket.

Writes of attributes only (tags, ACL, lock, restore), the bulk of a batch
campaign, are buffered per thread inside ``session()`` and committed in one
transaction; writes of data (put, copy, delete) commit at once, so that the
sidecar never disagrees with the files for long.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from runner.spec.models import ARCHIVE_CLASSES
from runner.stores.base import (
    CopyOptions,
    ObjectInfo,
    Retention,
    StoreError,
    no_such_bucket,
    no_such_key,
)
from runner.stores.checksums import checksum_stream

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

_ACCESS_DENIED_LOCK = "Access Denied because object protected by object lock"


def _now() -> float:
    return time.time()


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class _Session:
    """Per-thread state: the connection and the buffered attribute writes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.depth = 0
        self.pending: list[tuple[str, tuple[Any, ...]]] = []


class DirStore:
    """An object store on a local folder (see the module docstring)."""

    # Attribute-only operations here are pure Python and SQLite work under the GIL:
    # more threads only add contention (bench/RESULTS.md), so they run on one.
    attribute_threads: int | None = 1

    def __init__(self, root: str | Path, *, clock: Any = _now) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._side = self.root / SIDECAR
        (self._side / "versions").mkdir(parents=True, exist_ok=True)
        (self._side / "tmp").mkdir(parents=True, exist_ok=True)
        self._db_path = self._side / "meta.db"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # See runner.engine.db: in-process writers wait here, not in SQLite's busy handler.
        self._write_lock = threading.RLock()
        self._safe_dirs: set[str] = set()
        self._root_text = str(self.root)
        self._bucket_paths: dict[str, str] = {}
        self._clock = clock
        conn = self._conn()
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
        for added in ("encryption", "grants"):  # a store made before copies could set them
            if added not in columns:
                conn.execute(f"ALTER TABLE objects ADD COLUMN {added} TEXT")

    # -- connections and sessions -------------------------------------------

    def _state(self) -> _Session:
        state: _Session | None = getattr(self._local, "state", None)
        if state is None:
            conn = sqlite3.connect(self._db_path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            state = _Session(conn)
            self._local.state = state
            with self._lock:
                self._connections.append(conn)
        return state

    def _conn(self) -> sqlite3.Connection:
        return self._state().conn

    @contextlib.contextmanager
    def _session_cm(self) -> Iterator[None]:
        state = self._state()
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
        if state.depth == 0 and state.pending:
            pending, state.pending = state.pending, []
            with self._write_lock, state.conn:
                state.conn.execute("BEGIN")
                for sql, params in pending:
                    state.conn.execute(sql, params)

    def session(self) -> AbstractContextManager[None]:
        """Buffer attribute writes made in the block; commit them once at its end."""
        return self._session_cm()

    def _write_attr(self, sql: str, params: tuple[Any, ...]) -> None:
        state = self._state()
        if state.depth:
            state.pending.append((sql, params))
        else:
            with self._write_lock:
                state.conn.execute(sql, params)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- paths ---------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> str:
        path = self._bucket_paths.get(bucket)
        if path is not None:
            return path
        if not bucket or bucket.startswith(".") or "/" in bucket or "\\" in bucket:
            raise StoreError(400, "InvalidBucketName", f"The bucket name is not valid: {bucket}")
        path = os.path.join(self._root_text, bucket)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise no_such_bucket(bucket) from None
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise StoreError(403, "AccessDenied", f"bucket {bucket} is not a plain folder")
        self._bucket_paths[bucket] = path
        return path

    @staticmethod
    def check_key(key: str) -> list[str]:
        """Refuse keys that cannot be a file below the bucket folder; return the segments."""
        parts = key.split("/")
        problem = None
        if not key:
            problem = "empty key"
        elif len(key) > 1024 and len(key.encode()) > 1024:
            problem = "key longer than 1024 bytes"
        elif "\0" in key or "\\" in key:
            problem = "NUL and backslash are not allowed in keys of the dir store"
        elif key[0] == "/" or key[-1] == "/":
            problem = "keys of the dir store cannot start or end with '/'"
        elif "" in parts or "." in parts or ".." in parts:
            problem = "empty, '.' and '..' segments are not allowed in keys of the dir store"
        if problem:
            raise StoreError(400, "InvalidArgument", f"{problem}: {key!r}")
        return parts

    def _path(self, bucket: str, key: str, *, create_dirs: bool = False) -> str:
        base = self._bucket_dir(bucket)
        parts = self.check_key(key)
        current = base
        for part in parts[:-1]:
            current = f"{current}/{part}"
            if current in self._safe_dirs:
                continue
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                if not create_dirs:
                    return f"{base}/{key}"
                with contextlib.suppress(FileExistsError):
                    os.mkdir(current)
                mode = os.lstat(current).st_mode
            if stat.S_ISLNK(mode):
                raise StoreError(403, "AccessDenied", f"symlink in the store: {bucket}/{key}")
            if not stat.S_ISDIR(mode):
                raise StoreError(
                    400,
                    "InvalidArgument",
                    f"the dir store cannot hold {key!r}: a parent of it is an object, not a folder",
                )
            self._safe_dirs.add(current)
        return f"{current}/{parts[-1]}"

    def _stat_file(self, path: str | Path) -> os.stat_result | None:
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(info.st_mode):
            raise StoreError(403, "AccessDenied", "symlink in the store")
        if not stat.S_ISREG(info.st_mode):
            return None
        return info

    # -- rows ----------------------------------------------------------------

    _COLUMNS = (
        "version_id, is_latest, delete_marker, blob, last_modified, storage_class, content_type, "
        "metadata, tags, acl, lock_mode, lock_until, legal_hold, restore_until, etag, stamp, "
        "checksums, encryption, grants"
    )

    def _row(self, bucket: str, key: str, version_id: str | None) -> dict[str, Any] | None:
        conn = self._conn()
        if version_id is None:
            cur = conn.execute(
                f"SELECT {self._COLUMNS} FROM objects WHERE bucket=? AND key=? AND is_latest=1",
                (bucket, key),
            )
        else:
            cur = conn.execute(
                f"SELECT {self._COLUMNS} FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id),
            )
        found = cur.fetchone()
        if found is None:
            return None
        return dict(zip([c.strip() for c in self._COLUMNS.split(",")], found, strict=True))

    def _resolve(
        self, bucket: str, key: str, version_id: str | None
    ) -> tuple[str, str | Path, os.stat_result, dict[str, Any] | None]:
        """The version id, data path, file status and row of an existing object version."""
        path = self._path(bucket, key)
        if version_id is None or version_id == NULL_VERSION:
            row = self._row(bucket, key, version_id)
            if row is not None and row["delete_marker"]:
                raise no_such_key(bucket, key)
            if row is not None and not row["is_latest"]:
                blob = self._side / "versions" / bucket / str(row["blob"])
                info = self._stat_file(blob)
                if info is None:
                    raise no_such_key(bucket, key)
                return NULL_VERSION, blob, info, row
            info = self._stat_file(path)
            if info is None:
                raise no_such_key(bucket, key)
            return (row["version_id"] if row else NULL_VERSION), path, info, row
        row = self._row(bucket, key, version_id)
        if row is None or row["delete_marker"]:
            raise StoreError(404, "NoSuchVersion", f"The specified version does not exist: {key}")
        data: str | Path = (
            path if row["is_latest"] else self._side / "versions" / bucket / str(row["blob"])
        )
        info = self._stat_file(data)
        if info is None:
            raise no_such_key(bucket, key)
        return version_id, data, info, row

    def _version_for_update(self, bucket: str, key: str, version_id: str | None) -> str:
        """The version an attribute write applies to; the lean path of the bulk operations."""
        if version_id is not None:
            return self._resolve(bucket, key, version_id)[0]
        path = self._path(bucket, key)
        found = self._conn().execute(self._LATEST_SQL, (bucket, key)).fetchone()
        if found is not None and found[1]:
            raise no_such_key(bucket, key)
        if self._stat_file(path) is None:
            raise no_such_key(bucket, key)
        return str(found[0]) if found is not None else NULL_VERSION

    _LATEST_SQL = (
        "SELECT version_id, delete_marker FROM objects WHERE bucket=? AND key=? AND is_latest=1"
    )

    def _upsert_attr(self, bucket: str, key: str, version: str, column: str, value: Any) -> None:
        self._write_attr(
            f"INSERT INTO objects (bucket, key, version_id, {column}) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (bucket, key, version_id) DO UPDATE SET {column} = excluded.{column}",
            (bucket, key, version, value),
        )

    def _locked(self, row: dict[str, Any] | None) -> bool:
        if row is None:
            return False
        until = row["lock_until"]
        return bool(row["legal_hold"]) or (until is not None and until > self._clock())

    def _versioning(self, bucket: str) -> bool:
        found = (
            self._conn()
            .execute("SELECT versioning FROM buckets WHERE name=?", (bucket,))
            .fetchone()
        )
        return bool(found and found[0])

    def _info(
        self, bucket: str, key: str, version: str, info: os.stat_result, row: dict[str, Any] | None
    ) -> ObjectInfo:
        modified = row["last_modified"] if row and row["last_modified"] else info.st_mtime
        return ObjectInfo(
            bucket=bucket,
            key=key,
            version_id=None if version == NULL_VERSION else version,
            size=info.st_size,
            last_modified=datetime.fromtimestamp(modified, UTC),
            storage_class=(row["storage_class"] if row else None) or "STANDARD",
            etag=None,
            is_latest=bool(row["is_latest"]) if row else True,
            content_type=row["content_type"] if row else None,
            metadata=json.loads(row["metadata"]) if row and row["metadata"] else {},
            restore_until=_dt(row["restore_until"]) if row else None,
            encryption=row["encryption"] if row else None,
        )

    # -- buckets -------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket folder exists."""
        try:
            self._bucket_dir(bucket)
        except StoreError:
            return False
        return True

    def create_bucket(
        self, bucket: str, *, versioning: bool = False, object_lock: bool = False
    ) -> None:
        """Create the bucket folder (and record its versioning); object lock needs no setup."""
        if not bucket or bucket.startswith(".") or "/" in bucket:
            raise StoreError(400, "InvalidBucketName", f"The bucket name is not valid: {bucket}")
        (self.root / bucket).mkdir(exist_ok=True)
        with self._write_lock:
            self._conn().execute(
                "INSERT INTO buckets (name, versioning) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "versioning = max(versioning, excluded.versioning)",
                (bucket, int(versioning)),
            )

    # -- reading -------------------------------------------------------------

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """Describe one object version, with its ETag (MD5, cached by size and mtime)."""
        version, data, info, row = self._resolve(bucket, key, version_id)
        found = self._info(bucket, key, version, info, row)
        stamp = f"{info.st_size}:{info.st_mtime_ns}"
        etag = row["etag"] if row and row["stamp"] == stamp else None
        if etag is None:
            with self._open_data(data) as stream:
                etag = checksum_hex_md5(stream)
            with self._write_lock:
                self._conn().execute(
                    "INSERT INTO objects (bucket, key, version_id, etag, stamp) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (bucket, key, version_id) DO UPDATE SET etag=excluded.etag, "
                    "stamp=excluded.stamp",
                    (bucket, key, version, etag, stamp),
                )
        return ObjectInfo(**{**found.__dict__, "etag": etag})

    @staticmethod
    def _open_data(path: str | Path) -> BinaryIO:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def _readable(self, bucket: str, key: str, row: dict[str, Any] | None) -> None:
        if row is None or (row["storage_class"] or "STANDARD") not in ARCHIVE_CLASSES:
            return
        until = row["restore_until"]
        if until is None or until <= self._clock():
            raise StoreError(
                403,
                "InvalidObjectState",
                f"The operation is not valid for the object's storage class: {bucket}/{key}",
            )

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """Open the object's content (archived objects must be restored first)."""
        _, data, _, row = self._resolve(bucket, key, version_id)
        self._readable(bucket, key, row)
        return self._open_data(data)

    def list(
        self, bucket: str, prefix: str = "", *, versions: bool = False
    ) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (folders walked in name order)."""
        base = Path(self._bucket_dir(bucket))
        folder, _, start = prefix.rpartition("/")
        top = base / folder if folder else base
        if folder:
            try:
                self._path(bucket, folder + "/x")
            except StoreError:
                return
        batch: builtins.list[tuple[str, os.stat_result]] = []
        for key, info in self._walk(top, folder, start):
            batch.append((key, info))
            if len(batch) >= 500:
                yield from self._listed(bucket, batch)
                batch = []
        yield from self._listed(bucket, batch)
        if versions:
            yield from self._noncurrent(bucket, prefix)

    def _walk(self, top: Path, folder: str, start: str) -> Iterator[tuple[str, os.stat_result]]:
        stack: list[tuple[Path, str]] = [(top, folder)]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            files = []
            for entry in entries:
                key = f"{rel}/{entry.name}" if rel else entry.name
                if directory == top and start and not entry.name.startswith(start):
                    continue
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), key))
                elif entry.is_file(follow_symlinks=False):
                    files.append((key, entry.stat(follow_symlinks=False)))
            yield from reversed(files)

    def _listed(
        self, bucket: str, batch: builtins.list[tuple[str, os.stat_result]]
    ) -> Iterator[ObjectInfo]:
        if not batch:
            return
        rows: dict[str, dict[str, Any]] = {}
        keys = [k for k, _ in batch]
        marks = ",".join("?" * len(keys))
        cur = self._conn().execute(
            f"SELECT key, {self._COLUMNS} FROM objects WHERE bucket=? AND is_latest=1 "
            f"AND key IN ({marks})",
            (bucket, *keys),
        )
        names = ["key"] + [c.strip() for c in self._COLUMNS.split(",")]
        for found in cur:
            listed = dict(zip(names, found, strict=True))
            rows[listed["key"]] = listed
        for key, info in batch:
            row = rows.get(key)
            version = row["version_id"] if row else NULL_VERSION
            yield self._info(bucket, key, version, info, row)

    def _noncurrent(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        cur = self._conn().execute(
            f"SELECT key, {self._COLUMNS} FROM objects WHERE bucket=? AND is_latest=0 "
            "AND delete_marker=0 AND key >= ? ORDER BY key, last_modified DESC",
            (bucket, prefix),
        )
        names = ["key"] + [c.strip() for c in self._COLUMNS.split(",")]
        for found in cur.fetchall():
            row = dict(zip(names, found, strict=True))
            if not row["key"].startswith(prefix):
                break
            info = self._stat_file(self._side / "versions" / bucket / str(row["blob"]))
            if info is not None:
                yield self._info(bucket, row["key"], row["version_id"], info, row)

    # -- writing data ----------------------------------------------------------

    def _write_file(self, bucket: str, key: str, body: bytes | IO[bytes] | str | Path) -> Path:
        """Write ``body`` to a temporary file beside the store and return it."""
        fd, tmp = tempfile.mkstemp(dir=self._side / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(body, bytes):
                    out.write(body)
                elif isinstance(body, str | Path):
                    with self._open_data(body) as source:
                        shutil.copyfileobj(source, out, 1 << 20)
                else:
                    shutil.copyfileobj(body, out, 1 << 20)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return Path(tmp)

    def _install(
        self,
        bucket: str,
        key: str,
        tmp: Path,
        attrs: dict[str, Any],
    ) -> ObjectInfo:
        """Make ``tmp`` the current version of ``key``, keeping or refusing the old one."""
        path = self._path(bucket, key, create_dirs=True)
        conn = self._conn()
        versioned = self._versioning(bucket)
        if not versioned:
            return self._install_unversioned(bucket, key, path, tmp, attrs)
        try:
            current = self._row(bucket, key, None)
            exists = self._stat_file(path) is not None
            if exists and self._locked(current):
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            now = self._clock()
            version = uuid.uuid4().hex if versioned else NULL_VERSION
            with self._write_lock, conn:
                conn.execute("BEGIN")
                if versioned and exists:
                    blob = uuid.uuid4().hex
                    old = current["version_id"] if current else NULL_VERSION
                    (self._side / "versions" / bucket).mkdir(exist_ok=True)
                    written = path_mtime_or(os.lstat(path).st_mtime, current)
                    os.replace(path, self._side / "versions" / bucket / blob)
                    conn.execute(
                        "INSERT INTO objects (bucket, key, version_id, is_latest, blob, "
                        "last_modified) VALUES (?,?,?,0,?,?) ON CONFLICT (bucket, key, version_id) "
                        "DO UPDATE SET is_latest=0, blob=excluded.blob",
                        (bucket, key, old, blob, written),
                    )
                elif versioned and current is not None:
                    conn.execute(
                        "UPDATE objects SET is_latest=0 WHERE bucket=? AND key=? AND is_latest=1",
                        (bucket, key),
                    )
                else:
                    conn.execute(
                        "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                        (bucket, key, NULL_VERSION),
                    )
                columns = ["bucket", "key", "version_id", "is_latest", "last_modified"]
                values: list[Any] = [bucket, key, version, 1, now]
                for name, value in attrs.items():
                    columns.append(name)
                    values.append(value)
                conn.execute(
                    f"INSERT INTO objects ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(values))})",
                    values,
                )
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        info = os.lstat(path)
        row = self._row(bucket, key, version)
        return self._info(bucket, key, version, info, row)

    def _install_unversioned(
        self, bucket: str, key: str, path: str, tmp: Path, attrs: dict[str, Any]
    ) -> ObjectInfo:
        """Replace the file, then its row (buffered with the session's writes).

        A crash between the two leaves the new content with the old attributes;
        the task that wrote it was not recorded, so it runs again and mends that.
        """
        try:
            found = (
                self._conn()
                .execute(
                    "SELECT legal_hold, lock_until FROM objects WHERE bucket=? AND key=? "
                    "AND version_id=?",
                    (bucket, key, NULL_VERSION),
                )
                .fetchone()
            )
            locked = found and (found[0] or (found[1] is not None and found[1] > self._clock()))
            if locked and self._stat_file(path) is not None:
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            size = os.lstat(tmp).st_size
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        now = self._clock()
        columns = ["bucket", "key", "version_id", "is_latest", "last_modified", *attrs]
        values = [bucket, key, NULL_VERSION, 1, now, *attrs.values()]
        self._write_attr(
            f"INSERT OR REPLACE INTO objects ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(values))})",
            tuple(values),
        )
        metadata = attrs.get("metadata")
        return ObjectInfo(
            bucket=bucket,
            key=key,
            version_id=None,
            size=size,
            last_modified=datetime.fromtimestamp(now, UTC),
            storage_class=attrs.get("storage_class") or "STANDARD",
            content_type=attrs.get("content_type"),
            metadata=json.loads(metadata) if metadata else {},
        )

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes | IO[bytes],
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        """Write an object."""
        self._path(bucket, key)
        tmp = self._write_file(bucket, key, body)
        attrs: dict[str, Any] = {
            "content_type": content_type,
            "metadata": json.dumps(metadata) if metadata else None,
            "tags": json.dumps(tags) if tags else None,
            "storage_class": storage_class if storage_class != "STANDARD" else None,
        }
        return self._install(bucket, key, tmp, attrs)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        dst_bucket: str,
        dst_key: str,
        options: CopyOptions,
    ) -> ObjectInfo:
        """Copy with S3's metadata and tagging directives."""
        _, data, _, row = self._resolve(src_bucket, src_key, src_version)
        self._readable(src_bucket, src_key, row)
        self._path(dst_bucket, dst_key)
        if options.metadata_directive == "REPLACE":
            # System headers (Cache-Control …) are kept with the user metadata.
            metadata = {**options.metadata, **options.headers} or None
            content_type = options.content_type
        else:
            metadata = json.loads(row["metadata"]) if row and row["metadata"] else None
            content_type = row["content_type"] if row else None
        if options.tagging_directive == "REPLACE":
            tags = options.tags or None
        else:
            tags = json.loads(row["tags"]) if row and row["tags"] else None
        storage_class = options.storage_class or (row["storage_class"] if row else None)
        tmp = self._write_file(dst_bucket, dst_key, data)
        checksums = None
        if options.checksum_algorithm:
            with self._open_data(tmp) as stream:
                value = checksum_stream(stream, options.checksum_algorithm)
            checksums = json.dumps({options.checksum_algorithm: value})
        attrs: dict[str, Any] = {
            "content_type": content_type,
            "metadata": json.dumps(metadata) if metadata else None,
            "tags": json.dumps(tags) if tags else None,
            "storage_class": storage_class if storage_class != "STANDARD" else None,
            "acl": options.canned_acl,
            "checksums": checksums,
            # Files here are not encrypted; the attribute records what was asked, as S3 reports
            # it, so that a campaign tested here reads the same on S3.
            "encryption": options.encryption,
            "grants": json.dumps(sorted(options.grants)) if options.grants else None,
        }
        return self._install(dst_bucket, dst_key, tmp, attrs)

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Delete; a missing object is not an error (as S3), so a retried task succeeds."""
        path = self._path(bucket, key)
        conn = self._conn()
        versioned = self._versioning(bucket)
        if version_id is None and versioned:
            current = self._row(bucket, key, None)
            if self._stat_file(path) is None or (current and current["delete_marker"]):
                return
            if self._locked(current):
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            blob = uuid.uuid4().hex
            old = current["version_id"] if current else NULL_VERSION
            (self._side / "versions" / bucket).mkdir(exist_ok=True)
            with self._write_lock, conn:
                conn.execute("BEGIN")
                conn.execute(
                    "INSERT INTO objects (bucket, key, version_id, is_latest, blob, last_modified) "
                    "VALUES (?,?,?,0,?,?) ON CONFLICT (bucket, key, version_id) "
                    "DO UPDATE SET is_latest=0, blob=excluded.blob",
                    (bucket, key, old, blob, path_mtime_or(os.lstat(path).st_mtime, current)),
                )
                conn.execute(
                    "INSERT INTO objects (bucket, key, version_id, is_latest, delete_marker, "
                    "last_modified) VALUES (?,?,?,1,1,?)",
                    (bucket, key, uuid.uuid4().hex, self._clock()),
                )
                os.replace(path, self._side / "versions" / bucket / blob)
            self._prune_dirs(bucket, path)
            return
        if version_id is None or version_id == NULL_VERSION:
            row = self._row(bucket, key, None if version_id is None else NULL_VERSION)
            if self._locked(row):
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            if row is not None and not row["is_latest"]:
                self._delete_noncurrent(bucket, key, row)
                return
            with self._write_lock, conn:
                conn.execute("BEGIN")
                conn.execute(
                    "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                    (bucket, key, NULL_VERSION),
                )
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            if versioned:
                self._promote(bucket, key)
            self._prune_dirs(bucket, path)
            return
        row = self._row(bucket, key, version_id)
        if row is None:
            return
        if self._locked(row):
            raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
        if not row["is_latest"]:
            self._delete_noncurrent(bucket, key, row)
            return
        with self._write_lock, conn:
            conn.execute("BEGIN")
            conn.execute(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id),
            )
            if not row["delete_marker"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self._promote(bucket, key)
        self._prune_dirs(bucket, path)

    def _delete_noncurrent(self, bucket: str, key: str, row: dict[str, Any]) -> None:
        conn = self._conn()
        with self._write_lock, conn:
            conn.execute("BEGIN")
            conn.execute(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, row["version_id"]),
            )
            if row["blob"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._side / "versions" / bucket / str(row["blob"]))

    def _promote(self, bucket: str, key: str) -> None:
        """After the latest version went away, the newest remaining one becomes current."""
        conn = self._conn()
        found = conn.execute(
            "SELECT version_id, delete_marker, blob FROM objects WHERE bucket=? AND key=? "
            "ORDER BY last_modified DESC LIMIT 1",
            (bucket, key),
        ).fetchone()
        if found is None:
            return
        version, marker, blob = found
        path = self._path(bucket, key, create_dirs=True)
        with self._write_lock, conn:
            conn.execute("BEGIN")
            conn.execute(
                "UPDATE objects SET is_latest=1, blob=NULL WHERE bucket=? AND key=? "
                "AND version_id=?",
                (bucket, key, version),
            )
            if not marker and blob:
                os.replace(self._side / "versions" / bucket / str(blob), path)

    def _prune_dirs(self, bucket: str, path: str) -> None:
        base = self.root / bucket
        parent = Path(path).parent
        while parent != base and base in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            self._safe_dirs.discard(str(parent))
            parent = parent.parent

    # -- attributes ------------------------------------------------------------

    def get_tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """The object's tags."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        tags: dict[str, str] = json.loads(row["tags"]) if row and row["tags"] else {}
        return tags

    def put_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """Replace the object's tag set."""
        version = self._version_for_update(bucket, key, version_id)
        self._upsert_attr(bucket, key, version, "tags", json.dumps(tags) if tags else None)

    def delete_tags(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Remove the object's tags."""
        version = self._version_for_update(bucket, key, version_id)
        self._upsert_attr(bucket, key, version, "tags", None)

    def get_acl(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """The object's canned ACL."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        return (row["acl"] if row else None) or "private"

    def get_grants(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The grants a copy gave the object."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        found = json.loads(row["grants"]) if row and row["grants"] else []
        return tuple(sorted((str(p), str(i)) for p, i in found))

    def put_acl(self, bucket: str, key: str, version_id: str | None, canned: str) -> None:
        """Set the object's canned ACL."""
        version = self._version_for_update(bucket, key, version_id)
        self._upsert_attr(bucket, key, version, "acl", canned)

    def restore(self, bucket: str, key: str, version_id: str | None, days: int, tier: str) -> None:
        """Make an archived object readable for ``days``; others fail as S3 fails them."""
        version, _, _, row = self._resolve(bucket, key, version_id)
        storage_class = (row["storage_class"] if row else None) or "STANDARD"
        if storage_class not in ARCHIVE_CLASSES:
            raise StoreError(
                403,
                "InvalidObjectState",
                f"Restore is not allowed for the object's current storage class {storage_class}",
            )
        until = self._clock() + days * 86400
        self._upsert_attr(bucket, key, version, "restore_until", until)

    def get_retention(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Retention | None:
        """The object's retention, if any."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        if not row or not row["lock_mode"] or row["lock_until"] is None:
            return None
        return Retention(row["lock_mode"], datetime.fromtimestamp(row["lock_until"], UTC))

    def put_retention(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        retention: Retention,
        *,
        bypass_governance: bool = False,
    ) -> None:
        """Set retention; shortening or loosening it follows S3's object-lock rules."""
        version, _, _, row = self._resolve(bucket, key, version_id)
        until = retention.until.timestamp()
        if row and row["lock_mode"] and (row["lock_until"] or 0) > self._clock():
            loosens = until < row["lock_until"] or retention.mode != row["lock_mode"]
            if loosens and (row["lock_mode"] == "COMPLIANCE" or not bypass_governance):
                raise StoreError(
                    403,
                    "AccessDenied",
                    f"{row['lock_mode']} retention cannot be shortened or changed",
                )
        self._write_attr(
            "INSERT INTO objects (bucket, key, version_id, lock_mode, lock_until) "
            "VALUES (?,?,?,?,?) ON CONFLICT (bucket, key, version_id) DO UPDATE SET "
            "lock_mode=excluded.lock_mode, lock_until=excluded.lock_until",
            (bucket, key, version, retention.mode, until),
        )

    def get_legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        """Whether a legal hold is on."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        return bool(row and row["legal_hold"])

    def put_legal_hold(self, bucket: str, key: str, version_id: str | None, on: bool) -> None:
        """Put or lift a legal hold."""
        version = self._version_for_update(bucket, key, version_id)
        self._upsert_attr(bucket, key, version, "legal_hold", int(on))

    def checksum(self, bucket: str, key: str, version_id: str | None, algorithm: str) -> str:
        """The checksum of the content, cached by size and mtime."""
        version, data, info, row = self._resolve(bucket, key, version_id)
        self._readable(bucket, key, row)
        stamp = f"{info.st_size}:{info.st_mtime_ns}"
        cached: dict[str, str] = {}
        if row and row["checksums"] and row["stamp"] == stamp:
            cached = json.loads(row["checksums"])
        if algorithm in cached:
            return cached[algorithm]
        with self._open_data(data) as stream:
            value = checksum_stream(stream, algorithm)
        cached[algorithm] = value
        self._write_attr(
            "INSERT INTO objects (bucket, key, version_id, checksums, stamp) VALUES (?,?,?,?,?) "
            "ON CONFLICT (bucket, key, version_id) DO UPDATE SET checksums=excluded.checksums, "
            "stamp=excluded.stamp, etag=CASE WHEN objects.stamp=excluded.stamp "
            "THEN objects.etag END",
            (bucket, key, version, json.dumps(cached), stamp),
        )
        return value


def checksum_hex_md5(stream: BinaryIO) -> str:
    """The MD5 of a stream in hex: the ETag of a single-part object."""
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def path_mtime_or(default: float, row: dict[str, Any] | None) -> float:
    """When a version was written: its row's time, else ``default``."""
    if row and row["last_modified"]:
        return float(row["last_modified"])
    return default
