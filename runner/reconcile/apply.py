"""Apply: carry out a plan's actions through the backends, and write them down.

Actions run in the plan's order (dependencies first). Each is idempotent: a
create carries the deterministic ClientRequestToken, and when a create's
outcome is unknown (a timeout, a 5xx, throttling) the job is first looked up by
its Description marker before a retry — COS rejects a reused token, so a blind
retry could fail or, with a new token, duplicate. The ledger records every job
the moment it exists. An action that fails is reported and the others go on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runner.backends.base import DeletesJobs, JobService
from runner.jobs.errors import JobServiceError, JobStatusError, NotFound
from runner.jobs.models import JobRequest
from runner.jobs.status import JobStatus
from runner.reconcile.model import Action, ActionKind, DesiredJob, Plan, client_token
from runner.spec.identity import full_description, marker
from runner.spec.models import LAST_RUN, Manifest
from runner.state.ledger import LedgerStore
from runner.state.records import LedgerRecord, report_location
from runner.support.log import Log


@dataclass
class ApplyResult:
    """What apply did: (action, job ID) pairs, and the errors met."""

    done: list[tuple[Action, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build_request(
    item: DesiredJob, action: Action, service: JobService, manifest_data: bytes | None
) -> JobRequest:
    """The CreateJob request of one generation of a spec."""
    spec = item.job.spec
    name = item.job.metadata.name
    manifest = spec.manifest
    if manifest.file is not None:
        if manifest_data is None:
            raise ValueError(f"{name}: the repository manifest was not read")
        manifest = Manifest(csv=service.stage_manifest(name, manifest_data))
    if manifest.generate is not None and manifest.generate.filters.created_after == LAST_RUN:
        # The previous run's creation, not its scheduled time: objects written while it
        # was being listed come again rather than never (a repeat is safe, a gap is not).
        since = (
            datetime.fromtimestamp(action.window_start, UTC)
            if action.window_start is not None
            else None
        )
        filters = manifest.generate.filters.model_copy(update={"created_after": since})
        manifest = Manifest(generate=manifest.generate.model_copy(update={"filters": filters}))
    assert action.generation is not None
    return JobRequest(
        operation=spec.operation,
        manifest=manifest,
        report=spec.report,
        priority=spec.priority,
        confirmation_required=spec.confirmation == "manual" or action.staged,
        description=full_description(spec.description, name, item.spec_hash),
        client_request_token=client_token(item.key[0], name, item.spec_hash, action.generation),
    )


def _create(service: JobService, request: JobRequest, text: str, log: Log | None) -> str:
    try:
        return service.create_job(request)
    except (JobServiceError, OSError) as exc:
        if isinstance(exc, JobServiceError) and not exc.retryable:
            raise
        if log:
            log(f"CreateJob outcome unknown ({exc}); looking for the job before retrying")
    page = service.list_jobs(description=text)
    for job in page.jobs:
        if job.description.endswith(text):
            return job.job_id
    return service.create_job(request)


def apply_plan(
    plan: Plan,
    desired: Mapping[tuple[str, str], DesiredJob],
    services: Mapping[str, JobService],
    ledger: LedgerStore,
    *,
    manifests: Mapping[tuple[str, str], bytes] | None = None,
    log: Log | None = None,
) -> ApplyResult:
    """Carry out every change of ``plan``; return what was done and what failed."""
    result = ApplyResult()
    for record in plan.adoptions:
        ledger.record(record)
        ledger.note(record.target, record.name, "adopt", record.job_id, "found by its marker")
    for action in (*plan.actions, *plan.orphans):
        if not action.kind.changes:
            continue
        service = services[action.target]
        try:
            job_id = _apply_one(action, desired, service, ledger, manifests or {}, log)
        except (JobServiceError, OSError, ValueError) as exc:
            code = getattr(exc, "code", type(exc).__name__)
            message = getattr(exc, "message", str(exc))
            result.errors.append(
                f"{action.target}/{action.name}: {action.kind.value}: {code}: {message}"
            )
            continue
        result.done.append((action, job_id))
        ledger.note(action.target, action.name, action.kind.value, job_id, action.reason)
    return result


def _apply_one(
    action: Action,
    desired: Mapping[tuple[str, str], DesiredJob],
    service: JobService,
    ledger: LedgerStore,
    manifests: Mapping[tuple[str, str], bytes],
    log: Log | None,
) -> str | None:
    kind = action.kind
    if kind in (ActionKind.CREATE, ActionKind.STAGE, ActionKind.RECREATE):
        item = desired[action.key]
        request = build_request(item, action, service, manifests.get(action.key))
        text = marker(item.job.metadata.name, item.spec_hash)
        job_id = _create(service, request, text, log)
        report = item.job.spec.report
        assert action.generation is not None
        ledger.record(
            LedgerRecord(
                target=action.target,
                name=action.name,
                generation=action.generation,
                job_id=job_id,
                spec_hash=item.spec_hash,
                status=JobStatus.NEW,
                created=time.time(),
                immutable=item.immutable,
                staged=action.staged,
                slot=action.slot,
                report=report_location(report.bucket, report.prefix, job_id) if report else None,
            )
        )
        return job_id
    assert action.job_id is not None
    if kind is ActionKind.CONFIRM:
        service.update_job_status(action.job_id, JobStatus.READY, "dependencies hold (batchctl)")
    elif kind is ActionKind.SET_PRIORITY:
        assert action.priority is not None
        service.update_job_priority(action.job_id, action.priority)
    elif kind is ActionKind.CANCEL:
        _cancel_quietly(service, action.job_id, action.reason[:256])
    elif kind is ActionKind.DELETE:
        inner = getattr(service, "inner", service)
        if not isinstance(inner, DeletesJobs):
            raise ValueError(f"target {action.target} does not delete jobs")
        # Deleting loses nothing (the ledger keeps the job's record, counts and failure),
        # and a job deleted already — an answer lost on a retried pass — is what was asked.
        with contextlib.suppress(NotFound):
            inner.delete_job(action.job_id)
    return action.job_id


def _cancel_quietly(service: JobService, job_id: str, reason: str) -> None:
    """Cancel; a job that is already final or stopping is fine as it is."""
    with contextlib.suppress(JobStatusError):
        service.update_job_status(job_id, JobStatus.CANCELLED, reason)
