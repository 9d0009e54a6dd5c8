"""Manifests to tasks: CSV, inventory reports and generated listings, streamed.

A manifest is never held in memory: rows are read one at a time and handed
out in batches. Keys stay as the manifest wrote them (URL-encoded) because the
completion report must show them that way; tasks decode them when they run.
A manifest that cannot be read fails the job with a reason that names the
object and, for a bad row, its line.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import json
import re
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from typing import IO, BinaryIO, cast

from runner.spec.models import CsvManifest, GenerateManifest, InventoryManifest, Manifest
from runner.stores.base import ObjectInfo, ObjectStore, StoreError

TaskRef = tuple[str, str, str | None]


class ManifestError(Exception):
    """The manifest cannot be used; the job fails with this code and reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def _strip(etag: str | None) -> str | None:
    return etag.strip().strip('"') if etag else None


def _check_etag(
    store: ObjectStore, bucket: str, key: str, version: str | None, etag: str | None
) -> None:
    try:
        info = store.head(bucket, key, version)
    except StoreError as exc:
        raise ManifestError(
            "ManifestNotFound" if exc.http_status == 404 else "ManifestReadFailed",
            f"cannot read manifest s3://{bucket}/{key}: {exc.code} {exc.message}",
        ) from exc
    if etag and _strip(info.etag) != _strip(etag):
        raise ManifestError(
            "ManifestETagMismatch",
            f"manifest s3://{bucket}/{key} has ETag {info.etag}, the job expects {_strip(etag)}",
        )


def _open(store: ObjectStore, bucket: str, key: str, version: str | None = None) -> BinaryIO:
    try:
        return store.open(bucket, key, version)
    except StoreError as exc:
        raise ManifestError(
            "ManifestNotFound" if exc.http_status == 404 else "ManifestReadFailed",
            f"cannot read manifest s3://{bucket}/{key}: {exc.code} {exc.message}",
        ) from exc


