"""`batchctl report NAME_OR_JOB_ID`: a job's completion report, summed up and rendered."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.backends.base import report_location
from runner.backends.local import LocalBackend
from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.errors import CommandError
from runner.cli.targets import load_specs, project_root, target_backend
from runner.jobs.errors import NotFound
from runner.reconcile.model import LedgerRecord
from runner.reports.completion import CompletionReport, ReportUnreadable, read_report
from runner.reports.environment import UserTemplateError, render, render_user_template
from runner.reports.views import job_view
from runner.state import (
    LocalState,
    State,
    StateError,
    StateLocation,
    state_location,
    target_locations,
)


class ReportOutput(StrEnum):
    """Formats of `report`."""

    md = "md"
    html = "html"
    json = "json"


def _records(location: StateLocation) -> list[LedgerRecord]:
    if isinstance(location, LocalState) and not (location.folder / "ledger.db").exists():
        return []  # read-only: no ledger is made here
    ledger = State(location).open_ledger()
    try:
        return ledger.records()
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        ledger.close()


def _find(places: list[StateLocation], wanted: str, target: str | None) -> LedgerRecord | None:
    records = [r for place in places for r in _records(place)]
    for record in records:
        if record.job_id == wanted:
            return record
    named = [r for r in records if r.name == wanted and (target is None or r.target == target)]
    return max(named, key=lambda r: r.generation) if named else None


@app.command()
def report(
    name_or_id: Annotated[str, typer.Argument(metavar="JOB_OR_NAME")],
    folder: Annotated[Path, typer.Option("--dir", help="Jobs folder.")] = Path("jobs.d"),
    target: Annotated[str | None, typer.Option("--target", "-t")] = None,
    output: Annotated[ReportOutput, typer.Option("--output", "-o")] = ReportOutput.md,
    template: Annotated[
        Path | None, typer.Option("--template", help="Render with this Jinja template instead.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", metavar="PATH|s3://BUCKET/PREFIX", help="Where the ledger is."),
    ] = None,
) -> int:
    """Sum up a job's completion report: totals, failures by error code, the raw files."""
    specs = load_specs(folder)
    try:
        location = state_location(folder, state)
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    places = [location, *target_locations(specs, project_root(folder)).values()]
    record = _find(places, name_or_id, target)
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
    with target_backend(folder, target_name) as backend:
        try:
            detail = backend.describe_job(job_id)
        except NotFound as exc:
            raise CommandError(
                f"no job {name_or_id!r}: neither a job name in the ledger nor a job ID on "
                f"target {target_name!r}"
            ) from exc
        if isinstance(backend, LocalBackend):
            written = backend.engine.report_location(job_id)
            found = (written["bucket"], written["key"]) if written else None
        else:
            found = report_location(detail.report, job_id) if detail.status.final else None
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
        try:
            typer.echo(render_user_template(template, view).rstrip("\n"))
        except UserTemplateError as exc:
            raise CommandError(str(exc)) from exc
        return exitcodes.OK
    if output is ReportOutput.json:
        typer.echo(json.dumps(view, indent=2))
    else:
        typer.echo(render(f"job.{output.value}.j2", view).rstrip("\n"))
    return exitcodes.OK
