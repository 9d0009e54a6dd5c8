"""The fast S3 path: the two calls a campaign makes per object, copy and tag, made directly.

botocore spends about 1.5 ms of CPU on every request (bench/RESULTS.md), which on
one machine bounds a job at a few hundred objects per second. These two calls are
simple enough to make directly: SigV4 with a cached signing key
(``runner.dialects.sigv4``), one keep-alive HTTP/1.1 connection per thread, S3's
answers read by hand, and retries through ``runner.support.retry``.

It is used only where it is as safe as botocore (``usable``): path-style endpoints
with no proxy configured for them. Whatever it cannot judge the way botocore would
it does not guess at — it raises ``Fallback`` and the store makes that call through
boto3: any 3xx (a region redirect boto3 follows), an answer that is not the XML it
expects, a header it cannot send as is. An error inside a 200 answer (S3 reports
some copy failures so, after whitespace it sends to keep a long copy alive) is an
error, retried as botocore retries it. The socket exchange is one method
(``Transport.exchange``), as httpx's transports are, so it is tested at the wire level.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import ssl
import threading
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from xml.sax.saxutils import escape

from runner.dialects import sigv4
from runner.stores.base import StoreError
from runner.support.retry import Backoff, retry, retry_after

_VERSION = "x-amz-version-id"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_MAX_LINE = 65536
_MAX_BODY = 16 << 20  # copy and tagging answers are a few hundred bytes


class Fallback(Exception):
    """The fast path cannot judge this call as botocore would: make it through boto3."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Transport(Protocol):
    """Sends one request (the bytes of it) and reads its whole answer."""

    def exchange(self, request: bytes) -> Answer:
        """The answer; OSError/ValueError when the connection failed or the answer is broken."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


def usable(endpoint_url: str | None, region: str) -> bool:
    """Whether the fast path may speak to this endpoint: no proxy applies to it.

    botocore sends through HTTPS_PROXY/HTTP_PROXY/ALL_PROXY unless NO_PROXY names the
    host; the fast path speaks to the endpoint directly, so it steps aside then.
    """
    url = urllib.parse.urlsplit(endpoint_url or f"https://s3.{region}.amazonaws.com")
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return True
    host = url.netloc if url.port else (url.hostname or "")
    return bool(urllib.request.proxy_bypass_environment(host, proxies))  # type: ignore[attr-defined]


def tls_context(verify: bool | str | None) -> ssl.SSLContext:
    """TLS as botocore would verify it: a CA bundle path, the defaults, or no checks."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