def read_csv_rows(stream: BinaryIO, where: str, columns: list[str]) -> Iterator[TaskRef]:
    """Rows of a CSV manifest in the column order ``columns`` (Bucket, Key[, VersionId])."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        width = len(columns)
        bucket_at, key_at = columns.index("Bucket"), columns.index("Key")
        version_at = columns.index("VersionId") if "VersionId" in columns else None
        blank_at = None
        for line, row in enumerate(csv.reader(text), start=1):
            if not row or row == [""]:
                blank_at = blank_at or line
                continue
            if blank_at is not None:
                raise ManifestError(
                    "InvalidManifestContent", f"{where} line {blank_at}: blank line"
                )
            if len(row) != width:
                raise ManifestError(
                    "InvalidManifestContent",
                    f"{where} line {line}: expected {width} fields ({', '.join(columns)}), "
                    f"got {len(row)}",
                )
            bucket, key = row[bucket_at].strip(), row[key_at]
            if not bucket or not key:
                raise ManifestError(
                    "InvalidManifestContent", f"{where} line {line}: empty bucket or key"
                )
            version = row[version_at] if version_at is not None else None
            yield bucket, key, version or None
    except UnicodeDecodeError as exc:
        raise ManifestError("InvalidManifestContent", f"{where}: not UTF-8 ({exc.reason})") from exc
    except csv.Error as exc:
        raise ManifestError("InvalidManifestContent", f"{where}: {exc}") from exc
    finally:
        text.detach()


def csv_tasks(store: ObjectStore, manifest: CsvManifest) -> Iterator[TaskRef]:
    """Tasks of a CSV manifest, its ETag checked when pinned."""
    _check_etag(store, manifest.bucket, manifest.key, manifest.version_id, manifest.etag)
    where = f"manifest s3://{manifest.bucket}/{manifest.key}"
    with _open(store, manifest.bucket, manifest.key, manifest.version_id) as stream:
        yield from read_csv_rows(stream, where, list(manifest.fields))


def _arn_bucket(value: str) -> str:
    # Inventory manifests name their bucket as an ARN (arn:aws:s3:::bucket) or plainly.
    return value.rsplit(":", 1)[-1] if value.startswith(("arn:", "qcs:")) else value


def inventory_tasks(store: ObjectStore, manifest: InventoryManifest) -> Iterator[TaskRef]:
    """Tasks of an inventory report: its manifest.json and the (gzipped) CSV files it lists."""
    _check_etag(store, manifest.bucket, manifest.key, None, manifest.etag)
    where = f"inventory s3://{manifest.bucket}/{manifest.key}"
    with _open(store, manifest.bucket, manifest.key) as stream:
        try:
            document = json.loads(stream.read())
            schema = [c.strip() for c in document["fileSchema"].split(",")]
            files = [f["key"] for f in document["files"]]
            fmt = document.get("fileFormat", "CSV")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(
                "InvalidManifestContent", f"{where}: not an inventory manifest"
            ) from exc
    if fmt != "CSV":
        raise ManifestError("InvalidManifestContent", f"{where}: fileFormat {fmt} is not CSV")
    if "Bucket" not in schema or "Key" not in schema:
        raise ManifestError("InvalidManifestContent", f"{where}: fileSchema lacks Bucket or Key")
    data_bucket = _arn_bucket(str(document.get("destinationBucket") or manifest.bucket))
    bucket_at, key_at = schema.index("Bucket"), schema.index("Key")
    version_at = schema.index("VersionId") if "VersionId" in schema else None
    latest_at = schema.index("IsLatest") if "IsLatest" in schema else None
    for data_key in files:
        with _open(store, data_bucket, data_key) as raw:
            body = cast(IO[bytes], gzip.GzipFile(fileobj=raw) if data_key.endswith(".gz") else raw)
            text = io.TextIOWrapper(body, encoding="utf-8", newline="")
            try:
                for line, row in enumerate(csv.reader(text), start=1):
                    if not row:
                        continue
                    if len(row) < len(schema):
                        raise ManifestError(
                            "InvalidManifestContent",
                            f"inventory file s3://{data_bucket}/{data_key} line {line}: "
                            f"expected {len(schema)} fields, got {len(row)}",
                        )
                    if latest_at is not None and version_at is None and row[latest_at] == "false":
                        continue
                    # Inventory reports encode keys as HTML forms do ('+' for a space);
                    # tasks decode with unquote, so the key is re-encoded here once.
                    key = urllib.parse.quote(urllib.parse.unquote_plus(row[key_at]), safe="/")
                    version = row[version_at] if version_at is not None else None
                    yield row[bucket_at], key, version or None
            except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
                raise ManifestError(
                    "InvalidManifestContent",
                    f"inventory file s3://{data_bucket}/{data_key}: {exc}",
                ) from exc
            finally:
                text.detach()


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A key glob as a regex: `*` and `?` stay in one segment, `**` crosses segments."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape("[")
                i += 1
            else:
                out += fnmatch.translate(pattern[i : end + 1])[4:-3]
                i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z", re.S)


def matches(info: ObjectInfo, spec: GenerateManifest, pattern: re.Pattern[str] | None) -> bool:
    f = spec.filters
    if pattern is not None and not pattern.match(info.key):
        return False
    # `lastRun` is resolved to a time when the job is created; unresolved, it filters nothing
    # out (the first run of a schedule takes everything).
    after = f.created_after if isinstance(f.created_after, datetime) else None
    if after and info.last_modified <= after:
        return False
    if f.created_before and info.last_modified >= f.created_before:
        return False
    if f.min_size is not None and info.size < f.min_size:
        return False
    if f.max_size is not None and info.size > f.max_size:
        return False
    return not (f.storage_classes and info.storage_class not in f.storage_classes)


def generated_tasks(store: ObjectStore, spec: GenerateManifest) -> Iterator[TaskRef]:
    """Tasks from listing a bucket with the spec's filters."""
    pattern = glob_regex(spec.filters.key_matches) if spec.filters.key_matches else None
    try:
        for info in store.list(spec.bucket, spec.prefix or "", versions=spec.versions == "all"):
            if matches(info, spec, pattern):
                version = info.version_id if spec.versions == "all" else None
                yield info.bucket, urllib.parse.quote(info.key, safe="/"), version
    except StoreError as exc:
        raise ManifestError(
            "ManifestGenerationFailed", f"cannot list s3://{spec.bucket}: {exc.code} {exc.message}"
        ) from exc


def manifest_tasks(store: ObjectStore, manifest: Manifest) -> Iterator[TaskRef]:
    """The tasks of any manifest kind the engine reads."""
    if manifest.csv is not None:
        return csv_tasks(store, manifest.csv)
    if manifest.inventory is not None:
        return inventory_tasks(store, manifest.inventory)
    if manifest.generate is not None:
        return generated_tasks(store, manifest.generate)
    raise ManifestError("InvalidManifest", "a repository manifest must be uploaded first")
