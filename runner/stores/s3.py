"""The ``s3`` object store: the engine on any S3-compatible endpoint, through boto3.

AWS, COS's S3 endpoint, MinIO, Ceph and SeaweedFS all work: every operation is
S3's own call (copy_object with directives, tagging, ACL, restore, object-lock
retention and legal hold, versions, checksums). Copies above 5 GB fall back to
a managed multipart copy. The connection pool is sized to the engine's workers,
and botocore's adaptive retry mode absorbs throttling (503 SlowDown) and
dropped connections without failing tasks. A request that still fails becomes
a ``StoreError`` with S3's status and code, which the report shows.
"""

from __future__ import annotations

import contextlib
import io
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, TypeVar, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from runner.stores.base import CopyOptions, ObjectInfo, Retention, StoreError
from runner.stores.checksums import checksum_stream
from runner.stores.s3fast import Fallback, FastS3, copy_headers, usable

T = TypeVar("T")

# Error codes S3 answers with that are not in the HTTP status they come with.
_GONE = {"NoSuchKey", "NoSuchVersion", "NotFound", "404"}
_PUBLIC_READ = "http://acs.amazonaws.com/groups/global/AllUsers"
_HEADERS = {
    "Cache-Control": "CacheControl",
    "Content-Disposition": "ContentDisposition",
    "Content-Encoding": "ContentEncoding",
    "Content-Language": "ContentLanguage",
}
_MAX_COPY = 5 * 1024**3


def _store_error(exc: Exception) -> StoreError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
        code = str(error.get("Code") or status)
        if code == "404" or (status == 404 and code in _GONE):
            code = "NoSuchKey" if code in ("404", "NotFound") else code
        return StoreError(status, code, str(error.get("Message") or code))
    if isinstance(exc, ParamValidationError):
        return StoreError(400, "InvalidArgument", str(exc).replace("\n", " "))
    return StoreError(503, "ServiceUnavailable", f"{type(exc).__name__}: {exc}")


