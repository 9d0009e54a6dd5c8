"""The GCS dialect of `engine serve`: Storage Batch Operations v1 (REST/JSON) over the engine.

The routes the official client's REST transport calls (reference sheet): jobs create,
get, list, cancel and delete, and the long-running operation create returns. Every
request carries ``Authorization: Bearer <token>``, checked against
``BATCHCTL_SERVE_GCS_TOKEN``; without one configured, every GCS request is refused.

GCS names jobs by the caller's job ID; the engine by its own. The names live in
``gcs-jobs.db`` beside the engine's database: the job's resource name, the engine's job,
the request ID of its create and whether it was deleted. A retried create (same job ID
and request ID) answers the first job's operation again; another create with the same
job ID is ALREADY_EXISTS, as the service does. Deleting a finished job removes its name
(the engine keeps its history); the job ID may then be used again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from runner.backends.local import LocalBackend
from runner.dialects import gcs
from runner.jobs.errors import BadRequest, JobServiceError, NotFound
from runner.jobs.status import JobStatus

PREFIX = "/v1/"
_JOB_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_TYPE = "type.googleapis.com/google.cloud.storagebatchoperations.v1."
HTTP_OF = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}


class GcsError(Exception):
    """An answer in google.rpc.Status form."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def http(self) -> int:
        """The HTTP status of the rpc status."""
        return HTTP_OF.get(self.status, 500)


def error_document(status: str, message: str) -> bytes:
    """google.rpc.Status as JSON, as Google's REST APIs answer errors."""
    return json.dumps(
        {"error": {"code": HTTP_OF.get(status, 500), "message": message, "status": status}}
    ).encode()


def check_token(headers: dict[str, str], expected: str | None) -> None:
    """Refuse a request without the configured bearer token (constant-time compare)."""
    if not expected:
        raise GcsError(
            "UNAUTHENTICATED",
            "engine serve was started without BATCHCTL_SERVE_GCS_TOKEN: the GCS API is off",
        )
    given = headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise GcsError("UNAUTHENTICATED", "Request had invalid authentication credentials.")


