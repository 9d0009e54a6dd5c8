"""`batchctl jobs …`: the seed's console features for the jobs of a target.

A job is named by its ID or, for a job batchctl made, by its spec's name: the current
generation's job, on the spec's target. ``confirm`` keeps batchctl's sequencing: a
managed job whose dependencies do not hold is not confirmed without ``--force``.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.backends.base import JobService, report_location
from runner.backends.local import LocalBackend
from runner.cli import exitcodes
from runner.cli.app import TextOrJson, app
from runner.cli.errors import CommandError
from runner.cli.project import DirOption, jobs_folder
from runner.cli.targets import (
    current_record,
    ledger_history,
    ledger_records,
    load_specs,
    note_approval,
)
from runner.cli.targets import target_backend as open_target
from runner.jobs.models import JobDetail, JobSummary
from runner.jobs.status import JobStatus
from runner.reconcile.model import Action, ActionKind
from runner.reports.views import state_label
from runner.spec.capabilities import CAPABILITIES
from runner.spec.identity import parse_marker
from runner.state.records import APPROVE, approval_detail, approvals_in

jobs_app = typer.Typer(
    help="List, inspect, reprioritise, confirm and cancel jobs (by ID or spec name).",
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")

TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target", "-t", help="Target name (default: the spec's target for a name, else local)."
    ),
]
OutputOption = Annotated[TextOrJson, typer.Option("--output", "-o", help="text or json.")]
JobArgument = Annotated[
    str, typer.Argument(metavar="NAME|ID", help="A spec name (its current job) or a job ID.")
]


def _json(value: JobSummary | JobDetail) -> dict[str, object]:
    data: dict[str, object] = value.model_dump(mode="json", by_alias=True)
    return data


def _progress(job: JobSummary) -> str:
    p = job.progress
    text = f"{p.succeeded + p.failed}/{p.total}"
    return f"{text} ({p.failed} failed)" if p.failed else text


def _name(job: JobSummary) -> str:
    marker = parse_marker(job.description)
    return marker.name if marker else ""


def _resolve(folder: Path, ref: str, target: str | None) -> tuple[str, str]:
    """(target, job ID) of a spec name's current job, or of a job ID."""
    specs = load_specs(folder)
    named = sorted(
        loaded.job.spec.target
        for loaded in specs.jobs
        if loaded.job.metadata.name == ref and target in (None, loaded.job.spec.target)
    )
    if len(named) > 1:
        raise CommandError(
            f"{ref!r} names a job on targets {', '.join(named)}: pass --target", exitcodes.USAGE
        )
    if not named:
        return target or "local", ref
    record = current_record(ledger_records(folder, specs), ref, named[0])
    if record is not None:
        return named[0], record.job_id
    with open_target(folder, named[0], read_only=True) as backend:
        found = [j for j in _all_jobs(backend) if _name(j) == ref]
    if not found:
        raise CommandError(
            f"{ref} has no job on target {named[0]} yet: `batchctl apply` creates it"
        )
    return named[0], max(found, key=lambda j: j.created_at).job_id


def _all_jobs(backend: JobService, statuses: list[JobStatus] | None = None) -> Iterator[JobSummary]:
    token: str | None = None
    while True:
        page = backend.list_jobs(statuses=statuses or (), next_token=token)
        yield from page.jobs
        token = page.next_token
        if not token:
            return


def _plan_actions(folder: Path) -> dict[str, Action]:
    """Each managed job's action in a read-only plan, by job ID (nothing is written)."""
    from runner.cli.reconcile import controller  # the reconcile wiring, read-only

    with controller(folder, state=None, read_only=True) as ctl:
        result = ctl.run_pass(apply=False)
    return {a.job_id: a for a in result.plan.actions if a.job_id}


