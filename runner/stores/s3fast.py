"""A lean S3 client for the two calls a campaign makes per object: copy and tag.

botocore spends about 1.5 ms of CPU on every request (bench/RESULTS.md), which on
one machine bounds a job at a few hundred objects per second. These two calls
are simple enough to make directly: SigV4 with a cached signing key, one
keep-alive HTTP/1.1 connection per thread spoken directly, S3's error XML parsed by hand,
and retries with exponential backoff and jitter on throttling, 5xx and dropped
connections. Everything else still goes through boto3.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from runner.stores.base import StoreError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_RETRY_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_VERSION = "x-amz-version-id"


class _Wire:
    """One keep-alive HTTP/1.1 connection, spoken directly.

    http.client parses every response's headers through the email package, which
    costs more than the rest of a copy's client-side work; S3's answers here are
    small and plain, so reading them by hand is enough.
    """

    def __init__(self, host: str, port: int, https: bool, timeout: float) -> None:
        self.host, self.port, self.https, self.timeout = host, port, https, timeout
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def close(self) -> None:
        for item in (self.reader, self.sock):
            if item is not None:
                with contextlib.suppress(OSError):
                    item.close()
        self.sock = self.reader = None

    def _open(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)

    def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request; read its whole answer (status, headers, body)."""
        if self.sock is None:
            self._open()
        assert self.sock is not None
        self.sock.sendall(request)
        reader = self.reader
        line = reader.readline(65537)
        if not line:
            raise ConnectionError("the server closed the connection")
        status = int(line.split(None, 2)[1])
        headers: dict[str, str] = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        close = headers.get("connection", "").lower() == "close"
        if "content-length" in headers:
            size = int(headers["content-length"])
            body = reader.read(size)
            if len(body) != size:
                raise ConnectionError("the answer was cut short")
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked(reader)
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = reader.read()
            close = True
        if close:
            self.close()
        return status, headers, body

    @staticmethod
    def _chunked(reader: Any) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(reader.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(reader.read(size))
            reader.readline(65537)


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
        self._open: list[_Wire] = []
        self._open_lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._open_lock:
            for wire in self._open:
                wire.close()
            self._open.clear()
        self._local = threading.local()

    def _wire(self) -> _Wire:
        wire: _Wire | None = getattr(self._local, "wire", None)
        if wire is None:
            wire = _Wire(self.host, self.port, self.https, self.timeout)
            self._local.wire = wire
            with self._open_lock:
                self._open.append(wire)
        return wire

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
            lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
            lines += [f"{name}: {value}" for name, value in signed.items()]
            lines.append(f"Content-Length: {len(body)}")
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
            try:
                status, answer, data = self._wire().exchange(raw)
            except (OSError, ValueError) as exc:
                self._wire().close()
                last = StoreError(503, "ServiceUnavailable", f"{type(exc).__name__}: {exc}")
                continue
            error = _CODE.search(data) if (status >= 300 or b"<Error>" in data[:200]) else None
            if status < 300 and error is None:
                return status, answer, data
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
        "ServerSideEncryption": "x-amz-server-side-encryption",
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
