"""`batchctl engine serve`: the engine behind the S3 Control and COS job APIs, over HTTP.

Two dialects on one port, told apart by the path: ``/v20180820/jobs…`` is AWS's
S3 Control (below), ``/jobs…`` is COS Batch Operation (``cos_api``, q-sign
verified by ``runner.dialects.qsign``). The same keys serve both: an access key ID and secret
for SigV4 are a SecretId and SecretKey for COS.

CreateJob, DescribeJob, ListJobs, UpdateJobPriority, UpdateJobStatus and
Get/Put/DeleteJobTagging in their REST-XML shapes, S3's error XML for every
error, and every request's SigV4 signature verified against the keys the server
was given. botocore puts the account ID in the host name (``<account>.<host>``):
any such prefix is accepted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
import uuid
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner.backends.local import LocalBackend
from runner.dialects import qsign
from runner.dialects.s3control import (
    create_request_from,
    document,
    error_document,
    job_descriptor,
    list_jobs_document,
    parse_body,
)
from runner.dialects.sigv4 import SignatureRejected, verify
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobServiceError,
    JobStatusError,
    NotFound,
    TooManyRequests,
)
from runner.jobs.status import JobStatus
from runner.serve import cos_api, gcs_api

log = logging.getLogger(__name__)

PREFIX = "/v20180820/jobs"
_STATUS = {
    NotFound: 404,
    JobStatusError: 400,
    IdempotencyError: 400,
    BadRequest: 400,
    TooManyRequests: 429,
}
_TAGS = "CREATE TABLE IF NOT EXISTS job_tags (job_id TEXT PRIMARY KEY, tags TEXT NOT NULL)"
# What S3 Control's CreateJob carries that the engine's job model does not: echoed back
# by DescribeJob as it was given.
_ECHO = "CREATE TABLE IF NOT EXISTS job_echo (job_id TEXT PRIMARY KEY, data TEXT NOT NULL)"
_ROLE_ARN = re.compile(r"^arn:[^:]+:iam::\d{12}:role/.*$")
MAX_JOB_TAGS = 50


class ApiError(JobServiceError):
    """An error with the exact code and HTTP status the service model gives it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class EngineApi:
    """The routes of the job API over one local backend."""

    def __init__(self, backend: LocalBackend, *, region: str = "us-east-1") -> None:
        self.backend = backend
        self.region = region
        with backend.engine.db.write() as conn:
            conn.execute(_TAGS)
            conn.execute(_ECHO)

    def handle(self, method: str, target: str, body: bytes, account: str) -> tuple[int, bytes]:
        """Answer one verified request: HTTP status and XML body."""
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        parts = [p for p in url.path.removeprefix(PREFIX).split("/") if p]
        if not url.path.startswith(PREFIX):
            raise NotFound(f"no such resource: {url.path}")
        if not parts:
            if method == "POST":
                return 200, self._create(body)
            if method == "GET":
                return 200, self._list(query)
        elif len(parts) == 1 and method == "GET":
            job = self.backend.describe_job(parts[0])
            echo = self._echo(job.job_id)
            descriptor = job_descriptor(
                job, account, self.region, echo.get("RoleArn"), echo.get("ExpectedBucketOwner")
            )
            return 200, document("DescribeJobResult", {"Job": descriptor})
        elif len(parts) == 2 and parts[1] == "priority" and method == "POST":
            try:
                priority = self.backend.update_job_priority(parts[0], int(query["priority"][0]))
            except JobStatusError as exc:
                # The model lists no JobStatusException for UpdateJobPriority.
                raise BadRequest(exc.message) from None
            return 200, document(
                "UpdateJobPriorityResult", {"JobId": parts[0], "Priority": priority}
            )
        elif len(parts) == 2 and parts[1] == "status" and method == "POST":
            reason = query["statusUpdateReason"][0] if query.get("statusUpdateReason") else None
            status = self.backend.update_job_status(
                parts[0], query["requestedJobStatus"][0], reason
            )
            return 200, document(
                "UpdateJobStatusResult",
                {"JobId": parts[0], "Status": status.value, "StatusUpdateReason": reason},
            )
        elif len(parts) == 2 and parts[1] == "tagging":
            return self._tagging(method, parts[0], body)
        raise BadRequest(f"{method} {url.path} is not part of the job API")

    def _create(self, body: bytes) -> bytes:
        data = parse_body(body)
        for member in ("Operation", "Report", "Priority", "RoleArn", "ClientRequestToken"):
            if member not in data:
                raise BadRequest(f"CreateJob needs {member}")
        if not _ROLE_ARN.match(str(data["RoleArn"])):
            raise BadRequest(f"RoleArn {str(data['RoleArn'])[:80]!r} is not an IAM role ARN")
        if ("Manifest" in data) == ("ManifestGenerator" in data):
            raise BadRequest("CreateJob needs exactly one of Manifest and ManifestGenerator")
        request, tags = create_request_from(body)
        if request.operation.invoke is not None:
            raise BadRequest("the embedded engine runs commands, not Lambda functions")
        job_id = self.backend.create_job(request)
        if tags:
            self._store_tags(job_id, tags)
        generator = (data.get("ManifestGenerator") or {}).get("S3JobManifestGenerator") or {}
        echo = {
            "RoleArn": data["RoleArn"],
            "ExpectedBucketOwner": generator.get("ExpectedBucketOwner"),
        }
        with self.backend.engine.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO job_echo (job_id, data) VALUES (?, ?)",
                (job_id, json.dumps(echo)),
            )
        return document("CreateJobResult", {"JobId": job_id})

    def _echo(self, job_id: str) -> dict[str, Any]:
        row = (
            self.backend.engine.db.conn()
            .execute("SELECT data FROM job_echo WHERE job_id=?", (job_id,))
            .fetchone()
        )
        return dict(json.loads(row[0])) if row else {}

    def _list(self, query: dict[str, list[str]]) -> bytes:
        try:
            size = int((query.get("maxResults") or ["1000"])[0])
        except ValueError:
            raise ApiError(
                400, "InvalidRequestException", "maxResults must be a whole number"
            ) from None
        statuses = query.get("jobStatuses") or []
        unknown = [s for s in statuses if s not in JobStatus.__members__.values()]
        if unknown:
            raise ApiError(400, "InvalidRequestException", f"unknown job status {unknown[0]!r}")
        try:
            # Plain values, not the JobSummary models: a 1,000-job page is the hot path.
            jobs, token = self.backend.engine.list_page(
                statuses=statuses,
                next_token=query["nextToken"][0] if query.get("nextToken") else None,
                max_results=size or 1000,
            )
        except BadRequest as exc:
            code = "InvalidNextTokenException" if "token" in exc.message.lower() else None
            raise ApiError(400, code or "InvalidRequestException", exc.message) from None
        return list_jobs_document(jobs, token)

    def _store_tags(self, job_id: str, tags: list[dict[str, str]]) -> None:
        with self.backend.engine.db.write() as conn:
            conn.execute(
                "INSERT INTO job_tags (job_id, tags) VALUES (?, ?) ON CONFLICT (job_id) "
                "DO UPDATE SET tags = excluded.tags",
                (job_id, json.dumps(tags)),
            )

    def _tagging(self, method: str, job_id: str, body: bytes) -> tuple[int, bytes]:
        self.backend.describe_job(job_id)  # NotFound for an unknown job
        if method == "GET":
            row = (
                self.backend.engine.db.conn()
                .execute("SELECT tags FROM job_tags WHERE job_id=?", (job_id,))
                .fetchone()
            )
            return 200, document("GetJobTaggingResult", {"Tags": json.loads(row[0]) if row else []})
        if method == "PUT":
            tags = parse_body(body).get("Tags") or []
            if len(tags) > MAX_JOB_TAGS:
                raise ApiError(
                    400, "TooManyTagsException", f"a job has at most {MAX_JOB_TAGS} tags"
                )
            self._store_tags(job_id, [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags])
            return 200, b""
        if method == "DELETE":
            with self.backend.engine.db.write() as conn:
                conn.execute("DELETE FROM job_tags WHERE job_id=?", (job_id,))
            return 204, b""
        raise BadRequest(f"{method} is not allowed on tagging")


