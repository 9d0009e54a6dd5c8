"""`batchctl report NAME_OR_JOB_ID`: a job's completion report, summed up and rendered."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from runner.backends.reports import CompletionReport, ReportUnreadable, read_report
from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.errors import CommandError
from runner.cli.project import DirOption, jobs_folder
from runner.cli.targets import ledger_records, load_specs, target_backend
from runner.cli.templates import (
    DEFAULT_TIMEOUT,
    TemplateOption,
    TemplateTimeoutOption,
    echo_user_template,
)
from runner.jobs.errors import NotFound
from runner.reconcile.failures import report_of
from runner.reports.environment import render
from runner.reports.views import job_view
from runner.state.records import LedgerRecord


class ReportOutput(StrEnum):
    """Formats of `report`."""

    md = "md"
    html = "html"
    json = "json"


def _find(records: list[LedgerRecord], wanted: str, target: str | None) -> LedgerRecord | None:
    for record in records:
        if record.job_id == wanted:
            return record
    named = [r for r in records if r.name == wanted and (target is None or r.target == target)]
    return max(named, key=lambda r: r.generation) if named else None


@app.command()
def report(
    name_or_id: Annotated[str, typer.Argument(metavar="JOB_OR_NAME")],
    folder: DirOption = None,
    target: Annotated[str | None, typer.Option("--target", "-t")] = None,
    output: Annotated[ReportOutput, typer.Option("--output", "-o")] = ReportOutput.md,
    template: TemplateOption = None,
    template_timeout: TemplateTimeoutOption = DEFAULT_TIMEOUT,
    state: Annotated[
        str | None,
        typer.Option("--state", metavar="PATH|s3://BUCKET/PREFIX", help="Where the ledger is."),
    ] = None,
) -> int:
    """Sum up a job's completion report: totals, failures by error code, the raw files."""
    jobs = jobs_folder(option=folder)
    specs = load_specs(jobs)
    record = _find(ledger_records(jobs, specs, state), name_or_id, target)
    job_id = record.job_id if record else name_or_id
    target_name = record.target if record else (target or "local")
    spec: dict[str, Any] | None = None
    if record is not None:
        spec = {
            "name": record.name,
            "target": record.target,
            "specHash": record.spec_hash,
            "generation": record.generation,
        }
    completion: CompletionReport | None = None
    url: str | None = None
    with target_backend(jobs, target_name) as backend:
        try:
            detail = backend.describe_job(job_id)
        except NotFound as exc:
            raise CommandError(
                f"no job {name_or_id!r}: neither a job name in the ledger nor a job ID on "
                f"target {target_name!r}"
            ) from exc
        found = report_of(backend, detail)
        if found is not None:
            url = f"s3://{found[0]}/{found[1]}"
            try:
                completion = read_report(backend.report_store(), *found)
            except ReportUnreadable as exc:
                raise CommandError(str(exc)) from exc
        elif detail.report is not None and not detail.status.final:
            raise CommandError(
                f"job {job_id} is {detail.status.value}: its completion report is written "
                "when it ends"
            )
    view = job_view(detail.model_dump(mode="json", by_alias=True), completion, spec, url)
    if template is not None:
        echo_user_template(template, view, template_timeout)
        return exitcodes.OK
    if output is ReportOutput.json:
        typer.echo(json.dumps(view, indent=2))
    else:
        typer.echo(render(f"job.{output.value}.j2", view).rstrip("\n"))
    return exitcodes.OK
