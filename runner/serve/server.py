"""`batchctl engine serve`: the engine behind the S3 Control and COS job APIs, over HTTP.

Two dialects on one port, told apart by the path: ``/v20180820/jobs…`` is AWS's
S3 Control (below), ``/jobs…`` is COS Batch Operation (``cos_api``, q-sign
verified by ``cos_sign``). The same keys serve both: an access key ID and secret
for SigV4 are a SecretId and SecretKey for COS.

CreateJob, DescribeJob, ListJobs, UpdateJobPriority, UpdateJobStatus and
Get/Put/DeleteJobTagging in their REST-XML shapes, S3's error XML for every
error, and every request's SigV4 signature verified against the keys the server
was given. botocore puts the account ID in the host name (``<account>.<host>``):
any such prefix is accepted.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner.backends.local import LocalBackend
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobServiceError,
    JobStatusError,
    NotFound,
    TooManyRequests,
)
from runner.serve import cos_api
from runner.serve.cos_sign import verify_cos
from runner.serve.shapes import (
    create_request_from,
    document,
    error_document,
    job_descriptor,
    list_member,
    parse_body,
)
from runner.serve.sigv4 import SignatureRejected, verify

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


class EngineApi:
    """The routes of the job API over one local backend."""

    def __init__(self, backend: LocalBackend, *, region: str = "us-east-1") -> None:
        self.backend = backend
        self.region = region
        with backend.engine.db.write() as conn:
            conn.execute(_TAGS)

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
            role = f"arn:aws:iam::{account}:role/batchctl-engine"
            return 200, document(
                "DescribeJobResult", {"Job": job_descriptor(job, account, self.region, role)}
            )
        elif len(parts) == 2 and parts[1] == "priority" and method == "POST":
            priority = self.backend.update_job_priority(parts[0], int(query["priority"][0]))
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
        request, tags = create_request_from(body)
        if request.operation.invoke is not None:
            raise BadRequest("the embedded engine runs commands, not Lambda functions")
        job_id = self.backend.create_job(request)
        if tags:
            self._store_tags(job_id, tags)
        return document("CreateJobResult", {"JobId": job_id})

    def _list(self, query: dict[str, list[str]]) -> bytes:
        try:
            size = int((query.get("maxResults") or ["1000"])[0])
        except ValueError:
            raise BadRequest("maxResults must be a whole number") from None
        page = self.backend.list_jobs(
            statuses=query.get("jobStatuses") or (),
            next_token=query["nextToken"][0] if query.get("nextToken") else None,
            max_results=size or 1000,
        )
        return document(
            "ListJobsResult",
            {"Jobs": [list_member(j) for j in page.jobs], "NextToken": page.next_token},
        )

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
            if len(tags) > 50:
                raise BadRequest("TooManyTagsException: at most 50 tags")
            self._store_tags(job_id, [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags])
            return 200, b""
        if method == "DELETE":
            with self.backend.engine.db.write() as conn:
                conn.execute("DELETE FROM job_tags WHERE job_id=?", (job_id,))
            return 204, b""
        raise BadRequest(f"{method} is not allowed on tagging")


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
    ) -> None:
        if not secrets:
            raise ValueError("engine serve needs at least one access key to verify requests")
        api = EngineApi(backend)
        cos = cos_api.CosApi(backend, region=cos_region)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, method: str) -> None:
                request_id = uuid.uuid4().hex[:16].upper()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                if path == cos_api.PREFIX or path.startswith(cos_api.PREFIX + "/"):
                    status, payload = self._cos(method, body, request_id)
                    id_header = "x-cos-request-id"
                else:
                    status, payload = self._aws(method, body, request_id)
                    id_header = "x-amz-request-id"
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header(id_header, request_id)
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            def _aws(self, method: str, body: bytes, request_id: str) -> tuple[int, bytes]:
                try:
                    verify(method, self.path, dict(self.headers.items()), body, secrets)
                    account = self.headers.get("x-amz-account-id") or "000000000000"
                    return api.handle(method, self.path, body, account)
                except SignatureRejected as exc:
                    return 403, error_document(exc.code, exc.message, request_id)
                except JobServiceError as exc:
                    status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 500)
                    return status, error_document(exc.code, exc.message, request_id)
                except (KeyError, ValueError) as exc:
                    return 400, error_document(
                        "BadRequestException", f"bad request: {exc}", request_id
                    )
                except Exception as exc:  # the server answers, whatever happened
                    log.exception("request %s failed", request_id)
                    return 500, error_document("InternalServiceException", str(exc), request_id)

            def _cos(self, method: str, body: bytes, request_id: str) -> tuple[int, bytes]:
                resource = self.path.split("?", 1)[0]
                try:
                    verify_cos(method, self.path, dict(self.headers.items()), secrets)
                    host = self.headers.get("Host") or ""
                    uin = host.split(".", 1)[0] if ".cos-control." in host else "0"
                    app_id = self.headers.get("x-cos-appid") or ""
                    return cos.handle(method, self.path, body, app_id, uin)
                except SignatureRejected as exc:
                    return 403, cos_api.error_document(exc.code, exc.message, resource, request_id)
                except JobServiceError as exc:
                    status, code = cos_api.error_status(exc)
                    return status, cos_api.error_document(code, exc.message, resource, request_id)
                except Exception as exc:  # the server answers, whatever happened
                    log.exception("request %s failed", request_id)
                    return 500, cos_api.error_document(
                        "InternalError", str(exc), resource, request_id
                    )

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

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
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
        if self._thread is not None:
            self._thread.join(timeout=10)
