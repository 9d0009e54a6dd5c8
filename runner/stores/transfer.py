"""Objects in and out of a store, for `batchctl objects` and `demo init`.

Names and shapes follow the AWS CLI's ``s3`` commands where they overlap (``s3://BUCKET/KEY``
URLs, a SRC folder copied below the destination prefix). Everything given is checked
before the first byte is written: a key that would leave its bucket, a bucket name S3
would refuse, a SRC that is a FIFO, device or socket, a symlink leading out of SRC, or
two files landing on one key are refused together, and nothing is written. A file that
changes while it is read is caught by its checksum, read once while uploading and
again after: its upload is removed and the put refused.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from runner.stores.base import ObjectInfo, ObjectStore, Retention, StoreError
from runner.stores.dirstore.keys import check_key as dir_key_rules

# S3's rules for new buckets (3-63 lowercase letters, digits, '.', '-'; letter or digit
# at both ends), the same the specs use.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_CHUNK = 1024 * 1024


class TransferError(Exception):
    """Bad input or a failed transfer, said so a person can act on it."""


def parse_url(url: str, *, key_required: bool = False) -> tuple[str, str]:
    """(bucket, key or prefix) of ``s3://BUCKET[/KEY]``."""
    if not url.startswith("s3://"):
        raise TransferError(f"{url}: not an s3://BUCKET[/KEY] URL")
    bucket, _, key = url[5:].partition("/")
    check_bucket(bucket)
    if key_required and (not key or key.endswith("/")):
        raise TransferError(f"{url}: names no object (s3://BUCKET/KEY)")
    if key:
        check_key(key.rstrip("/") if not key_required else key)
    return bucket, key


def check_bucket(bucket: str) -> None:
    """Refuse a name S3 would refuse for a bucket."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise TransferError(
            f"{bucket!r} is not a bucket name: 3 to 63 lowercase letters, digits, '.' and "
            "'-', starting and ending with a letter or digit"
        )


def check_key(key: str) -> None:
    """Refuse a key that would leave its bucket on a folder store (on any store: a key
    must mean the same object wherever the campaign runs)."""
    try:
        dir_key_rules(key)
    except StoreError as exc:
        raise TransferError(exc.message) from None


def make_bucket(
    store: ObjectStore, bucket: str, *, versioning: bool = False, object_lock: bool = False
) -> None:
    """Create ``bucket`` once its name is checked (no error if it exists)."""
    check_bucket(bucket)
    store.create_bucket(bucket, versioning=versioning, object_lock=object_lock)


def put_missing(
    store: ObjectStore, objects: Iterable[tuple[str, str, bytes]], *, content_type: str
) -> tuple[int, int]:
    """Write the objects (bucket, key, content) a store lacks; (written, already there)."""
    written = kept = 0
    for bucket, key, body in objects:
        check_key(key)
        try:
            store.head(bucket, key)
        except StoreError:
            store.put(bucket, key, body, content_type=content_type)
            written += 1
        else:
            kept += 1
    return written, kept


# -- put ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One file and the key it becomes."""

    path: Path
    key: str
    size: int


@dataclass
class PutOptions:
    """What `objects put` sets on every object it writes."""

    storage_class: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # guessed from each file's name when None
    legal_hold: bool = False
    retention: Retention | None = None


def _regular(path: Path, shown: str) -> os.stat_result:
    try:
        info = path.stat()
    except OSError as exc:
        raise TransferError(f"{shown}: {exc.strerror or exc}") from None
    if stat.S_ISFIFO(info.st_mode):
        raise TransferError(f"{shown}: a FIFO, not a file: refused (it could block forever)")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        raise TransferError(f"{shown}: a device, not a file: refused")
    if stat.S_ISSOCK(info.st_mode):
        raise TransferError(f"{shown}: a socket, not a file: refused")
    return info


