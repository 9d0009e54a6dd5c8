"""``DirStore``: the object-store operations of the embedded ``dir://`` store."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
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
    no_such_key,
)
from runner.stores.checksums import checksum_stream
from runner.stores.dirstore.keys import Folders, check_bucket_name, open_data, stat_file
from runner.stores.dirstore.sidecar import NULL_VERSION, SIDECAR, Row, Sidecar
from runner.stores.dirstore.versions import Versions

_ACCESS_DENIED_LOCK = "Access Denied because object protected by object lock"


def _now() -> float:
    return time.time()


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def checksum_hex_md5(stream: BinaryIO) -> str:
    """The MD5 of a stream in hex: the ETag of a single-part object."""
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _json_or_none(value: object) -> str | None:
    return json.dumps(value) if value else None


class DirStore:
    """An object store on a local folder (see the package docstring)."""

    # Attribute-only operations here are pure Python and SQLite work under the GIL:
    # more threads only add contention (bench/RESULTS.md), so they run on one.
    attribute_threads: int | None = 1

    def __init__(self, root: str | Path, *, clock: Any = _now) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        side = self.root / SIDECAR
        (side / "versions").mkdir(parents=True, exist_ok=True)
        (side / "tmp").mkdir(parents=True, exist_ok=True)
        self._tmp = side / "tmp"
        self._folders = Folders(self.root)
        self._sidecar = Sidecar(side)
        self._versions = Versions(side / "versions", self._sidecar, self._folders)
        self._clock = clock
        self._tags_encoded: tuple[dict[str, str], str | None] | None = None
        # This thread's read-ahead of latest versions (see session); a data write drops it,
        # and each entry serves once.
        self._ahead = threading.local()

    def session(self, objects: Sequence[tuple[str, str]] = ()) -> AbstractContextManager[None]:
        """Buffer attribute writes made in the block; commit them once at its end.

        The latest versions of ``objects`` are looked up at once, for the attribute writes
        of the block (one query a chunk instead of one a task).
        """
        return self._session(objects)

    @contextlib.contextmanager
    def _session(self, objects: Sequence[tuple[str, str]]) -> Iterator[None]:
        with self._sidecar.session():
            if objects:
                self._ahead.known = self._sidecar.latest_of(objects)
            try:
                yield
            finally:
                self._ahead.known = None

    def close(self) -> None:
        """Close every thread's connection to the sidecar."""
        self._sidecar.close()

    # -- resolving versions ------------------------------------------------------

    def _resolve(
        self, bucket: str, key: str, version_id: str | None
    ) -> tuple[str, str | Path, os.stat_result, Row | None]:
        """The version id, data path, file status and row of an existing object version."""
        path = self._folders.path(bucket, key)
        if version_id is None or version_id == NULL_VERSION:
            row = self._sidecar.row(bucket, key, version_id)
            if row is not None and row["delete_marker"]:
                raise no_such_key(bucket, key)
            if row is not None and not row["is_latest"]:
                blob = self._versions.blob(bucket, row["blob"])
                info = stat_file(blob)
                if info is None:
                    raise no_such_key(bucket, key)
                return NULL_VERSION, blob, info, row
            info = stat_file(path)
            if info is None:
                raise no_such_key(bucket, key)
            return (row["version_id"] if row else NULL_VERSION), path, info, row
        row = self._sidecar.row(bucket, key, version_id)
        if row is None or row["delete_marker"]:
            raise StoreError(404, "NoSuchVersion", f"The specified version does not exist: {key}")
        data: str | Path = path if row["is_latest"] else self._versions.blob(bucket, row["blob"])
        info = stat_file(data)
        if info is None:
            raise no_such_key(bucket, key)
        return version_id, data, info, row

    def _version_for_update(self, bucket: str, key: str, version_id: str | None) -> str:
        """The version an attribute write applies to; the lean path of the bulk operations."""
        if version_id is not None:
            return self._resolve(bucket, key, version_id)[0]
        path = self._folders.path(bucket, key)
        known: dict[tuple[str, str], tuple[str, bool] | None] | None = getattr(
            self._ahead, "known", None
        )
        if known is not None and (bucket, key) in known:
            found = known.pop((bucket, key))
        else:
            found = self._sidecar.latest(bucket, key)
        if found is not None and found[1]:
            raise no_such_key(bucket, key)
        if stat_file(path) is None:
            raise no_such_key(bucket, key)
        return found[0] if found is not None else NULL_VERSION

    def _locked(self, row: Row | None) -> bool:
        if row is None:
            return False
        until = row["lock_until"]
        return bool(row["legal_hold"]) or (until is not None and until > self._clock())

    def _info(
        self, bucket: str, key: str, version: str, info: os.stat_result, row: Row | None
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
            self._folders.bucket_dir(bucket)
        except StoreError:
            return False
        return True

    def list_buckets(self) -> builtins.list[str]:
        """Every bucket folder (the sidecar's folder starts with a dot: never a bucket)."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in os.scandir(self.root)
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
        )

    def create_bucket(
        self, bucket: str, *, versioning: bool = False, object_lock: bool = False
    ) -> None:
        """Create the bucket folder (and record its versioning); object lock needs no setup."""
        check_bucket_name(bucket)
        (self.root / bucket).mkdir(exist_ok=True)
        self._sidecar.set_versioning(bucket, versioning or object_lock)

    # -- reading -------------------------------------------------------------

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """Describe one object version, with its ETag (MD5, cached by size and mtime)."""
        version, data, info, row = self._resolve(bucket, key, version_id)
        found = self._info(bucket, key, version, info, row)
        stamp = f"{info.st_size}:{info.st_mtime_ns}"
        etag = row["etag"] if row and row["stamp"] == stamp else None
        if etag is None:
            with open_data(data) as stream:
                etag = checksum_hex_md5(stream)
            # Outside any session: a cache entry need not wait for the block's end.
            with self._sidecar.transaction() as conn:
                conn.execute(
                    "INSERT INTO objects (bucket, key, version_id, etag, stamp) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (bucket, key, version_id) DO UPDATE SET etag=excluded.etag, "
                    "stamp=excluded.stamp",
                    (bucket, key, version, etag, stamp),
                )
        return ObjectInfo(**{**found.__dict__, "etag": etag})

    def _readable(self, bucket: str, key: str, row: Row | None) -> None:
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
        return open_data(data)

    def list(
        self, bucket: str, prefix: str = "", *, versions: bool = False
    ) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (folders walked in name order)."""
        base = Path(self._folders.bucket_dir(bucket))
        folder, _, start = prefix.rpartition("/")
        top = base / folder if folder else base
        if folder:
            try:
                self._folders.path(bucket, folder + "/x")
            except StoreError:
                return
        batch: builtins.list[tuple[str, os.stat_result]] = []
        for key, info in _walk(top, folder, start):
            batch.append((key, info))
            if len(batch) >= 500:
                yield from self._listed(bucket, batch)
                batch = []
        yield from self._listed(bucket, batch)
        if versions:
            for row, info in self._versions.listed(bucket, prefix):
                yield self._info(bucket, row["key"], row["version_id"], info, row)

    def _listed(
        self, bucket: str, batch: builtins.list[tuple[str, os.stat_result]]
    ) -> Iterator[ObjectInfo]:
        if not batch:
            return
        rows = self._sidecar.latest_rows(bucket, (k for k, _ in batch))
        for key, info in batch:
            row = rows.get(key)
            version = row["version_id"] if row else NULL_VERSION
            yield self._info(bucket, key, version, info, row)

    # -- writing data ----------------------------------------------------------

    def _write_file(self, body: bytes | IO[bytes] | str | Path) -> Path:
        """Write ``body`` to a temporary file beside the store and return it."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(body, bytes):
                    out.write(body)
                elif isinstance(body, str | Path):
                    with open_data(body) as source:
                        shutil.copyfileobj(source, out, 1 << 20)
                else:
                    shutil.copyfileobj(body, out, 1 << 20)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return Path(tmp)

    def _install(self, bucket: str, key: str, tmp: Path, attrs: dict[str, Any]) -> ObjectInfo:
        """Make ``tmp`` the current version of ``key``, keeping or refusing the old one."""
        self._ahead.known = None  # versions change: what was read ahead may be stale
        path = self._folders.path(bucket, key, create_dirs=True)
        if not self._sidecar.versioning(bucket):
            return self._install_unversioned(bucket, key, path, tmp, attrs)
        try:
            current = self._sidecar.row(bucket, key, None)
            exists = stat_file(path) is not None
            if exists and self._locked(current):
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            version = uuid.uuid4().hex
            with self._sidecar.transaction() as conn:
                if exists:
                    self._versions.set_aside(conn, bucket, key, path, current)
                elif current is not None:
                    conn.execute(
                        "UPDATE objects SET is_latest=0 WHERE bucket=? AND key=? AND is_latest=1",
                        (bucket, key),
                    )
                columns = ["bucket", "key", "version_id", "is_latest", "last_modified", *attrs]
                values = [bucket, key, version, 1, self._clock(), *attrs.values()]
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
        return self._info(
            bucket, key, version, os.lstat(path), self._sidecar.row(bucket, key, version)
        )

    def _install_unversioned(
        self, bucket: str, key: str, path: str, tmp: Path, attrs: dict[str, Any]
    ) -> ObjectInfo:
        """Replace the file, then its row (buffered with the session's writes).

        A crash between the two leaves the new content with the old attributes;
        the task that wrote it was not recorded, so it runs again and mends that.
        """
        try:
            hold, until = self._sidecar.lock_of(bucket, key, NULL_VERSION)
            locked = hold or (until is not None and until > self._clock())
            if locked and stat_file(path) is not None:
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
        self._sidecar.write(
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
        self._folders.path(bucket, key)
        tmp = self._write_file(body)
        attrs: dict[str, Any] = {
            "content_type": content_type,
            "metadata": _json_or_none(metadata),
            "tags": _json_or_none(tags),
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
        self._folders.path(dst_bucket, dst_key)
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
        tmp = self._write_file(data)
        checksums = None
        if options.checksum_algorithm:
            with open_data(tmp) as stream:
                value = checksum_stream(stream, options.checksum_algorithm)
            checksums = json.dumps({options.checksum_algorithm: value})
        attrs: dict[str, Any] = {
            "content_type": content_type,
            "metadata": _json_or_none(metadata),
            "tags": _json_or_none(tags),
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
        self._ahead.known = None  # versions change: what was read ahead may be stale
        path = self._folders.path(bucket, key)
        versioned = self._sidecar.versioning(bucket)
        if version_id is None and versioned:
            # A versioned delete keeps the object as a noncurrent version behind a marker.
            current = self._sidecar.row(bucket, key, None)
            if stat_file(path) is None or (current and current["delete_marker"]):
                return
            if self._locked(current):
                raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
            with self._sidecar.transaction() as conn:
                conn.execute(
                    "INSERT INTO objects (bucket, key, version_id, is_latest, delete_marker, "
                    "last_modified) VALUES (?,?,?,1,1,?)",
                    (bucket, key, uuid.uuid4().hex, self._clock()),
                )
                # The file moves last: a failed write leaves it where it was.
                self._versions.set_aside(conn, bucket, key, path, current)
            self._folders.prune(bucket, path)
            return
        if version_id is None or version_id == NULL_VERSION:
            row = self._sidecar.row(bucket, key, None if version_id is None else NULL_VERSION)
        else:
            row = self._sidecar.row(bucket, key, version_id)
            if row is None:
                return
        if self._locked(row):
            raise StoreError(403, "AccessDenied", _ACCESS_DENIED_LOCK)
        if row is not None and not row["is_latest"]:
            self._versions.delete(bucket, key, row)
            return
        with self._sidecar.transaction() as conn:
            conn.execute(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id or NULL_VERSION),
            )
            if row is None or not row["delete_marker"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        if versioned or (version_id is not None and version_id != NULL_VERSION):
            self._versions.promote(bucket, key)
        self._folders.prune(bucket, path)

    # -- attributes ------------------------------------------------------------

    def get_tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """The object's tags."""
        _, _, _, row = self._resolve(bucket, key, version_id)
        tags: dict[str, str] = json.loads(row["tags"]) if row and row["tags"] else {}
        return tags

    def put_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """Replace the object's tag set."""
        version = self._version_for_update(bucket, key, version_id)
        # A tag job puts the same tag set on every object: encode it once.
        last = self._tags_encoded
        if last is None or last[0] != tags:  # equal, not identical: a caller may reuse a dict
            last = self._tags_encoded = (dict(tags), _json_or_none(tags))
        self._sidecar.upsert(bucket, key, version, "tags", last[1])

    def delete_tags(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Remove the object's tags."""
        version = self._version_for_update(bucket, key, version_id)
        self._sidecar.upsert(bucket, key, version, "tags", None)

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
        self._sidecar.upsert(bucket, key, version, "acl", canned)

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
        self._sidecar.upsert(bucket, key, version, "restore_until", until)

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
        self._sidecar.write(
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
        self._sidecar.upsert(bucket, key, version, "legal_hold", int(on))

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
        with open_data(data) as stream:
            value = checksum_stream(stream, algorithm)
        cached[algorithm] = value
        self._sidecar.write(
            "INSERT INTO objects (bucket, key, version_id, checksums, stamp) VALUES (?,?,?,?,?) "
            "ON CONFLICT (bucket, key, version_id) DO UPDATE SET checksums=excluded.checksums, "
            "stamp=excluded.stamp, etag=CASE WHEN objects.stamp=excluded.stamp "
            "THEN objects.etag END",
            (bucket, key, version, json.dumps(cached), stamp),
        )
        return value


def _walk(top: Path, folder: str, start: str) -> Iterator[tuple[str, os.stat_result]]:
    """Files below ``top`` in key order (names starting with ``start`` at the top only)."""
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