@jobs_app.command("list")
def list_jobs(
    folder: DirOption = None,
    target: TargetOption = None,
    status: Annotated[
        list[JobStatus] | None, typer.Option("--status", "-s", help="Only these statuses.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Only the jobs of this spec name.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Only descriptions containing this text.")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--id", help="Only this job ID.")] = None,
    output: OutputOption = TextOrJson.text,
) -> int:
    """Jobs of the last 90 days, newest first; a staged job and one awaiting a person differ."""
    jobs_dir = jobs_folder(option=folder)
    with open_target(jobs_dir, target or "local", read_only=True) as backend:
        jobs: list[JobSummary] = []
        token: str | None = None
        while True:
            page = backend.list_jobs(
                statuses=status or (), next_token=token, description=description, job_id=job_id
            )
            jobs.extend(page.jobs)
            token = page.next_token
            if not token:
                break
    if name is not None:
        jobs = [j for j in jobs if _name(j) == name]
    states: dict[str, str] = {}
    if any(j.status is JobStatus.SUSPENDED and _name(j) for j in jobs):
        try:
            actions = _plan_actions(jobs_dir)
        except Exception as exc:  # the labels are a help; the list stands without them
            typer.echo(f"batchctl: cannot tell staged jobs apart: {exc}", err=True)
            actions = {}
        for job in jobs:
            action = actions.get(job.job_id)
            if action is not None and job.status is JobStatus.SUSPENDED:
                label = state_label(action)
                if label != job.status.value:
                    states[job.job_id] = f"Suspended ({label.lower()})"
    if output is TextOrJson.json:
        rows = [
            {**_json(j), "name": _name(j) or None, "state": states.get(j.job_id, j.status.value)}
            for j in jobs
        ]
        typer.echo(json.dumps({"jobs": rows}, indent=2))
        return exitcodes.OK
    if not jobs:
        typer.echo("no jobs")
        return exitcodes.OK
    table = [
        (
            j.job_id,
            _name(j) or "-",
            states.get(j.job_id, j.status.value),
            str(j.priority),
            _progress(j),
            j.operation,
            j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            j.description,
        )
        for j in jobs
    ]
    header = (
        "JOB ID",
        "NAME",
        "STATUS",
        "PRIORITY",
        "PROGRESS",
        "OPERATION",
        "CREATED (UTC)",
        "DESCRIPTION",
    )
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header) - 1)]
    for row in [header, *table]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())
    return exitcodes.OK


@jobs_app.command("describe")
def describe(
    ref: JobArgument,
    folder: DirOption = None,
    target: TargetOption = None,
    output: OutputOption = TextOrJson.text,
) -> int:
    """Everything about one job."""
    jobs_dir = jobs_folder(option=folder)
    target_name, job_id = _resolve(jobs_dir, ref, target)
    with open_target(jobs_dir, target_name, read_only=True) as backend:
        job = backend.describe_job(job_id)
        found = report_location(job.report, job_id) if job.status.final else None
        report = {"bucket": found[0], "key": found[1]} if found else None
    if output is TextOrJson.json:
        data = _json(job)
        data["reportLocation"] = report
        data["name"] = _name(job) or None
        typer.echo(json.dumps(data, indent=2))
        return exitcodes.OK
    p = job.progress
    lines = [
        f"Job:          {job.job_id}",
        *([f"Name:         {_name(job)} (target {target_name})"] if _name(job) else []),
        f"Status:       {job.status.value}"
        + (f" ({job.status_update_reason})" if job.status_update_reason else ""),
        f"Description:  {job.description}",
        f"Priority:     {job.priority}",
        f"Operation:    {job.operation} "
        f"{json.dumps(job.operation_params.get(job.operation, job.operation_params))}",
        f"Manifest:     {json.dumps(job.manifest)}",
        f"Progress:     {p.succeeded} succeeded, {p.failed} failed of {p.total} "
        f"({p.elapsed_seconds:.1f} s active)",
        f"Created:      {job.created_at.isoformat()}",
    ]
    if job.suspended_at:
        lines.append(f"Suspended:    {job.suspended_at.isoformat()} ({job.suspended_cause})")
    if job.terminated_at:
        lines.append(f"Terminated:   {job.terminated_at.isoformat()}")
    for failure in job.failure_reasons:
        lines.append(f"Failure:      {failure.code}: {failure.reason}")
    if report:
        lines.append(f"Report:       s3://{report['bucket']}/{report['key']}")
    elif job.report:
        bucket = job.report.get("bucket") or job.report.get("Bucket")
        prefix = job.report.get("prefix") or job.report.get("Prefix") or ""
        lines.append(f"Report:       to {bucket} under {prefix or '/'}")
    typer.echo("\n".join(lines))
    return exitcodes.OK