class _Body(io.RawIOBase):
    """A streaming GET body as a raw file, so it can be buffered and decoded."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data: bytes = self._body.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


# COS refuses path-style requests for buckets created since 2024-01-01 (its "bucket domain
# security" notice): its own hosts get virtual-hosted requests. Everything else (AWS, MinIO,
# SeaweedFS, a server on 127.0.0.1) gets path-style, which works without wildcard DNS.
_VIRTUAL_ONLY = (".myqcloud.com", ".tencentcos.cn")


def addressing_style(endpoint_url: str | None) -> str:
    """``virtual`` for endpoints that refuse path-style requests (COS), else ``path``."""
    host = urllib.parse.urlsplit(endpoint_url or "").hostname or ""
    return "virtual" if host.endswith(_VIRTUAL_ONLY) else "path"


class S3ObjectStore:
    """An object store on an S3 endpoint."""

    attribute_threads: int | None = None  # network-bound: every worker helps

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        *,
        profile: str | None = None,
        pool: int = 16,
        max_attempts: int = 10,
        credentials: dict[str, str] | None = None,
        verify: bool | str | None = None,
    ) -> None:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        if verify is None:  # AWS_CA_BUNDLE, or the profile's ca_bundle, as botocore reads them
            verify = session._session.get_config_variable("ca_bundle") or None
        config = Config(
            max_pool_connections=max(10, pool + 4),
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            s3={"addressing_style": addressing_style(endpoint_url)},
            connect_timeout=10,
            read_timeout=120,
            tcp_keepalive=True,
            # Per-request CPU is the bound on one machine (bench/RESULTS.md): botocore's
            # own checks of parameters the engine built itself, and request checksums
            # S3 does not require for these calls, cost more than they protect here.
            parameter_validation=False,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=config,
            verify=verify,
            **(credentials or {}),
        )
        self.region = region
        # The credential chain is walked only without keys given: it may end at the
        # instance metadata service, which is a network call.
        self._session_credentials: Any = None if credentials else session.get_credentials()
        self._static: tuple[str, str, str | None] | None = None
        if credentials:
            self._static = (
                credentials["aws_access_key_id"],
                credentials["aws_secret_access_key"],
                credentials.get("aws_session_token"),
            )
        # The fast path speaks path-style only, and only where no proxy applies
        # (runner/stores/s3fast.py); it verifies TLS as the client above does.
        self.fast: FastS3 | None = None
        path_style = addressing_style(endpoint_url) == "path"
        has_keys = self._static is not None or self._session_credentials is not None
        if path_style and has_keys and usable(endpoint_url, region):
            self.fast = FastS3(
                endpoint_url, region, self._credentials, max_attempts=max_attempts, verify=verify
            )

    def _credentials(self) -> tuple[str, str, str | None]:
        if self._static is not None:
            return self._static
        frozen = self._session_credentials.get_frozen_credentials()
        return (str(frozen.access_key), str(frozen.secret_key), frozen.token)

    def _call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**{k: v for k, v in kwargs.items() if v is not None})
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc

    def session(self, objects: Sequence[tuple[str, str]] = ()) -> AbstractContextManager[None]:
        """Nothing to group: every S3 call stands alone."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Close the connection pools."""
        if self.fast is not None:
            self.fast.close()
        with contextlib.suppress(Exception):
            self.client.close()

    # -- buckets -------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        """HEAD the bucket: False only when S3 says there is none; StoreError otherwise.

        A 403 or a throttled answer says nothing about the bucket: reporting it as
        missing would fail a job with a misleading "no such bucket".
        """
        try:
            self.client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            error = _store_error(exc)
            if error.http_status == 404 or error.code in ("NoSuchBucket", "NotFound"):
                return False
            raise error from exc
        return True

    def list_buckets(self) -> list[str]:
        """ListBuckets: every bucket of these credentials, sorted."""
        answer = self._call(self.client.list_buckets)
        return sorted(str(b["Name"]) for b in answer.get("Buckets", []))

    def create_bucket(
        self, bucket: str, *, versioning: bool = False, object_lock: bool = False
    ) -> None:
        """Create the bucket (no error if it is ours already)."""
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise _store_error(exc) from exc
        if versioning and not object_lock:
            self._call(
                self.client.put_bucket_versioning,
                Bucket=bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )

    # -- reading -------------------------------------------------------------

    def _info(self, bucket: str, key: str, head: dict[str, Any]) -> ObjectInfo:
        restore = head.get("Restore") or ""
        until = None
        if 'ongoing-request="false"' in restore and "expiry-date=" in restore:
            text = restore.split('expiry-date="', 1)[1].split('"', 1)[0]
            with contextlib.suppress(ValueError):
                until = datetime.strptime(text, "%a, %d %b %Y %H:%M:%S %Z").replace(tzinfo=UTC)
        metadata = dict(head.get("Metadata") or {})
        for header, field in _HEADERS.items():
            if head.get(field):
                metadata[header] = head[field]
        return ObjectInfo(
            bucket=bucket,
            key=key,
            version_id=head.get("VersionId")
            if head.get("VersionId") not in (None, "null")
            else None,
            size=int(head.get("ContentLength") or head.get("Size") or 0),
            last_modified=head["LastModified"],
            storage_class=head.get("StorageClass") or "STANDARD",
            etag=str(head.get("ETag", "")).strip('"') or None,
            is_latest=bool(head.get("IsLatest", True)),
            content_type=head.get("ContentType"),
            metadata=metadata,
            restore_until=until,
            encryption=head.get("ServerSideEncryption"),
        )

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """HEAD one object version."""
        try:
            found = self._call(
                self.client.head_object, Bucket=bucket, Key=key, VersionId=version_id
            )
        except StoreError as exc:
            # A HEAD answer has no body, so a missing bucket looks like a missing key.
            if exc.http_status == 404 and not self.bucket_exists(bucket):
                raise StoreError(404, "NoSuchBucket", f"no bucket {bucket}") from exc
            raise
        return self._info(bucket, key, found)

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """GET the object, streamed."""
        found = self._call(self.client.get_object, Bucket=bucket, Key=key, VersionId=version_id)
        return cast(BinaryIO, io.BufferedReader(_Body(found["Body"]), buffer_size=1 << 20))

    def list(
        self, bucket: str, prefix: str = "", *, versions: bool = False
    ) -> Iterator[ObjectInfo]:
        """Every object (or version) under ``prefix``, page by page."""
        try:
            if versions:
                pages = self.client.get_paginator("list_object_versions").paginate(
                    Bucket=bucket, Prefix=prefix
                )
                for page in pages:
                    for item in page.get("Versions", []):
                        yield self._info(bucket, item["Key"], item)
                return
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield self._info(bucket, item["Key"], item)
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc

    # -- writing ---------------------------------------------------------------

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
        """PUT an object (a managed, multipart upload for file bodies)."""
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = metadata
        if tags:
            extra["Tagging"] = urllib.parse.urlencode(tags)
        if storage_class:
            extra["StorageClass"] = storage_class
        stream = io.BytesIO(body) if isinstance(body, bytes) else body
        try:
            self.client.upload_fileobj(stream, bucket, key, ExtraArgs=extra or None)
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc
        return self.head(bucket, key)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        dst_bucket: str,
        dst_key: str,
        options: CopyOptions,
    ) -> ObjectInfo:
        """Server-side copy; a managed multipart copy above 5 GB."""
        source: dict[str, str] = {"Bucket": src_bucket, "Key": src_key}
        if src_version:
            source["VersionId"] = src_version
        extra: dict[str, Any] = {
            "MetadataDirective": options.metadata_directive,
            "TaggingDirective": options.tagging_directive,
        }
        if options.metadata_directive == "REPLACE":
            extra["Metadata"] = dict(options.metadata)
            if options.content_type:
                extra["ContentType"] = options.content_type
            for header, value in options.headers.items():
                if header in _HEADERS:
                    extra[_HEADERS[header]] = value
                elif header == "Expires":
                    extra["Expires"] = datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT")
        if options.tagging_directive == "REPLACE":
            extra["Tagging"] = urllib.parse.urlencode(options.tags)
        if options.storage_class:
            extra["StorageClass"] = options.storage_class
        if options.canned_acl:
            extra["ACL"] = options.canned_acl
        if options.checksum_algorithm:
            extra["ChecksumAlgorithm"] = options.checksum_algorithm
        if options.encryption:
            extra["ServerSideEncryption"] = options.encryption
        for permission, grantee in options.grants:  # GrantRead, GrantReadACP, GrantFullControl…
            name = ("Grant" + permission.title().replace("_", "")).replace("Acp", "ACP")
            given = f'id="{grantee}"'
            extra[name] = f"{extra[name]}, {given}" if name in extra else given
        headers = copy_headers(extra) if self.fast is not None else None
        if self.fast is not None and headers is not None:
            try:
                version = self.fast.copy(
                    src_bucket, src_key, src_version, dst_bucket, dst_key, headers
                )
            except Fallback:
                pass  # boto3 makes this call below
            except StoreError as exc:
                if "maximum allowable size" not in exc.message:
                    raise
                return self._multipart_copy(source, dst_bucket, dst_key, extra)
            else:
                return ObjectInfo(dst_bucket, dst_key, version, 0, datetime.now(UTC))
        try:
            found = self.client.copy_object(
                Bucket=dst_bucket, Key=dst_key, CopySource=source, **extra
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "maximum allowable size" not in message and "5368709120" not in message:
                raise _store_error(exc) from exc
            return self._multipart_copy(source, dst_bucket, dst_key, extra)
        except BotoCoreError as exc:
            raise _store_error(exc) from exc
        version = found.get("VersionId")
        return ObjectInfo(
            bucket=dst_bucket,
            key=dst_key,
            version_id=version if version not in (None, "null") else None,
            size=0,
            last_modified=found.get("CopyObjectResult", {}).get("LastModified")
            or datetime.now(UTC),
            etag=str(found.get("CopyObjectResult", {}).get("ETag", "")).strip('"') or None,
        )

    def _multipart_copy(
        self, source: dict[str, str], bucket: str, key: str, extra: dict[str, Any]
    ) -> ObjectInfo:
        # The managed copy carries metadata and tags itself; directives do not apply.
        extra = {k: v for k, v in extra.items() if not k.endswith("Directive")}
        try:
            self.client.copy(
                source,
                bucket,
                key,
                ExtraArgs=extra or None,
                Config=TransferConfig(multipart_threshold=_MAX_COPY // 2),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(exc) from exc
        return self.head(bucket, key)

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """DELETE (a delete marker in a versioned bucket when no version is given)."""
        self._call(self.client.delete_object, Bucket=bucket, Key=key, VersionId=version_id)

    # -- attributes ------------------------------------------------------------

    def get_tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """GET ?tagging."""
        found = self._call(
            self.client.get_object_tagging, Bucket=bucket, Key=key, VersionId=version_id
        )
        return {t["Key"]: t["Value"] for t in found.get("TagSet", [])}

    def put_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """PUT ?tagging: replace the tag set."""
        if self.fast is not None:
            try:
                self.fast.put_tags(bucket, key, version_id, tags)
                return
            except Fallback:
                pass  # boto3 makes this call below
        self._call(
            self.client.put_object_tagging,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
        )

    def delete_tags(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """DELETE ?tagging."""
        self._call(self.client.delete_object_tagging, Bucket=bucket, Key=key, VersionId=version_id)

    def get_acl(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """The canned ACL the grants amount to (private or public-read)."""
        found = self._call(self.client.get_object_acl, Bucket=bucket, Key=key, VersionId=version_id)
        for grant in found.get("Grants", []):
            if grant.get("Grantee", {}).get("URI") == _PUBLIC_READ and grant.get("Permission") in (
                "READ",
                "FULL_CONTROL",
            ):
                return "public-read"
        return "private"

    def get_grants(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The canonical-user grants of the object's ACL."""
        found = self._call(self.client.get_object_acl, Bucket=bucket, Key=key, VersionId=version_id)
        return tuple(
            sorted(
                (str(g["Permission"]), str(g["Grantee"]["ID"]))
                for g in found.get("Grants", [])
                if g.get("Grantee", {}).get("Type") == "CanonicalUser" and g["Grantee"].get("ID")
            )
        )

    def put_acl(self, bucket: str, key: str, version_id: str | None, canned: str) -> None:
        """PUT ?acl with a canned ACL."""
        self._call(
            self.client.put_object_acl, Bucket=bucket, Key=key, VersionId=version_id, ACL=canned
        )

    def restore(self, bucket: str, key: str, version_id: str | None, days: int, tier: str) -> None:
        """POST ?restore."""
        self._call(
            self.client.restore_object,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
            RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier.title()}},
        )

    def get_retention(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Retention | None:
        """GET ?retention."""
        try:
            found = self.client.get_object_retention(
                Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchObjectLockConfiguration":
                return None
            raise _store_error(exc) from exc
        retention = found.get("Retention") or {}
        if not retention.get("Mode"):
            return None
        return Retention(retention["Mode"], retention["RetainUntilDate"])

    def put_retention(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        retention: Retention,
        *,
        bypass_governance: bool = False,
    ) -> None:
        """PUT ?retention."""
        self._call(
            self.client.put_object_retention,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
            Retention={"Mode": retention.mode, "RetainUntilDate": retention.until},
            BypassGovernanceRetention=bypass_governance or None,
        )

    def get_legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        """GET ?legal-hold."""
        try:
            found = self.client.get_object_legal_hold(
                Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchObjectLockConfiguration":
                return False
            raise _store_error(exc) from exc
        return bool(found.get("LegalHold", {}).get("Status") == "ON")

    def put_legal_hold(self, bucket: str, key: str, version_id: str | None, on: bool) -> None:
        """PUT ?legal-hold."""
        self._call(
            self.client.put_object_legal_hold,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
            LegalHold={"Status": "ON" if on else "OFF"},
        )

    def checksum(self, bucket: str, key: str, version_id: str | None, algorithm: str) -> str:
        """The stored checksum when the server keeps one, else computed from the content."""
        if algorithm in ("CRC32", "CRC32C", "SHA1", "SHA256"):
            with contextlib.suppress(ClientError, BotoCoreError, KeyError):
                found = self.client.get_object_attributes(
                    Bucket=bucket,
                    Key=key,
                    ObjectAttributes=["Checksum", "ObjectParts"],
                    **({"VersionId": version_id} if version_id else {}),
                )
                value = found.get("Checksum", {}).get(f"Checksum{algorithm}")
                # A multipart object's checksum is of its parts, not the content: compute it.
                if value and "-" not in value and not found.get("ObjectParts"):
                    return str(value)
        with self.open(bucket, key, version_id) as stream:
            return checksum_stream(stream, algorithm)