# Bounds on what a client can hold (issue 14): the job API's bodies are a few KiB, and a
# request that has not arrived whole within REQUEST_SECONDS never will from a real client.
MAX_BODY_BYTES = 1024 * 1024
REQUEST_SECONDS = 30.0
MAX_CONNECTIONS = 64
_INTERNAL = "We encountered an internal error. Please try again."


class _Rejected(Exception):
    """A request refused before it reaches the API: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _DeadlineReader(io.RawIOBase):
    """The socket, read against the handler's deadline: a client that trickles a byte a
    second cannot hold a thread, since every read gets only the time that is left."""

    def __init__(self, sock: socket.socket, handler: Any) -> None:
        self.sock = sock
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def _dialect(path: str) -> str:
    bare = path.split("?", 1)[0]
    if bare.startswith(gcs_api.PREFIX):
        return "gcs"
    return "cos" if bare == cos_api.PREFIX or bare.startswith(cos_api.PREFIX + "/") else "aws"


def _error_body(dialect: str, code: str, message: str, resource: str, request_id: str) -> bytes:
    if dialect == "gcs":
        return gcs_api.error_document("INVALID_ARGUMENT", f"{code}: {message}")
    if dialect == "cos":
        return cos_api.error_document(code, message, resource, request_id)
    return error_document(code, message, request_id)


def _unique_headers(message: Message) -> dict[str, str]:
    """The headers as one mapping for the signature check and the handlers alike; a header
    given twice is refused (the check and the handlers must read the same value)."""
    found: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        if key in found:
            raise _Rejected(400, "InvalidRequest", f"header {name} is given more than once")
        found[key] = value
    return found


def _body_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise _Rejected(
            501, "NotImplemented", "Transfer-Encoding is not accepted; send a Content-Length"
        )
    text = headers.get("content-length", "0").strip() or "0"
    if not text.isdigit():
        raise _Rejected(400, "InvalidArgument", f"Content-Length {text[:40]!r} is not a number")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise _Rejected(
            413,
            "EntityTooLarge",
            f"the body of {length:,} bytes is over the {MAX_BODY_BYTES:,} this API accepts",
        )
    return length


def _check_content_md5(headers: dict[str, str], body: bytes) -> None:
    """COS's q-signature does not cover the body: Content-MD5 is its integrity check."""
    declared = headers.get("content-md5")
    if declared is None:
        return
    actual = base64.b64encode(hashlib.md5(body).digest()).decode()
    if declared.strip() != actual:
        raise _Rejected(400, "BadDigest", "the Content-MD5 you specified did not match the body")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on connections: past it, 503 SlowDown at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            body = error_document("SlowDown", "too many connections; retry later", "-")
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-answer is routine, not a traceback on the console.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class EngineServer:
    """A threading HTTP server answering the job API for one local backend."""

    def __init__(
        self,
        backend: LocalBackend,
        secrets: dict[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cos_region: str = "ap-guangzhou",
        gcs_token: str | None = None,
        request_seconds: float = REQUEST_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not secrets:
            raise ValueError("engine serve needs at least one access key to verify requests")
        api = EngineApi(backend)
        cos = cos_api.CosApi(backend, region=cos_region)
        # No GCS token, no GCS API: nothing of it is opened or written.
        self.gcs = gcs = gcs_api.GcsApi(backend) if gcs_token else None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            deadline = 0.0
            # Headers and body leave as two writes; with Nagle's algorithm the second waits
            # for the client's delayed ACK: ~40 ms on every answer (bench/serve.py).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

            def handle_one_request(self) -> None:
                self.deadline = time.monotonic() + request_seconds
                super().handle_one_request()

            def parse_request(self) -> bool:
                if not super().parse_request():
                    return False
                if self.request_version == "HTTP/0.9":
                    self.request_version = "HTTP/1.0"  # so that the answer has a status line
                    self.send_error(400, "HTTP/0.9 is not supported; send HTTP/1.1")
                    return False
                return True

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                """Every error in the dialect's XML, never http.server's HTML page."""
                path = getattr(self, "path", "") or ""
                request_id = uuid.uuid4().hex[:16].upper()
                names = {400: "BadRequest", 404: "NotFound", 408: "RequestTimeout"}
                error = names.get(code, "InvalidRequest" if code < 500 else "NotImplemented")
                text = message or self.responses.get(code, ("error",))[0]
                body = _error_body(_dialect(path), error, text, path.split("?", 1)[0], request_id)
                self.close_connection = True
                if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
                    self.request_version = "HTTP/1.0"  # else no status line is written
                try:
                    self.send_response(code, text)
                    json_body = _dialect(path) == "gcs"
                    kind = "application/json" if json_body else "application/xml"
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except OSError:
                    pass

            def _answer(self, method: str) -> None:
                request_id = uuid.uuid4().hex[:16].upper()
                dialect = _dialect(self.path)
                resource = self.path.split("?", 1)[0]
                try:
                    headers = _unique_headers(self.headers)
                    length = _body_length(headers)
                    body = self.rfile.read(length) if length else b""
                    if len(body) != length:
                        raise _Rejected(400, "IncompleteBody", "the body ended early")
                    if dialect == "gcs":
                        status, payload = self._gcs(method, headers, body, request_id)
                    elif dialect == "cos":
                        _check_content_md5(headers, body)
                        status, payload = self._cos(method, headers, body, request_id)
                    else:
                        status, payload = self._aws(method, headers, body, request_id)
                except _Rejected as exc:
                    self.close_connection = exc.status >= 413 or exc.status == 400
                    status = exc.status
                    payload = _error_body(dialect, exc.code, exc.message, resource, request_id)
                except TimeoutError:
                    self.close_connection = True
                    status = 400
                    payload = _error_body(
                        dialect,
                        "RequestTimeout",
                        "the request body did not arrive in time",
                        resource,
                        request_id,
                    )
                id_header = {"cos": "x-cos-request-id", "gcs": "x-goog-request-id"}.get(
                    dialect, "x-amz-request-id"
                )
                self.send_response(status)
                kind = "application/json" if dialect == "gcs" else "application/xml"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header(id_header, request_id)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            def _aws(
                self, method: str, headers: dict[str, str], body: bytes, request_id: str
            ) -> tuple[int, bytes]:
                try:
                    verify(method, self.path, headers, body, secrets)
                    account = headers.get("x-amz-account-id") or "000000000000"
                    return api.handle(method, self.path, body, account)
                except SignatureRejected as exc:
                    # A body that does not match its declared hash is a bad request to AWS.
                    status = 400 if exc.code == "XAmzContentSHA256Mismatch" else 403
                    return status, error_document(exc.code, exc.message, request_id)
                except ApiError as exc:
                    return exc.status, error_document(exc.code, exc.message, request_id)
                except JobServiceError as exc:
                    status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 500)
                    return status, error_document(exc.code, exc.message, request_id)
                except (KeyError, ValueError) as exc:
                    return 400, error_document(
                        "BadRequestException", f"bad request: {exc}", request_id
                    )
                except Exception:  # the server answers, whatever happened; internals stay here
                    log.exception("request %s failed", request_id)
                    return 500, error_document("InternalServiceException", _INTERNAL, request_id)

            def _cos(
                self, method: str, headers: dict[str, str], body: bytes, request_id: str
            ) -> tuple[int, bytes]:
                resource = self.path.split("?", 1)[0]
                try:
                    qsign.verify(method, self.path, headers, secrets)
                    host = headers.get("host") or ""
                    uin = host.split(".", 1)[0] if ".cos-control." in host else "0"
                    app_id = headers.get("x-cos-appid") or ""
                    return cos.handle(method, self.path, body, app_id, uin)
                except SignatureRejected as exc:
                    return 403, cos_api.error_document(exc.code, exc.message, resource, request_id)
                except JobServiceError as exc:
                    status, code = cos_api.error_status(exc)
                    return status, cos_api.error_document(code, exc.message, resource, request_id)
                except Exception:  # the server answers, whatever happened; internals stay here
                    log.exception("request %s failed", request_id)
                    return 500, cos_api.error_document(
                        "InternalError", _INTERNAL, resource, request_id
                    )

            def _gcs(
                self, method: str, headers: dict[str, str], body: bytes, request_id: str
            ) -> tuple[int, bytes]:
                try:
                    gcs_api.check_token(headers, gcs_token)
                    assert gcs is not None  # there is one whenever a token is
                    return gcs.handle(method, self.path, body)
                except gcs_api.GcsError as exc:
                    return exc.http, gcs_api.error_document(exc.status, exc.message)
                except Exception:  # the server answers, whatever happened; internals stay here
                    log.exception("request %s failed", request_id)
                    return 500, gcs_api.error_document("INTERNAL", _INTERNAL)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def do_DELETE(self) -> None:
                self._answer("DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s - %s", self.address_string(), format % args)

        self.httpd = _Server((host, port), Handler, max_connections)
        self.port = int(self.httpd.server_address[1])
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint URL clients use."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve on this thread until shutdown()."""
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.gcs is not None:
            self.gcs.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