class _Names:
    """Job resource names → engine jobs, in SQLite beside the engine's database."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS names (name TEXT NOT NULL, incarnation INTEGER NOT NULL, "
            "parent TEXT NOT NULL, job TEXT NOT NULL, request_id TEXT, created REAL NOT NULL, "
            "deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (name, incarnation))"
        )

    def live(self, name: str) -> tuple[int, str, str | None] | None:
        row = self.conn.execute(
            "SELECT incarnation, job, request_id FROM names WHERE name=? AND deleted=0", (name,)
        ).fetchone()
        return None if row is None else (int(row[0]), row[1], row[2])

    def next_incarnation(self, name: str) -> int:
        row = self.conn.execute(
            "SELECT coalesce(max(incarnation), 0) FROM names WHERE name=?", (name,)
        ).fetchone()
        return int(row[0]) + 1

    def add(
        self, name: str, incarnation: int, parent: str, request_id: str, job: str, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO names (name, incarnation, parent, request_id, job, created) VALUES "
            "(?, ?, ?, ?, ?, ?)",
            (name, incarnation, parent, request_id, job, now),
        )

    def delete(self, name: str) -> None:
        self.conn.execute("UPDATE names SET deleted=1 WHERE name=? AND deleted=0", (name,))

    def page(self, parent: str, offset: int, size: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT name, job FROM names WHERE parent=? AND deleted=0 "
            "ORDER BY created DESC, name LIMIT ? OFFSET ?",
            (parent, size + 1, offset),
        ).fetchall()
        return [(str(n), str(j)) for n, j in rows]

    def close(self) -> None:
        self.conn.close()


class GcsApi:
    """Answers the GCS job API for one local backend."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.names = _Names(backend.state_dir / "gcs-jobs.db")

    def handle(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        """One authenticated request: HTTP status and JSON body."""
        url = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(url.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        resource, _, verb = path.removeprefix("/v1/").partition(":")
        parts = resource.split("/")
        if len(parts) < 4 or parts[0] != "projects" or parts[2] != "locations":
            raise GcsError("NOT_FOUND", f"no such resource {path}")
        parent = "/".join(parts[:4])
        rest = parts[4:]
        try:
            if rest == ["jobs"] and method == "POST" and not verb:
                return 200, self._dump(self._create(parent, query, body))
            if rest == ["jobs"] and method == "GET" and not verb:
                return 200, self._dump(self._list(parent, query))
            if len(rest) == 2 and rest[0] == "jobs":
                name = resource
                if method == "GET" and not verb:
                    return 200, self._dump(self._job(name))
                if method == "POST" and verb == "cancel":
                    return 200, self._dump(self._cancel(name))
                if method == "DELETE" and not verb:
                    return 200, self._dump(self._delete(name))
            if len(rest) == 2 and rest[0] == "operations" and method == "GET" and not verb:
                return 200, self._dump(self._operation(parent, rest[1]))
        except NotFound as exc:
            raise GcsError("NOT_FOUND", exc.message) from exc
        except BadRequest as exc:
            raise GcsError("INVALID_ARGUMENT", exc.message) from exc
        except JobServiceError as exc:
            raise GcsError("FAILED_PRECONDITION", exc.message) from exc
        raise GcsError("NOT_FOUND", f"{method} {path} is not part of the API")

    @staticmethod
    def _dump(value: dict[str, Any]) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def _create(self, parent: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        job_id = query.get("jobId", "")
        if not (1 <= len(job_id) <= 63 and _JOB_ID_CHARS.issuperset(job_id)):
            raise GcsError(
                "INVALID_ARGUMENT",
                "jobId: 1-63 lowercase letters, digits and hyphens are required",
            )
        try:
            job = json.loads(body or b"{}")
        except ValueError as exc:
            raise GcsError("INVALID_ARGUMENT", f"the body is not JSON: {exc}") from exc
        if not isinstance(job, dict):
            raise GcsError("INVALID_ARGUMENT", "the body must be a Job object")
        name = f"{parent}/jobs/{job_id}"
        request_id = query.get("requestId", "")
        with self.names.lock:
            live = self.names.live(name)
            if live is not None:
                _, engine_job, first_request = live
                if not request_id or request_id != first_request:
                    raise GcsError("ALREADY_EXISTS", f"Job {name} already exists.")
            else:
                # The name is recorded only once its job exists: a create refused as invalid
                # leaves the job ID free. The engine's create is idempotent on the token, so
                # a crash between the two is mended by the client's retry.
                incarnation = self.names.next_incarnation(name)
                token = "gcs:" + hashlib.sha256(f"{name}\0{incarnation}".encode()).hexdigest()[:40]
                engine_job = self.backend.create_job(gcs.request_from(job, token))
                now = self.backend.engine.clock()
                self.names.add(name, incarnation, parent, request_id, engine_job, now)
        return self._operation_of(name, engine_job)

    def _operation_of(self, name: str, engine_job: str) -> dict[str, Any]:
        parent, _, job_id = name.rpartition("/jobs/")
        job = self._render(name, engine_job)
        return {
            "name": f"{parent}/operations/{job_id}",
            "metadata": {
                "@type": _TYPE + "OperationMetadata",
                "operation": f"{parent}/operations/{job_id}",
                "createTime": job["createTime"],
                "endTime": job["createTime"],
                "apiVersion": "v1",
                "job": job,
            },
            "done": True,
            "response": {"@type": _TYPE + "Job", **job},
        }

    def _operation(self, parent: str, operation_id: str) -> dict[str, Any]:
        name = f"{parent}/jobs/{operation_id}"
        live = self.names.live(name)
        if live is None:
            raise GcsError("NOT_FOUND", f"Operation {parent}/operations/{operation_id} not found.")
        return self._operation_of(name, live[1])

    def _engine_job(self, name: str) -> str:
        live = self.names.live(name)
        if live is None:
            raise GcsError("NOT_FOUND", f"Job {name} not found.")
        return live[1]

    def _render(self, name: str, engine_job: str) -> dict[str, Any]:
        detail = self.backend.describe_job(engine_job)
        groups = self.backend.engine.tasks.error_groups(engine_job)
        errors = [gcs.error_summary(code, http, n, samples) for code, http, n, samples in groups]
        return gcs.job_json(name, detail, errors)

    def _job(self, name: str) -> dict[str, Any]:
        return self._render(name, self._engine_job(name))

    def _list(self, parent: str, query: dict[str, str]) -> dict[str, Any]:
        if query.get("filter"):
            raise GcsError("INVALID_ARGUMENT", "filter: not supported by engine serve")
        size_text = query.get("pageSize") or "100"
        if not size_text.isdigit():
            raise GcsError("INVALID_ARGUMENT", "pageSize must be a number")
        size = min(max(int(size_text), 1), 1000)
        token = query.get("pageToken") or "0"
        if not token.isdigit():
            raise GcsError("INVALID_ARGUMENT", "pageToken is not one this server gave")
        offset = int(token)
        rows = self.names.page(parent, offset, size)
        jobs = [self._render(name, job) for name, job in rows[:size]]
        answer: dict[str, Any] = {"jobs": jobs}
        if len(rows) > size:
            answer["nextPageToken"] = str(offset + size)
        return answer

    def _cancel(self, name: str) -> dict[str, Any]:
        engine_job = self._engine_job(name)
        status = self.backend.describe_job(engine_job).status
        if status.final:
            raise GcsError("FAILED_PRECONDITION", f"Job {name} is {gcs.state_of(status)}.")
        self.backend.update_job_status(engine_job, JobStatus.CANCELLED, "cancelled (GCS API)")
        return {}

    def _delete(self, name: str) -> dict[str, Any]:
        engine_job = self._engine_job(name)
        status = self.backend.describe_job(engine_job).status
        if not status.final:
            raise GcsError(
                "FAILED_PRECONDITION",
                f"Job {name} is {gcs.state_of(status)}: only a finished job can be deleted.",
            )
        with self.names.lock:
            self.names.delete(name)
        return {}

    def close(self) -> None:
        """Close the names database."""
        self.names.close()