@jobs_app.command("priority")
def priority(
    ref: JobArgument,
    value: Annotated[int, typer.Argument(metavar="N", min=0, max=2_147_483_647)],
    folder: DirOption = None,
    target: TargetOption = None,
) -> int:
    """Change a job's priority (takes effect at once; never an ordering guarantee)."""
    jobs_dir = jobs_folder(option=folder)
    target_name, job_id = _resolve(jobs_dir, ref, target)
    with open_target(jobs_dir, target_name) as backend:
        backend.update_job_priority(job_id, value)
    typer.echo(f"job {job_id}: priority {value}")
    return exitcodes.OK


def _unmet(folder: Path, target: str, name: str, job_id: str) -> str | None:
    """Why a managed job must not be confirmed yet (its dependencies), or None."""
    try:
        action = _plan_actions(folder).get(job_id)
    except CommandError as exc:
        return f"its dependencies cannot be checked ({exc.message})"
    if action is None or action.key != (target, name):
        return None  # not the current generation of a spec: nothing batchctl sequences
    if action.kind in (ActionKind.WAIT, ActionKind.BLOCKED):
        reason = action.reason.removeprefix("staged; ")
        return reason.removeprefix("blocked: ")
    return None


def _approve_held(folder: Path, ref: str, target: str | None) -> bool:
    """Approve a manual job that batchctl holds before creating it; False when ``ref`` is
    not a spec on a target without confirmation (the job's own confirmation applies)."""
    specs = load_specs(folder)
    found = [
        loaded
        for loaded in specs.jobs
        if loaded.job.metadata.name == ref and target in (None, loaded.job.spec.target)
    ]
    if len(found) != 1:
        return False  # a job ID, or a name on several targets: _resolve says which
    spec = found[0].job.spec
    kind = specs.targets[spec.target].kind if spec.target in specs.targets else ""
    caps = CAPABILITIES.get(kind)
    if caps is None or caps.confirmation:
        return False
    key = (spec.target, ref)
    if spec.confirmation != "manual":
        raise CommandError(
            f"{ref} does not wait for a person (confirmation: {spec.confirmation}); "
            f"{kind} jobs start when batchctl creates them"
        )
    action = _plan_by_key(folder).get(key)
    if action is None:
        raise CommandError(f"{ref} is not in this campaign's plan")
    if action.job_id and not action.awaiting_confirmation:
        raise CommandError(
            f"{ref}'s job {action.job_id} exists already: {kind} jobs start when created, so "
            "there is nothing to confirm"
        )
    if not action.awaiting_confirmation:
        if action.kind in (ActionKind.WAIT, ActionKind.BLOCKED):
            why = action.reason.removeprefix("blocked: ")
            raise CommandError(
                f"refusing to confirm {ref}: its dependencies do not hold: {why}. On {kind}, "
                "batchctl creates the job and only once they hold; confirm it then"
            )
        raise CommandError(f"{ref} is confirmed already: {action.reason}")
    assert action.generation is not None
    by = getpass.getuser()
    note_approval(
        folder, specs, spec.target, ref, approval_detail(action.generation, action.spec_hash, by)
    )
    typer.echo(
        f"{ref}: confirmed (generation {action.generation}) by {by}; the next "
        "`batchctl reconcile` creates its job, which starts at once"
    )
    return True


def _plan_by_key(folder: Path) -> dict[tuple[str, str], Action]:
    """Each spec's action in a read-only plan (nothing is written)."""
    from runner.cli.reconcile import controller  # the reconcile wiring, read-only

    with controller(folder, state=None, read_only=True) as ctl:
        result = ctl.run_pass(apply=False)
    return {a.key: a for a in result.plan.actions}


@jobs_app.command("confirm")
def confirm(
    ref: JobArgument,
    folder: DirOption = None,
    target: TargetOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Confirm even though the job's dependsOn do not hold."),
    ] = False,
) -> int:
    """Confirm a Suspended job so that it runs; refused while its dependencies do not hold.

    On a target without confirmation (gcs), a manual job is held before it is created:
    this records the approval, and the next reconcile creates it.
    """
    jobs_dir = jobs_folder(option=folder)
    if _approve_held(jobs_dir, ref, target):
        return exitcodes.OK
    target_name, job_id = _resolve(jobs_dir, ref, target)
    with open_target(jobs_dir, target_name, read_only=True) as backend:
        detail = backend.describe_job(job_id)
    marker = parse_marker(detail.description)
    unmet = _unmet(jobs_dir, target_name, marker.name, job_id) if marker else None
    if unmet is not None and not force:
        raise CommandError(
            f"refusing to confirm {marker.name if marker else job_id} (job {job_id}): its "
            f"dependencies do not hold: {unmet}. batchctl confirms a staged job itself once "
            "they do; --force confirms it now anyway"
        )
    if unmet is not None:
        typer.echo(
            f"batchctl: warning: confirming job {job_id} although its dependencies do not "
            f"hold ({unmet}): --force",
            err=True,
        )
    with open_target(jobs_dir, target_name) as backend:
        status = backend.update_job_status(job_id, JobStatus.READY, "confirmed with batchctl")
    typer.echo(f"job {job_id}: {status.value}")
    return exitcodes.OK


