"""The GCS backend: the JobService over Google Cloud Storage batch operations (v1).

Through Google's official client, ``google-cloud-storagebatchoperations``, on its REST
transport (the optional extra ``batchctl[gcs]``). Credentials: an access token in
``GOOGLE_OAUTH_ACCESS_TOKEN`` (as Terraform's google provider reads it), else
Application Default Credentials; never a key in a spec, never printed.

The service names jobs by the caller's job ID, and a second create with the same ID is
ALREADY_EXISTS: the ID is derived from the job's ClientRequestToken (itself derived from
target, name, spec hash and generation), so a create retried after a dropped answer
finds its own job instead of making a second one. The ``requestId`` is derived from the
token and the request, for the service's own de-duplication of retried requests.

No call waits without end: the client bounds each one we make (create, list, get,
cancel, delete) at 60 s, retries included, and a refused or dropped connection is
ServiceUnavailable.

GCS has no priority, no confirmation and no completion report: a priority change or a
confirmation is refused (the planner plans neither for gcs targets), and the report
view is built from the job's error summaries.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from runner.backends.base import filter_jobs
from runner.dialects import gcs
from runner.jobs.errors import (
    BadRequest,
    IdempotencyError,
    JobStatusError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from runner.jobs.models import JobDetail, JobPage, JobRequest
from runner.jobs.status import JobStatus
from runner.spec.identity import parse_marker
from runner.spec.models import CsvManifest, GcsTarget
from runner.stores.base import ObjectStore

INSTALL = "pip install 'batchctl[gcs]'"


class GcsUnavailable(Exception):
    """Google's client library is not installed."""


def _library() -> Any:
    try:
        from google.cloud import storagebatchoperations_v1
    except ImportError as exc:
        raise GcsUnavailable(
            f"a gcs target needs Google's client library, which is not installed: {INSTALL}"
        ) from exc
    return storagebatchoperations_v1


def _credentials() -> Any:
    token = os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN")
    if token:
        from google.oauth2.credentials import Credentials

        return Credentials(token=token)  # type: ignore[no-untyped-call]
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except DefaultCredentialsError as exc:
        raise BadRequest(
            "GCS credentials are missing: set GOOGLE_OAUTH_ACCESS_TOKEN, or set up Application "
            "Default Credentials (gcloud auth application-default login)"
        ) from exc
    return credentials


@contextmanager
def _errors() -> Iterator[None]:
    """The client's exceptions as our typed errors (their messages kept)."""
    import requests
    from google.api_core import exceptions as g
    from google.auth.exceptions import RefreshError, TransportError

    try:
        yield
    except (requests.ConnectionError, requests.Timeout, TransportError) as exc:
        # The REST transport's own failures (refused, reset, timed out) reach us raw.
        raise ServiceUnavailable(f"cannot reach the GCS endpoint: {exc}") from exc
    except RefreshError as exc:
        # google-auth answers a 401 by refreshing, which a bare access token cannot do
        raise BadRequest(
            "GCS refused the credentials (an expired or wrong GOOGLE_OAUTH_ACCESS_TOKEN?)"
        ) from exc
    except g.NotFound as exc:
        raise NotFound(exc.message or str(exc)) from exc
    except (g.TooManyRequests, g.ResourceExhausted) as exc:
        raise TooManyRequests(exc.message or str(exc)) from exc
    except g.FailedPrecondition as exc:
        raise JobStatusError(exc.message or str(exc)) from exc
    except g.BadRequest as exc:
        # The client picks its class by HTTP status: 400 is also FAILED_PRECONDITION.
        if _rpc_status(exc) == "FAILED_PRECONDITION":
            raise JobStatusError(exc.message or str(exc)) from exc
        raise BadRequest(f"{type(exc).__name__}: {exc.message or exc}") from exc
    except (g.ServiceUnavailable, g.InternalServerError, g.GatewayTimeout) as exc:
        raise ServiceUnavailable(exc.message or str(exc)) from exc
    except g.GoogleAPICallError as exc:
        raise BadRequest(f"{type(exc).__name__}: {exc.message or exc}") from exc


def _rpc_status(exc: Any) -> str | None:
    """The google.rpc.Status name in an error answer's body, when there is one."""
    try:
        return str(exc.response.json()["error"]["status"])
    except Exception:  # no response, not JSON, another shape: the class is all there is
        return None


