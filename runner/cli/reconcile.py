"""`batchctl plan`, `apply`, `reconcile` and `status`: the reconcile loop from the command line."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.backends import BackendUnavailable
from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.errors import CommandError
from runner.cli.live import LiveView
from runner.engine.lock import LockHeld
from runner.engine.stores import StoreUnavailable
from runner.reconcile.controller import (
    Controller,
    ReconcileError,
    awaiting,
    failed_or_blocked,
    settled,
    troubled,
)
from runner.reconcile.model import Plan, PlanError
from runner.reports.environment import UserTemplateError, render, render_user_template
from runner.reports.views import plan_view
from runner.spec.errors import SpecInvalid
from runner.state import StateError, state_location


class PlanOutput(StrEnum):
    """Formats of `plan`."""

    text = "text"
    md = "md"
    json = "json"


class StatusOutput(StrEnum):
    """Formats of `status`."""

    text = "text"
    md = "md"
    html = "html"
    json = "json"


MARKDOWN_LIMIT = 65_536  # a GitHub pull-request comment


def markdown(template: str, view: dict[str, Any]) -> str:
    """Render markdown that fits a pull-request comment: summarised when the full one does not."""
    text = render(template, view).rstrip("\n")
    if len(text) < MARKDOWN_LIMIT:
        return text
    text = render(template, {**view, "summaryOnly": True}).rstrip("\n")
    if len(text) < MARKDOWN_LIMIT:
        return text
    cut = text[: MARKDOWN_LIMIT - 200].rsplit("\n", 1)[0]
    return cut + "\n\n… cut to fit a comment; run `batchctl status` for everything."


DirArgument = Annotated[Path, typer.Argument(metavar="DIR", help="Jobs folder.", show_default=True)]
StateOption = Annotated[
    str | None,
    typer.Option(
        "--state",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="Where the ledger and lock live: a folder or a bucket prefix; default "
        "batchctl.yaml's state, else .batchctl beside DIR.",
    ),
]
PruneOption = Annotated[
    bool, typer.Option("--prune", help="Cancel live managed jobs whose spec is gone.")
]
ReplaceOption = Annotated[
    list[str] | None,
    typer.Option("--replace", metavar="NAME", help="Create a new generation of this job."),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show the API calls made.")]
LockTimeoutOption = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait for the reconcile lock.")
]
NoLockOption = Annotated[
    bool,
    typer.Option(
        "--no-lock",
        help="Read only: take no lock and write nothing to the state (for a read-only role, "
        "such as plans of pull requests).",
    ),
]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _err(text: str) -> None:
    typer.echo(text, err=True)


@contextlib.contextmanager
def controller(
    folder: Path,
    *,
    state: str | None,
    prune: bool = False,
    replace: list[str] | None = None,
    verbose: bool = False,
    lock_timeout: float = 0.0,
    read_only: bool = False,
) -> Iterator[Controller]:
    """A Controller, with every failure turned into a message and an exit code."""
    try:
        location = state_location(folder, state)
    except SpecInvalid as exc:
        for error in exc.errors:
            _err(str(error))
        raise CommandError(
            f"{len(exc.errors)} error(s) in batchctl.yaml; nothing was done"
        ) from exc
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    try:
        ctl = Controller(
            folder,
            state=location,
            prune=prune,
            replace=replace or (),
            log=lambda text: _err(f"{_stamp()} {text}"),
            trace=(lambda text: _err(f"api: {text}")) if verbose else None,
            lock_timeout=lock_timeout,
            read_only=read_only,
        )
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    except LockHeld as exc:
        raise CommandError(
            f"another reconcile holds {exc.where} "
            f"({exc.holder or 'unknown holder'}); retry later or pass --lock-timeout SECONDS"
        ) from exc
    try:
        yield ctl
    except SpecInvalid as exc:
        for error in exc.errors:
            _err(str(error))
        raise CommandError(f"{len(exc.errors)} error(s) in {folder}; nothing was applied") from exc
    except PlanError as exc:
        for problem in exc.problems:
            _err(problem)
        raise CommandError("the plan cannot be made; nothing was applied") from exc
    except (ReconcileError, BackendUnavailable, StoreUnavailable, StateError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        ctl.close()


def render_plan(plan: Plan, output: PlanOutput) -> str:
    """The plan as text, markdown or JSON."""
    view = plan_view(plan)
    if output is PlanOutput.json:
        return json.dumps(view, indent=2)
    if output is PlanOutput.md:
        return markdown("plan.md.j2", {**view, "generatedAt": _stamp()})
    return render("plan.txt.j2", view).rstrip("\n")


@app.command()
def plan(
    folder: DirArgument = Path("jobs.d"),
    output: Annotated[PlanOutput, typer.Option("--output", "-o")] = PlanOutput.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when changes are pending.")
    ] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
    no_lock: NoLockOption = False,
) -> int:
    """Show what a reconcile pass would do; change nothing."""
    with controller(
        folder,
        state=state,
        prune=prune,
        replace=replace,
        verbose=verbose,
        lock_timeout=lock_timeout,
        read_only=no_lock,
    ) as ctl:
        result = ctl.run_pass(apply=False)
    typer.echo(render_plan(result.plan, output))
    if detailed_exitcode and result.plan.changes:
        return exitcodes.CHANGES
    return exitcodes.OK


def _report_applied(
    result_plan: Plan, done: list[tuple[object, str | None]], errors: list[str]
) -> None:
    for action, job_id in done:
        kind = getattr(action, "kind", None)
        name = getattr(action, "name", "?")
        verb = kind.value if kind else "?"
        typer.echo(f"{_stamp()} {verb} {name}" + (f": job {job_id}" if job_id else ""))
    for error in errors:
        _err(f"{_stamp()} error: {error}")


@app.command()
def apply(
    folder: DirArgument = Path("jobs.d"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
) -> int:
    """One reconcile pass: plan, then apply (asks first on a terminal unless --yes)."""
    with controller(
        folder,
        state=state,
        prune=prune,
        replace=replace,
        verbose=verbose,
        lock_timeout=lock_timeout,
    ) as ctl:
        preview = ctl.run_pass(apply=False)
        typer.echo(render_plan(preview.plan, PlanOutput.text))
        if not preview.plan.changes and not preview.plan.adoptions:
            return exitcodes.OK
        question = f"Apply {len(preview.plan.changes)} change(s)?"
        if not yes and sys.stdin.isatty() and not typer.confirm(question, default=False):
            typer.echo("Apply cancelled; nothing was changed.")
            return exitcodes.ERROR
        result = ctl.run_pass(apply=True)
        applied = result.applied
        if applied is None:
            return exitcodes.OK
        _report_applied(result.plan, list(applied.done), applied.errors)
        return exitcodes.ERROR if applied.errors else exitcodes.OK


@app.command()
def reconcile(
    folder: DirArgument = Path("jobs.d"),
    watch: Annotated[bool, typer.Option("--watch", help="Repeat the pass forever.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 2.0,
    until_done: Annotated[
        bool,
        typer.Option(
            "--until-done",
            help="Repeat until every job is final, blocked, or awaiting a person.",
        ),
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up after this many seconds.")
    ] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when work is still pending.")
    ] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
) -> int:
    """Reconcile: one pass, or --watch, or --until-done (running the local engine meanwhile)."""
    if interval <= 0:
        raise CommandError("--interval must be positive", exitcodes.USAGE)
    started = time.monotonic()
    with controller(
        folder,
        state=state,
        prune=prune,
        replace=replace,
        verbose=verbose,
        lock_timeout=lock_timeout,
    ) as ctl:
        looping = watch or until_done
        view = LiveView(sys.stdout.isatty())
        try:
            while True:
                result = ctl.run_pass(apply=True)
                if looping:
                    for target in ctl.start_engines():
                        _err(f"{_stamp()} running the engine of target {target} in this process")
                if result.applied is not None:
                    for error in result.applied.errors:
                        _err(f"{_stamp()} error: {error}")
                view.update(result.plan)
                if until_done and settled(result.plan):
                    break
                if not looping:
                    break
                if timeout is not None and time.monotonic() - started > timeout:
                    view.close()
                    raise CommandError(f"--timeout: still not done after {timeout:g} s")
                time.sleep(interval)
        finally:
            view.close()
        plan_now = result.plan
    if until_done:
        _summarise(plan_now)
    if troubled(plan_now):
        return exitcodes.FAILED
    if result.applied is not None and result.applied.errors:
        return exitcodes.ERROR
    if detailed_exitcode and not settled(plan_now):
        return exitcodes.CHANGES
    return exitcodes.OK


def _summarise(plan: Plan) -> None:
    bad = failed_or_blocked(plan)
    waiting = awaiting(plan)
    done = sum(1 for a in plan.actions if a.status is not None and a.status.final)
    typer.echo(
        f"{_stamp()} done: {done} final, {len(bad)} failed or blocked, "
        f"{len(waiting)} awaiting confirmation"
    )
    for line in bad:
        typer.echo(f"  ✗ {line}")
    for line in waiting:
        typer.echo(f"  ? {line}")
    if bad:
        typer.echo("  Fix the cause, then `batchctl apply --replace NAME` runs a new generation.")


@app.command()
def status(
    folder: DirArgument = Path("jobs.d"),
    output: Annotated[StatusOutput, typer.Option("--output", "-o")] = StatusOutput.text,
    template: Annotated[
        Path | None, typer.Option("--template", help="Render with this Jinja template instead.")
    ] = None,
    state: StateOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
    no_lock: NoLockOption = False,
) -> int:
    """The state of every managed job; exit 4 when one is Failed or Blocked."""
    with controller(
        folder, state=state, verbose=verbose, lock_timeout=lock_timeout, read_only=no_lock
    ) as ctl:
        result = ctl.run_pass(apply=False)
    view = {**plan_view(result.plan), "generatedAt": _stamp()}
    if template is not None:
        try:
            typer.echo(render_user_template(template, view).rstrip("\n"))
        except UserTemplateError as exc:
            raise CommandError(str(exc)) from exc
    elif output is StatusOutput.json:
        typer.echo(json.dumps(view, indent=2))
    elif output is StatusOutput.md:
        typer.echo(markdown("status.md.j2", view))
    else:
        suffix = "txt" if output is StatusOutput.text else output.value
        typer.echo(render(f"status.{suffix}.j2", view).rstrip("\n"))
    return exitcodes.FAILED if troubled(result.plan) else exitcodes.OK
