"""`batchctl jobs …`: the seed's console features for the jobs of a target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from runner.backends.base import report_location
from runner.cli import exitcodes
from runner.cli.app import TextOrJson, app
from runner.cli.targets import target_backend
from runner.jobs.models import JobDetail, JobSummary
from runner.jobs.status import JobStatus

jobs_app = typer.Typer(
    help="List, inspect, reprioritise, confirm and cancel jobs.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")

DirOption = Annotated[Path, typer.Option("--dir", help="Jobs folder (targets are declared there).")]
TargetOption = Annotated[str, typer.Option("--target", "-t", help="Target name.")]
OutputOption = Annotated[TextOrJson, typer.Option("--output", "-o", help="text or json.")]


def _json(value: JobSummary | JobDetail) -> dict[str, object]:
    data: dict[str, object] = value.model_dump(mode="json", by_alias=True)
    return data


def _progress(job: JobSummary) -> str:
    p = job.progress
    text = f"{p.succeeded + p.failed}/{p.total}"
    return f"{text} ({p.failed} failed)" if p.failed else text


@jobs_app.command("list")
def list_jobs(
    folder: DirOption = Path("jobs.d"),
    target: TargetOption = "local",
    status: Annotated[
        list[JobStatus] | None, typer.Option("--status", "-s", help="Only these statuses.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Only descriptions containing this text.")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--id", help="Only this job ID.")] = None,
    output: OutputOption = TextOrJson.text,
) -> int:
    """Jobs of the last 90 days, newest first."""
    with target_backend(folder, target) as backend:
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
    if output is TextOrJson.json:
        typer.echo(json.dumps({"jobs": [_json(j) for j in jobs]}, indent=2))
        return exitcodes.OK
    if not jobs:
        typer.echo("no jobs")
        return exitcodes.OK
    rows = [
        (
            j.job_id,
            j.status.value,
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
        "STATUS",
        "PRIORITY",
        "PROGRESS",
        "OPERATION",
        "CREATED (UTC)",
        "DESCRIPTION",
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())
    return exitcodes.OK


@jobs_app.command("describe")
def describe(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    folder: DirOption = Path("jobs.d"),
    target: TargetOption = "local",
    output: OutputOption = TextOrJson.text,
) -> int:
    """Everything about one job."""
    with target_backend(folder, target) as backend:
        job = backend.describe_job(job_id)
        found = report_location(job.report, job_id) if job.status.final else None
        report = {"bucket": found[0], "key": found[1]} if found else None
    if output is TextOrJson.json:
        data = _json(job)
        data["reportLocation"] = report
        typer.echo(json.dumps(data, indent=2))
        return exitcodes.OK
    p = job.progress
    lines = [
        f"Job:          {job.job_id}",
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
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    value: Annotated[int, typer.Argument(metavar="N", min=0, max=2_147_483_647)],
    folder: DirOption = Path("jobs.d"),
    target: TargetOption = "local",
) -> int:
    """Change a job's priority (takes effect at once; never an ordering guarantee)."""
    with target_backend(folder, target) as backend:
        backend.update_job_priority(job_id, value)
    typer.echo(f"job {job_id}: priority {value}")
    return exitcodes.OK


@jobs_app.command("confirm")
def confirm(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    folder: DirOption = Path("jobs.d"),
    target: TargetOption = "local",
) -> int:
    """Confirm a Suspended job so that it runs."""
    with target_backend(folder, target) as backend:
        status = backend.update_job_status(job_id, JobStatus.READY, "confirmed with batchctl")
    typer.echo(f"job {job_id}: {status.value}")
    return exitcodes.OK


@jobs_app.command("cancel")
def cancel(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    folder: DirOption = Path("jobs.d"),
    target: TargetOption = "local",
    reason: Annotated[str, typer.Option("--reason", help="Recorded as the status reason.")] = (
        "cancelled with batchctl"
    ),
) -> int:
    """Cancel a job (Cancelling, then Cancelled once its running tasks finish)."""
    with target_backend(folder, target) as backend:
        status = backend.update_job_status(job_id, JobStatus.CANCELLED, reason)
    typer.echo(f"job {job_id}: {status.value}")
    return exitcodes.OK