class GcsBackend:
    """JobService over Storage Batch Operations in one project and location."""

    def __init__(self, target: GcsTarget, *, credentials: Any = None) -> None:
        library = _library()
        from google.api_core.client_options import ClientOptions

        self.target = target
        self.library = library
        self.parent = f"projects/{target.project}/locations/{target.location}"
        options = ClientOptions(api_endpoint=target.endpoint) if target.endpoint else None
        self.client = library.StorageBatchOperationsClient(
            transport="rest",
            credentials=credentials if credentials is not None else _credentials(),
            client_options=options,
        )

    def _name(self, job_id: str) -> str:
        return f"{self.parent}/jobs/{job_id}"

    @staticmethod
    def _json(message: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(type(message).to_json(message))
        return loaded

    def create_job(self, request: JobRequest) -> str:
        """Create a job named by its token; a job already there under that name is ours."""
        marker = parse_marker(request.description)
        name = marker.name if marker else "job"
        job_id = gcs.job_id_for(name, request.client_request_token)
        body = gcs.job_body(request, dry_run=self.target.dry_run)
        job = self.library.Job.from_json(json.dumps(body))
        # Same request, same requestId (the service answers a retry with the first job);
        # another request under the same token gets another, and meets ALREADY_EXISTS.
        request_id = str(
            uuid.uuid5(
                uuid.NAMESPACE_URL, f"{request.client_request_token}/{request.fingerprint()}"
            )
        )
        from google.api_core import exceptions as g

        with _errors():
            try:
                self.client.create_job(
                    request={
                        "parent": self.parent,
                        "job_id": job_id,
                        "job": job,
                        "request_id": request_id,
                    }
                )
            except g.Conflict as exc:  # the class the client raises for 409
                if _rpc_status(exc) not in (None, "ALREADY_EXISTS"):
                    raise
                # The ID is the token's: the job there is this request's, created by an
                # earlier attempt whose answer was lost, unless it asks for something else.
                there = self.describe_job(job_id)
                wanted = request.operation.choice
                if there.description != request.description or there.operation != wanted:
                    raise IdempotencyError(
                        f"job {job_id} exists for another request (ClientRequestToken "
                        f"{request.client_request_token!r} was used before)"
                    ) from exc
        return job_id

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        next_token: str | None = None,
        max_results: int = 1000,
        description: str | None = None,
        job_id: str | None = None,
    ) -> JobPage:
        """One page of jobs (the filters are applied here)."""
        if not 1 <= max_results <= 1000:
            raise BadRequest("maxResults must be between 1 and 1000")
        request: dict[str, Any] = {"parent": self.parent, "page_size": max_results}
        if next_token:
            request["page_token"] = next_token
        with _errors():
            pager = self.client.list_jobs(request=request)
            page = next(iter(pager.pages))
        jobs = [gcs.summary_from(self._json(job)) for job in page.jobs]
        jobs = filter_jobs(jobs, description, job_id, statuses)
        return JobPage(jobs=jobs, next_token=page.next_page_token or None)

    def describe_job(self, job_id: str) -> JobDetail:
        """One job, with its error summaries as failure reasons."""
        with _errors():
            job = self.client.get_job(name=self._name(job_id))
        return gcs.detail_from(self._json(job))

    def update_job_priority(self, job_id: str, priority: int) -> int:
        """Refused: GCS batch operations have no priority."""
        raise BadRequest("GCS batch operations have no priority")

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        """Cancel a job (GCS has no confirmation: its jobs start when created)."""
        if JobStatus(requested) is not JobStatus.CANCELLED:
            raise BadRequest("GCS batch operations only cancel: their jobs need no confirmation")
        with _errors():
            self.client.cancel_job(
                request={
                    "name": self._name(job_id),
                    "request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cancel/{job_id}")),
                }
            )
        return JobStatus.CANCELLED

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job (the service refuses a running one)."""
        with _errors():
            self.client.delete_job(name=self._name(job_id))

    def stage_manifest(self, name: str, data: bytes) -> CsvManifest:
        """Refused: manifests kept in the repository are not staged to GCS by batchctl."""
        raise BadRequest("manifest.file is not supported on gcs targets: use a csv manifest")

    def report_store(self) -> ObjectStore:
        """Refused: GCS writes no completion report (see the job's error summaries)."""
        raise BadRequest("GCS writes no completion report: `batchctl report` shows its errors")

    def close(self) -> None:
        """Release the client's connections."""
        self.client.transport.close()
