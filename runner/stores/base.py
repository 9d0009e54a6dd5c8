"""The object-store protocol the engine's operations run against.

A store speaks S3's object model (buckets, keys, versions, tags, ACLs,
storage classes, object lock, checksums) whatever it sits on. Failures of one
request raise ``StoreError`` with S3's HTTP status and error code, which go
into the completion report as they are. ``session()`` groups the writes of a
chunk of tasks (one transaction in the dir store); stores without such a
notion return a no-op context.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, BinaryIO, Protocol

# Codes that mean "busy or broken for a moment": trying again can help.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
    }
)


class StoreError(Exception):
    """One request failed, as S3 would say it: HTTP status, error code, message.

    ``retryable`` says whether trying again can help (5xx, 429, throttling codes),
    as ``JobServiceError.retryable`` does; ``delay`` is the wait the server asked for.
    """

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str,
        *,
        delay: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(f"{http_status} {code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message
        self.delay = delay
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """Whether trying again can help."""
        if self._retryable is not None:
            return self._retryable
        return self.http_status >= 500 or self.http_status == 429 or self.code in TRANSIENT_CODES


def no_such_key(bucket: str, key: str) -> StoreError:
    """The error for a missing object."""
    return StoreError(404, "NoSuchKey", f"The specified key does not exist: {bucket}/{key}")


def no_such_bucket(bucket: str) -> StoreError:
    """The error for a missing bucket."""
    return StoreError(404, "NoSuchBucket", f"The specified bucket does not exist: {bucket}")


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD (or a listing) says about one object version."""

    bucket: str
    key: str
    version_id: str | None
    size: int
    last_modified: datetime
    storage_class: str = "STANDARD"
    etag: str | None = None
    is_latest: bool = True
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    restore_until: datetime | None = None
    encryption: str | None = None  # server-side encryption (AES256), when the store says


@dataclass(frozen=True)
class CopyOptions:
    """How a copy treats metadata, tags, class, ACL and checksum (S3's copy parameters)."""

    metadata_directive: str = "COPY"
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    tagging_directive: str = "COPY"
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    canned_acl: str | None = None
    checksum_algorithm: str | None = None
    encryption: str | None = None
    grants: tuple[tuple[str, str], ...] = ()  # (permission, canonical user ID): replaces the ACL


@dataclass(frozen=True)
class Retention:
    """Object-lock retention of one object version."""

    mode: str
    until: datetime


ATTRIBUTE_OPERATIONS = frozenset(
    {"tag", "untag", "acl", "legalHold", "hold", "retention", "restore"}
)


class ObjectStore(Protocol):
    """S3's object model; every method raises StoreError for a failed request."""

    # At most this many threads run attribute-only operations (ATTRIBUTE_OPERATIONS)
    # on this store; None means the target's `workers`.
    attribute_threads: int | None

    def session(self, objects: Sequence[tuple[str, str]] = ()) -> AbstractContextManager[None]:
        """Group the writes made inside the block (the dir store commits them once).

        ``objects``, (bucket, key) pairs the block will act on, let a store read ahead.
        """
        ...

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists."""
        ...

    def list_buckets(self) -> list[str]:
        """The names of every bucket, sorted."""
        ...

    def create_bucket(
        self, bucket: str, *, versioning: bool = False, object_lock: bool = False
    ) -> None:
        """Create ``bucket`` (no error if it exists); ``object_lock`` implies versioning."""
        ...

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """Describe one object version (the latest by default)."""
        ...

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """Open an object's content for reading (archived objects must be restored)."""
        ...

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
        """Write an object (a new version in a versioned bucket)."""
        ...

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        dst_bucket: str,
        dst_key: str,
        options: CopyOptions,
    ) -> ObjectInfo:
        """Server-side copy with S3's directives."""
        ...

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Delete an object (a delete marker in a versioned bucket when no version is given)."""
        ...

    def list(
        self, bucket: str, prefix: str = "", *, versions: bool = False
    ) -> Iterator[ObjectInfo]:
        """Objects under ``prefix``; every version when ``versions``."""
        ...

    def get_tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """An object's tag set."""
        ...

    def put_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """Replace an object's tag set."""
        ...

    def delete_tags(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Remove an object's tags."""
        ...

    def get_acl(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """An object's canned ACL."""
        ...

    def get_grants(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The (permission, canonical user ID) grants of an object's ACL, sorted."""
        ...

    def put_acl(self, bucket: str, key: str, version_id: str | None, canned: str) -> None:
        """Set an object's canned ACL."""
        ...

    def restore(self, bucket: str, key: str, version_id: str | None, days: int, tier: str) -> None:
        """Make an archived object readable for ``days``."""
        ...

    def get_retention(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Retention | None:
        """An object's retention, if any."""
        ...

    def put_retention(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        retention: Retention,
        *,
        bypass_governance: bool = False,
    ) -> None:
        """Set object-lock retention."""
        ...

    def get_legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        """Whether a legal hold is on."""
        ...

    def put_legal_hold(self, bucket: str, key: str, version_id: str | None, on: bool) -> None:
        """Put or lift a legal hold."""
        ...

    def checksum(self, bucket: str, key: str, version_id: str | None, algorithm: str) -> str:
        """The object's checksum, base64 of the big-endian digest as S3 prints it."""
        ...

    def close(self) -> None:
        """Release connections and handles."""
        ...