@jobs_app.command("cancel")
def cancel(
    ref: JobArgument,
    folder: DirOption = None,
    target: TargetOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded as the status reason.")] = (
        "cancelled with batchctl"
    ),
) -> int:
    """Cancel a job (Cancelling, then Cancelled once its running tasks finish)."""
    jobs_dir = jobs_folder(option=folder)
    target_name, job_id = _resolve(jobs_dir, ref, target)
    with open_target(jobs_dir, target_name) as backend:
        status = backend.update_job_status(job_id, JobStatus.CANCELLED, reason)
    typer.echo(f"job {job_id}: {status.value}")
    return exitcodes.OK


def _iso(at: datetime | float) -> str:
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _approval_entry(
    entries: list[dict[str, object]], approval: tuple[str, str, int, str]
) -> dict[str, Any] | None:
    """The event of a person's approval of a job batchctl held before creating it."""
    for entry in entries:
        if approvals_in([entry]) == {approval}:
            by = json.loads(str(entry["detail"])).get("by") or "someone"
            return {
                "at": _iso(float(str(entry["at"]))),
                "source": "batchctl",
                "from": None,
                "to": APPROVE,
                "reason": f"confirmed by {by} before the job was created",
            }
    return None


@jobs_app.command("history")
def history(
    ref: JobArgument,
    folder: DirOption = None,
    target: TargetOption = None,
    output: OutputOption = TextOrJson.text,
) -> int:
    """A job's status changes with their times and reasons, and what batchctl did to it."""
    jobs_dir = jobs_folder(option=folder)
    target_name, job_id = _resolve(jobs_dir, ref, target)
    events: list[dict[str, Any]] = []
    with open_target(jobs_dir, target_name, read_only=True) as backend:
        inner = getattr(backend, "inner", backend)
        if isinstance(inner, LocalBackend):
            for at, old, new, why in inner.engine.events(job_id):
                events.append(
                    {"at": _iso(at), "source": "engine", "from": old, "to": new, "reason": why}
                )
        detail = backend.describe_job(job_id)
    specs = load_specs(jobs_dir)
    generation = next(
        (r.generation for r in ledger_records(jobs_dir, specs) if r.job_id == job_id), None
    )
    entries = ledger_history(jobs_dir, specs)
    for approval in approvals_in(entries):  # given before the job existed (gcs): no job ID
        if approval[:3] == (target_name, _name(detail), generation):
            approved = _approval_entry(entries, approval)
            if approved is not None:
                events.append(approved)
    for entry in entries:
        if entry["jobId"] == job_id:
            events.append(
                {
                    "at": _iso(float(str(entry["at"]))),
                    "source": "batchctl",
                    "from": None,
                    "to": str(entry["action"]),
                    "reason": entry["detail"],
                }
            )
    if not isinstance(inner, LocalBackend):  # the service keeps only its latest status
        events.append(
            {
                "at": _iso(detail.terminated_at or datetime.now(UTC)),
                "source": "service",
                "from": None,
                "to": detail.status.value,
                "reason": detail.status_update_reason,
            }
        )
    events.sort(key=lambda e: str(e["at"]))
    if output is TextOrJson.json:
        typer.echo(json.dumps({"jobId": job_id, "name": _name(detail) or None, "events": events}))
        return exitcodes.OK
    name = _name(detail)
    typer.echo(f"job {job_id}" + (f" ({name} on {target_name})" if name else ""))
    for event in events:
        change = f"{event['from']} → {event['to']}" if event["from"] else str(event["to"])
        typer.echo(
            f"  {event['at']}  {event['source']:<8}  {change}"
            + (f": {event['reason']}" if event["reason"] else "")
        )
    return exitcodes.OK