class _Connection:
    """One keep-alive HTTP/1.1 connection, spoken directly.

    http.client parses every answer's headers through the email package, which costs
    more than the rest of a copy's client-side work; S3's answers here are small and
    plain, so reading them by hand is enough — with every length checked.
    """

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext | None, timeout: float
    ) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.sock: socket.socket | None = None
        self.reader: Any = None
        self.used = False  # an answer was read on it: a failure may be a stale keep-alive

    def close(self) -> None:
        for item in (self.reader, self.sock):
            if item is not None:
                with contextlib.suppress(OSError):
                    item.close()
        self.sock = self.reader = None
        self.used = False

    def _open(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)

    def _line(self) -> bytes:
        line: bytes = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ValueError("an answer line is too long")
        return line

    def _exact(self, size: int) -> bytes:
        data: bytes = self.reader.read(size)
        if len(data) != size:
            raise ConnectionError("the answer was cut short")
        return data

    def exchange(self, request: bytes) -> Answer:
        if self.sock is None:
            self._open()
        assert self.sock is not None
        self.sock.sendall(request)
        line = self._line()
        if not line:
            raise ConnectionError("the server closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP/1.1 status line: {line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            header = self._line()
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise ConnectionError("the answer's headers were cut short")
            name, colon, value = header.partition(b":")
            if not colon:
                raise ValueError(f"a malformed header line: {header[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        close = headers.get("connection", "").lower() == "close"
        if "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower() != "chunked":
                raise ValueError(f"transfer-encoding {headers['transfer-encoding']!r}")
            body = self._chunked()
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit() or int(text) > _MAX_BODY:
                raise ValueError(f"content-length {text!r}")
            body = self._exact(int(text))
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = self.reader.read(_MAX_BODY + 1)
            if len(body) > _MAX_BODY:
                raise ValueError("the answer is too large")
            close = True
        if close:
            self.close()
        else:
            self.used = True
        return Answer(status, headers, body)

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._line()
            if not line:
                raise ConnectionError("a chunked answer was cut short")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ValueError(f"a malformed chunk size: {size_text[:20]!r}") from None
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = self._line()
                    if not trailer:
                        raise ConnectionError("a chunked answer ended without its last line")
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise ValueError("the answer is too large")
            parts.append(self._exact(size))
            if self._line() not in (b"\r\n", b"\n"):
                raise ValueError("a chunk is longer than its size says")


class SocketTransport:
    """One keep-alive connection per thread to one host."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self._local = threading.local()
        self._open: list[_Connection] = []
        self._open_lock = threading.Lock()

    def _connection(self) -> _Connection:
        found: _Connection | None = getattr(self._local, "connection", None)
        if found is None:
            found = _Connection(self.host, self.port, self.context, self.timeout)
            self._local.connection = found
            with self._open_lock:
                self._open.append(found)
        return found

    def exchange(self, request: bytes) -> Answer:
        """Send on this thread's connection; a reused one that fails is reopened once."""
        connection = self._connection()
        reused = connection.used
        try:
            return connection.exchange(request)
        except (OSError, ValueError):
            connection.close()
            if not reused:
                raise
        # The server closed an idle keep-alive connection: not a failure of the request.
        try:
            return connection.exchange(request)
        except (OSError, ValueError):
            connection.close()
            raise

    def close(self) -> None:
        """Close every thread's connection."""
        with self._open_lock:
            for connection in self._open:
                connection.close()
            self._open.clear()
        self._local = threading.local()


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="/~")


def _error_of(body: bytes) -> tuple[str, str] | None:
    """(code, message) when ``body`` is S3's <Error> document; None when it is other XML.

    Raises Fallback when the body is not XML at all.
    """
    try:
        root = ET.fromstring(body.strip())
    except ET.ParseError:
        raise Fallback("the answer is not XML") from None
    if root.tag.rsplit("}", 1)[-1] != "Error":
        return None
    code = root.findtext("Code") or ""
    return code, root.findtext("Message") or code


class FastS3:
    """SigV4-signed copy and tagging requests, for path-style endpoints without a proxy."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        credentials: Callable[[], tuple[str, str, str | None]],
        *,
        max_attempts: int = 10,
        timeout: float = 120.0,
        verify: bool | str | None = None,
        transport: Transport | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(endpoint_url or f"https://s3.{region}.amazonaws.com")
        https = url.scheme == "https"
        self.host_header = url.netloc
        self.base_path = url.path.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.backoff = Backoff(attempts=max_attempts, base=0.05, cap=5.0)
        self.transport: Transport = transport or SocketTransport(
            url.hostname or "",
            url.port or (443 if https else 80),
            context=tls_context(verify) if https else None,
            timeout=timeout,
        )
        self._keys: dict[tuple[str, str], bytes] = {}

    def close(self) -> None:
        """Close every connection."""
        self.transport.close()

    def _key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            found = sigv4.signing_key(secret, day, self.region, "s3")
            self._keys = {(secret, day): found}
        return found

    def _raw(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> bytes:
        for name in headers:
            if not _TOKEN.match(name):
                raise Fallback(f"header name {name!r}")
        try:
            signed = sigv4.sign(
                method,
                path,
                query,
                headers,
                body,
                host=self.host_header,
                credentials=self.credentials(),
                region=self.region,
                key=self._key,
            )
        except ValueError as exc:  # a line break in a value: never sent, by any path
            raise StoreError(400, "InvalidArgument", str(exc), retryable=False) from exc
        target = path + (
            "?"
            + "&".join(
                k if v == "" else f"{k}={urllib.parse.quote(v, safe='-_.~')}"
                for k, v in sorted(query.items())
            )
            if query
            else ""
        )
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in signed.items()]
        lines.append(f"Content-Length: {len(body)}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        except UnicodeEncodeError:
            raise Fallback("a header that is not ASCII") from None
        return head + body

    def _judge(self, answer: Answer) -> Answer:
        """The answer, or the StoreError/Fallback it means."""
        if 300 <= answer.status < 400:
            raise Fallback(f"{answer.status} {answer.headers.get('location', '')}".strip())
        if answer.status < 300:
            # The common answer is read without a parser: an error inside a 200 always
            # holds "<Error" (searched in the whole body, whitespace before it included).
            found = _error_of(answer.body) if b"<Error" in answer.body else None
            if found is None:
                return answer
            # An error in a 200: botocore reads it as a 500 and retries it.
            code, message = found
            raise StoreError(500, code or "InternalError", message, retryable=True)
        if not answer.body.strip():
            raise Fallback(f"{answer.status} without a body")
        found = _error_of(answer.body)
        if found is None or not found[0]:
            raise Fallback(f"{answer.status} without S3's error document")
        code, message = found
        raise StoreError(answer.status, code, message, delay=retry_after(answer.headers))

    def request(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Answer:
        """Send one request with retries; StoreError for S3's errors, Fallback for boto3."""
        path = f"{self.base_path}/{_quote(bucket)}/{_quote(key)}"
        query = query or {}

        def once() -> Answer:
            raw = self._raw(method, path, query, headers or {}, body)  # signed afresh each time
            try:
                answer = self.transport.exchange(raw)
            except (OSError, ValueError) as exc:
                raise StoreError(503, "ServiceUnavailable", f"{type(exc).__name__}: {exc}") from exc
            return self._judge(answer)

        return retry(once, self.backoff)

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
        answer = self.request(
            "PUT", dst_bucket, dst_key, headers={"x-amz-copy-source": source, **headers}
        )
        if b"CopyObjectResult" not in answer.body:
            raise Fallback("a copy answered without its CopyObjectResult")
        version = answer.headers.get(_VERSION)
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