def plan_put(sources: Sequence[str], prefix: str) -> list[Upload]:
    """The files of ``sources`` and their keys under ``prefix``, every one checked.

    A single file goes to ``prefix`` itself unless it ends with ``/`` (then to
    ``prefix`` + its name), as ``aws s3 cp`` does; a folder's files go below
    ``prefix``, by their path relative to the folder.
    """
    uploads: list[Upload] = []
    problems: list[str] = []
    single = len(sources) == 1
    for source in sources:
        path = Path(source)
        try:
            if not path.exists() and not path.is_symlink():
                raise TransferError(f"{source}: no such file or folder")
            if path.is_dir():
                uploads.extend(_folder(path, source, prefix, problems))
                continue
            info = _regular(path, source)
            if single and prefix and not prefix.endswith("/"):
                key = prefix
            else:
                key = _join(prefix, path.name)
            uploads.append(Upload(path, key, info.st_size))
        except TransferError as exc:
            problems.append(str(exc))
    seen: dict[str, Path] = {}
    for upload in uploads:
        try:
            check_key(upload.key)
        except TransferError as exc:
            problems.append(f"{upload.path}: {exc}")
        other = seen.setdefault(upload.key, upload.path)
        if other != upload.path:
            problems.append(f"{other} and {upload.path} would both be {upload.key!r}")
    if problems:
        raise TransferError("; ".join(problems) + "; nothing was written")
    return sorted(uploads, key=lambda u: u.key)


def _join(prefix: str, tail: str) -> str:
    if not prefix:
        return tail
    return prefix + tail if prefix.endswith("/") else f"{prefix}/{tail}"


def _folder(root: Path, shown: str, prefix: str, problems: list[str]) -> Iterator[Upload]:
    real_root = root.resolve()
    visited: set[Path] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        real = here.resolve()
        if real in visited:  # a symlink loop inside SRC: each folder once
            dirs[:] = []
            continue
        visited.add(real)
        if real != real_root and real_root not in real.parents:
            problems.append(f"{here}: a symlink leading out of {shown}: refused")
            dirs[:] = []
            continue
        dirs.sort()
        for name in sorted(files):
            path = here / name
            target = path.resolve()
            if target != real_root and real_root not in target.parents:
                problems.append(f"{path}: a symlink leading out of {shown}: refused")
                continue
            try:
                info = _regular(path, str(path))
            except TransferError as exc:
                problems.append(str(exc))
                continue
            relative = path.relative_to(root).as_posix()
            yield Upload(path, _join(prefix, relative), info.st_size)


