"""A lean S3 client for the two calls a campaign makes per object: copy and tag.

botocore spends about 1.5 ms of CPU on every request (bench/RESULTS.md), which on
one machine bounds a job at a few hundred objects per second. These two calls
are simple enough to make directly: SigV4 with a cached signing key, one
keep-alive ``http.client`` connection per thread, S3's error XML parsed by hand,
and retries with exponential backoff and jitter on throttling, 5xx and dropped
connections. Everything else still goes through boto3.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from runner.engine.stores.base import StoreError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_RETRY_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_VERSION = "x-amz-version-id"


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="/~")


class LeanS3:
    """SigV4-signed copy and tagging requests on per-thread keep-alive connections."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        credentials: Callable[[], tuple[str, str, str | None]],
        *,
        max_attempts: int = 10,
        timeout: float = 120.0,
    ) -> None:
        url = urllib.parse.urlsplit(endpoint_url or f"https://s3.{region}.amazonaws.com")
        self.https = url.scheme == "https"
        self.host = url.hostname or ""
        self.port = url.port or (443 if self.https else 80)
        self.host_header = url.netloc
        self.base_path = url.path.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._local = threading.local()
        self._keys: dict[tuple[str, str], bytes] = {}
        self._open: list[http.client.HTTPConnection] = []
        self._open_lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._open_lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.close()
            self._open.clear()
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._open_lock:
                self._open.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        self._local.conn = None

    def _signing_key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}
            found = key
        return found

    def _sign(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        now: datetime | None = None,
    ) -> dict[str, str]:
        access, secret, token = self.credentials()
        now = now or datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = {
            **{k.lower(): v.strip() for k, v in headers.items()},
            "host": self.host_header,
            "x-amz-date": stamp,
            "x-amz-content-sha256": payload,
        }
        if token:
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(query.items())
        )
        canonical = "\n".join(
            [
                method,
                path,
                canonical_query,
                "".join(f"{n}:{signed[n]}\n" for n in names),
                ";".join(names),
                payload,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(
            self._signing_key(secret, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        del signed["host"]
        return signed

    def request(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request with retries; raise StoreError for S3's errors."""
        path = f"{self.base_path}/{_quote(bucket)}/{_quote(key)}"
        query = query or {}
        target = path + (
            "?"
            + "&".join(
                k if v == "" else f"{k}={urllib.parse.quote(v, safe='-_.~')}"
                for k, v in sorted(query.items())
            )
            if query
            else ""
        )
        last: StoreError | None = None
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(min(5.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            signed = self._sign(method, path, query, headers or {}, body)
            conn = self._connection()
            try:
                conn.request(method, target, body=body or None, headers=signed)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                last = StoreError(503, "ServiceUnavailable", f"{type(exc).__name__}: {exc}")
                continue
            if response.getheader("connection", "").lower() == "close":
                self._drop()
            status = response.status
            error = _CODE.search(data) if (status >= 300 or b"<Error>" in data[:200]) else None
            if status < 300 and error is None:
                return status, {k.lower(): v for k, v in response.getheaders()}, data
            code = error.group(1).decode() if error else str(status)
            found = _MESSAGE.search(data)
            message = found.group(1).decode() if found else code
            last = StoreError(status if status >= 300 else 500, code, message)
            if status >= 500 or code in _RETRY_CODES:
                continue
            raise last
        assert last is not None
        raise last

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        dst_bucket: str,
        dst_key: str,
        headers: dict[str, str],
    ) -> str | None:
        """PUT with x-amz-copy-source; the new version ID, if any."""
        source = f"/{_quote(src_bucket)}/{_quote(src_key)}"
        if src_version:
            source += f"?versionId={urllib.parse.quote(src_version, safe='')}"
        _, answer, _ = self.request(
            "PUT", dst_bucket, dst_key, headers={"x-amz-copy-source": source, **headers}
        )
        version = answer.get(_VERSION)
        return version if version and version != "null" else None

    def put_tags(self, bucket: str, key: str, version: str | None, tags: dict[str, str]) -> None:
        """PUT ?tagging with Content-MD5, as S3 requires."""
        body = (
            "<Tagging><TagSet>"
            + "".join(
                f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>"
                for k, v in tags.items()
            )
            + "</TagSet></Tagging>"
        ).encode()
        query = {"tagging": ""}
        if version:
            query["versionId"] = version
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        self.request(
            "PUT",
            bucket,
            key,
            query=query,
            headers={"content-md5": md5, "content-type": "application/xml"},
            body=body,
        )


def copy_headers(extra: dict[str, Any]) -> dict[str, str] | None:
    """S3 headers for boto3's copy_object arguments, or None when one has no plain header."""
    names = {
        "MetadataDirective": "x-amz-metadata-directive",
        "TaggingDirective": "x-amz-tagging-directive",
        "Tagging": "x-amz-tagging",
        "StorageClass": "x-amz-storage-class",
        "ACL": "x-amz-acl",
        "ContentType": "content-type",
        "CacheControl": "cache-control",
        "ContentDisposition": "content-disposition",
        "ContentEncoding": "content-encoding",
        "ContentLanguage": "content-language",
    }
    headers: dict[str, str] = {}
    for name, value in extra.items():
        if name == "Metadata":
            for key, text in value.items():
                if not str(text).isascii():
                    return None
                headers[f"x-amz-meta-{key}"] = str(text)
        elif name in names:
            headers[names[name]] = str(value)
        else:
            return None  # Expires, checksums …: leave those to boto3
    return headers