class _Hashing(io.RawIOBase):
    """A file read once, its SHA-256 and size taken on the way."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def put_one(store: ObjectStore, bucket: str, upload: Upload, options: PutOptions) -> ObjectInfo:
    """Write one file as an object, checked against a change while it was read."""
    content_type = options.content_type or mimetypes.guess_type(upload.path.name)[0]
    with upload.path.open("rb") as raw:
        reading = _Hashing(raw)
        info = store.put(
            bucket,
            upload.key,
            io.BufferedReader(reading, _CHUNK),
            content_type=content_type,
            metadata=options.metadata or None,
            tags=options.tags or None,
            storage_class=options.storage_class,
        )
    after, size = _sha256(upload.path)
    if after != reading.digest.hexdigest() or size != reading.size:
        where = f"s3://{bucket}/{upload.key}"
        try:
            store.delete(bucket, upload.key, info.version_id)
            fate = f"its upload to {where} was removed"
        except StoreError as exc:
            fate = (
                f"its upload to {where} may mix both contents and could not be removed ({exc.code})"
            )
        raise TransferError(
            f"{upload.path} changed while it was read (its checksum differs): {fate}; put it "
            "again once it is still"
        )
    if options.legal_hold:
        store.put_legal_hold(bucket, upload.key, info.version_id, True)
    if options.retention is not None:
        store.put_retention(bucket, upload.key, info.version_id, options.retention)
    return info


def put_all(
    store: ObjectStore,
    bucket: str,
    uploads: Sequence[Upload],
    options: PutOptions,
    *,
    workers: int = 1,
    done: Callable[[Upload, ObjectInfo | None, str | None], None] | None = None,
) -> list[str]:
    """Write every upload (``workers`` at once); the errors, one line each."""
    if not store.bucket_exists(bucket):
        raise TransferError(
            f"no bucket {bucket}: create it with `batchctl objects mb s3://{bucket}`"
        )
    errors: list[str] = []

    def one(upload: Upload) -> None:
        try:
            info = put_one(store, bucket, upload, options)
        except (TransferError, StoreError, OSError) as exc:
            message = exc.message if isinstance(exc, StoreError) else str(exc)
            errors.append(f"{upload.path}: {message}")
            if done is not None:
                done(upload, None, message)
            return
        if done is not None:
            done(upload, info, None)

    if workers <= 1:
        for upload in uploads:
            one(upload)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, uploads))
    return errors


# -- get ------------------------------------------------------------------------------


def destination(key: str, dest: str | None, cwd: Path) -> Path:
    """Where ``get`` writes: DEST (a file, or a folder to put the key's name in), inside
    the current folder only."""
    name = key.rsplit("/", 1)[-1]
    target = Path(dest) if dest else Path(name)
    if dest and (dest.endswith("/") or (cwd / target).is_dir()):
        target = target / name
    full = (cwd / target).resolve()
    base = cwd.resolve()
    if full != base and base not in full.parents:
        raise TransferError(f"{dest}: outside the current folder: refused")
    if full.exists() and not full.is_file():
        raise TransferError(f"{target}: exists and is not a file")
    return full


def get_one(store: ObjectStore, bucket: str, key: str, version: str | None, path: Path) -> int:
    """Write an object's content to ``path`` (through a temporary file); its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.batchctl-partial")
    size = 0
    try:
        with store.open(bucket, key, version) as stream, partial.open("wb") as out:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                size += len(chunk)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return size


# -- stat -----------------------------------------------------------------------------


def describe(store: ObjectStore, bucket: str, key: str, version: str | None) -> dict[str, Any]:
    """Everything the store knows of one object version (camelCase, for JSON too)."""
    info = store.head(bucket, key, version)
    found: dict[str, Any] = {
        "url": f"s3://{bucket}/{key}",
        "versionId": info.version_id,
        "etag": info.etag,
        "size": info.size,
        "lastModified": _iso(info.last_modified),
        "storageClass": info.storage_class,
        "contentType": info.content_type,
        "metadata": dict(info.metadata),
        "encryption": info.encryption,
        "restore": _restore_state(info),
    }
    found["tags"] = _optional(lambda: store.get_tags(bucket, key, version))
    found["acl"] = _optional(lambda: store.get_acl(bucket, key, version))
    found["grants"] = _optional(
        lambda: [{"permission": p, "grantee": g} for p, g in store.get_grants(bucket, key, version)]
    )
    retention = _optional(lambda: store.get_retention(bucket, key, version))
    found["retention"] = (
        {"mode": retention.mode, "until": _iso(retention.until)}
        if isinstance(retention, Retention)
        else retention
    )
    found["legalHold"] = _optional(lambda: store.get_legal_hold(bucket, key, version))
    versions = []
    for listed in store.list(bucket, key, versions=True):
        if listed.key == key and listed.version_id:
            versions.append(
                {
                    "versionId": listed.version_id,
                    "latest": listed.is_latest,
                    "size": listed.size,
                    "lastModified": _iso(listed.last_modified),
                }
            )
    found["versions"] = versions
    return found


def _optional(read: Callable[[], Any]) -> Any:
    """A read some servers refuse (ACLs without IAM, retention on moto): said, not fatal."""
    try:
        return read()
    except StoreError as exc:
        return {"unavailable": f"{exc.code}: {exc.message}"}


def _restore_state(info: ObjectInfo) -> str | None:
    archived = info.storage_class in ("GLACIER", "DEEP_ARCHIVE", "ARCHIVE")
    if info.restore_until is not None:
        return f"restored until {_iso(info.restore_until)}"
    return "archived, not restored" if archived else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
