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
from runner.cli.errors import CommandError, echo_errors
from runner.cli.live import LiveView
from runner.cli.project import DirArgument, DirOption, jobs_folder
from runner.cli.templates import (
    DEFAULT_TIMEOUT,
    TemplateOption,
    TemplateTimeoutOption,
    echo_user_template,
)
from runner.reconcile.controller import (
    Controller,
    ReconcileError,
    UnknownCampaign,
    settled,
    troubled,
)
from runner.reconcile.estimate import estimate_view, money
from runner.reconcile.model import Plan, PlanError
from runner.reports.environment import render
from runner.reports.views import plan_view
from runner.spec.errors import SpecInvalid
from runner.state.location import StateError, state_location
from runner.stores import StoreUnavailable
from runner.support.filelock import LockHeld, LockUnavailable


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


CampaignOption = Annotated[
    str | None,
    typer.Option("--campaign", metavar="NAME", help="Only the jobs of this campaign."),
]
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
    bool,
    typer.Option(
        "--prune",
        help="Cancel live managed jobs whose spec is gone (on gcs, delete their finished jobs).",
    ),
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
    campaign: str | None = None,
) -> Iterator[Controller]:
    """A Controller, with every failure turned into a message and an exit code."""
    try:
        location = state_location(folder, state)
    except SpecInvalid as exc:
        echo_errors(exc.errors)
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
            campaign=campaign,
        )
    except SpecInvalid as exc:
        echo_errors(exc.errors)
        raise CommandError(f"{len(exc.errors)} error(s) in {folder}; nothing was done") from exc
    except (StateError, LockUnavailable) as exc:
        raise CommandError(str(exc)) from exc
    except LockHeld as exc:
        raise CommandError(
            f"another reconcile holds {exc.where} "
            f"({exc.holder or 'unknown holder'}); retry later or pass --lock-timeout SECONDS"
        ) from exc
    try:
        yield ctl
    except SpecInvalid as exc:
        echo_errors(exc.errors)
        raise CommandError(f"{len(exc.errors)} error(s) in {folder}; nothing was applied") from exc
    except PlanError as exc:
        for problem in exc.problems:
            _err(problem)
        raise CommandError("the plan cannot be made; nothing was applied") from exc
    except UnknownCampaign as exc:
        raise CommandError(str(exc), exitcodes.USAGE) from exc
    except (ReconcileError, BackendUnavailable, StoreUnavailable, StateError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        ctl.close()


def render_plan(
    plan: Plan,
    output: PlanOutput,
    notes: list[str] | None = None,
    estimate: dict[str, Any] | None = None,
) -> str:
    """The plan as text, markdown or JSON (with the estimate of its jobs, when made)."""
    view = plan_view(plan, notes=notes)
    if estimate is not None:
        view["estimate"] = estimate
    if output is PlanOutput.json:
        return json.dumps(view, indent=2)
    if output is PlanOutput.md:
        return markdown("plan.md.j2", {**view, "generatedAt": _stamp()})
    return render("plan.txt.j2", view).rstrip("\n")


@app.command()
def plan(
    folder: DirArgument = None,
    dir_option: DirOption = None,
    output: Annotated[PlanOutput, typer.Option("--output", "-o")] = PlanOutput.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when changes are pending.")
    ] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    campaign: CampaignOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
    no_lock: NoLockOption = False,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            metavar="USD",
            min=0,
            help="Exit 3 when the estimated cost is above USD, or not wholly known.",
        ),
    ] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate/--no-estimate",
            help="Count the objects of each job to create and estimate cost and duration.",
        ),
    ] = True,
) -> int:
    """Show what a reconcile pass would do, and what it would cost; change nothing.

    \b
    Exit 0 (with --detailed-exitcode: nothing to do), 2 changes pending
    (--detailed-exitcode), 3 above --max-cost, 1 error, 64 usage error.
    """
    if max_cost is not None and not estimate:
        raise CommandError("--max-cost needs the estimate: drop --no-estimate", exitcodes.USAGE)
    jobs = jobs_folder(folder, dir_option)
    with controller(
        jobs,
        state=state,
        prune=prune,
        replace=replace,
        verbose=verbose,
        lock_timeout=lock_timeout,
        read_only=no_lock,
        campaign=campaign,
    ) as ctl:
        result = ctl.run_pass(apply=False)
        notes = ctl.idle_engines(result.plan)
        made = ctl.estimate(result.plan) if estimate else None
    typer.echo(render_plan(result.plan, output, notes, estimate_view(made) if made else None))
    if max_cost is not None and made is not None:
        if made.usd > max_cost:
            _err(f"batchctl: the estimate, {money(made.usd)}, is above --max-cost {max_cost:g}")
            return exitcodes.COSTLY
        if not made.complete:
            _err(
                f"batchctl: the cost is not wholly known (priced part {money(made.usd)}; see "
                f"'not priced' above): treated as above --max-cost {max_cost:g}"
            )
            return exitcodes.COSTLY
    if detailed_exitcode and result.plan.changes:
        return exitcodes.CHANGES
    return exitcodes.OK


def _report_applied(done: list[tuple[object, str | None]], errors: list[str]) -> None:
    for action, job_id in done:
        kind = getattr(action, "kind", None)
        name = getattr(action, "name", "?")
        verb = kind.value if kind else "?"
        typer.echo(f"{_stamp()} {verb} {name}" + (f": job {job_id}" if job_id else ""))
    for error in errors:
        _err(f"{_stamp()} error: {error}")


@app.command()
def apply(
    folder: DirArgument = None,
    dir_option: DirOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    campaign: CampaignOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
) -> int:
    """One reconcile pass: plan, then apply; asks first, so without a terminal pass --yes.

    \b
    Exit 0 applied (or nothing to do), 1 error or declined, 64 usage error.
    """
    jobs = jobs_folder(folder, dir_option)
    with controller(
        jobs,
        state=state,
        prune=prune,
        replace=replace,
        verbose=verbose,
        lock_timeout=lock_timeout,
        campaign=campaign,
    ) as ctl:
        preview = ctl.run_pass(apply=False)
        typer.echo(render_plan(preview.plan, PlanOutput.text))
        if not preview.plan.changes and not preview.plan.adoptions:
            return exitcodes.OK
        if not yes:
            if not sys.stdin.isatty():
                # As Terraform wants -auto-approve: a job run from cron or CI must say so.
                raise CommandError("no terminal to confirm on; pass --yes to apply unattended")
            question = f"Apply {len(preview.plan.changes)} change(s)?"
            if not typer.confirm(question, default=False):
                typer.echo("Apply cancelled; nothing was changed.")
                return exitcodes.ERROR
        result = ctl.run_pass(apply=True)
        applied = result.applied
        for note in ctl.idle_engines(result.plan, applied=True):
            _err(f"{_stamp()} {note}")
        if applied is None:
            return exitcodes.OK
        _report_applied(list(applied.done), applied.errors)
        return exitcodes.ERROR if applied.errors else exitcodes.OK


@app.command()
def reconcile(
    folder: DirArgument = None,
    dir_option: DirOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Repeat the pass forever.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 2.0,
    until_done: Annotated[
        bool,
        typer.Option(
            "--until-done",
            help="Repeat until nothing more can happen without a person: every job final, "
            "blocked, awaiting confirmation, or waiting only on jobs that await one.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Give up after this many seconds (exit 2: pending)."),
    ] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when work is still pending.")
    ] = False,
    state: StateOption = None,
    prune: PruneOption = False,
    replace: ReplaceOption = None,
    campaign: CampaignOption = None,
    verbose: VerboseOption = False,
    lock_timeout: LockTimeoutOption = 0.0,
) -> int:
    """Reconcile: one pass, or --watch, or --until-done (running the local engine meanwhile).

    \b
    Exit 0 done, 4 a job needs attention (Failed, Blocked, or failed tasks
    beyond tolerateFailedTasks), 2 still pending at --timeout (or with
    --detailed-exitcode), 1 error, 64 usage error, 130 interrupted
    (re-running is safe).
    """
    if interval <= 0:
        raise CommandError("--interval must be positive", exitcodes.USAGE)
    if watch and until_done:
        raise CommandError(
            "--watch runs forever and --until-done stops when nothing more can happen "
            "without a person: choose one",
            exitcodes.USAGE,
        )
    if timeout is not None and timeout <= 0:
        raise CommandError("--timeout must be positive", exitcodes.USAGE)
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = jobs_folder(folder, dir_option)
    doing = "reading the specs and taking the reconcile lock"
    timed_out = False
    try:
        with controller(
            jobs,
            state=state,
            prune=prune,
            replace=replace,
            verbose=verbose,
            lock_timeout=lock_timeout,
            campaign=campaign,
        ) as ctl:
            looping = watch or until_done
            view = LiveView(sys.stdout.isatty())
            try:
                while True:
                    doing = "observing, planning and applying a pass"
                    result = ctl.run_pass(apply=True)
                    if looping:
                        for target in ctl.start_engines():
                            _err(
                                f"{_stamp()} running the engine of target {target} in this process"
                            )
                    if result.applied is not None:
                        for error in result.applied.errors:
                            _err(f"{_stamp()} error: {error}")
                    view.update(result.plan)
                    if until_done and settled(result.plan):
                        break
                    if not looping:
                        break
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        timed_out = True
                        break
                    doing = "waiting for the next pass"
                    time.sleep(interval if left is None else min(interval, left))
            finally:
                view.close()
            plan_now = result.plan
            notes = [] if looping else ctl.idle_engines(plan_now, applied=True)
            doing = "stopping the in-process engine (its running tasks are recorded first)"
    except KeyboardInterrupt:
        raise CommandError(
            f"interrupted while {doing}. Everything applied so far is recorded, and a job "
            "created just before is found by its marker next time: re-running the same "
            "command is safe.",
            exitcodes.INTERRUPTED,
        ) from None
    if until_done or timed_out:
        _summarise(plan_now, timed_out=timed_out, timeout=timeout)
    for note in notes:
        _err(f"{_stamp()} {note}")
    if troubled(plan_now):
        return exitcodes.FAILED
    if result.applied is not None and result.applied.errors:
        return exitcodes.ERROR
    if timed_out or (detailed_exitcode and not settled(plan_now)):
        return exitcodes.CHANGES
    return exitcodes.OK


def _summarise(plan: Plan, *, timed_out: bool, timeout: float | None) -> None:
    view = plan_view(plan)
    final = sum(1 for a in plan.actions if a.status is not None and a.status.final)
    people = len(view["awaiting"])
    if timed_out:
        pending = [a for a in view["actions"] if not _resting(a)]
        typer.echo(
            f"{_stamp()} --timeout: not done after {timeout:g} s; still pending: "
            + (", ".join(f"{a['name']} ({a['state']})" for a in pending) or "nothing")
        )
    else:
        typer.echo(
            f"{_stamp()} done: {final} final, {len(view['attention'])} need attention, "
            f"{people} awaiting a person"
        )
    text = render("summary.txt.j2", view).strip("\n")
    if text:
        typer.echo(text)
    if view["attention"]:
        typer.echo(
            "Fix the cause, then `batchctl apply --replace NAME` runs a new generation of "
            "a failed job."
        )


def _resting(action: dict[str, Any]) -> bool:
    """Whether a job waits for nobody but a person (or is final, or blocked)."""
    if action["action"] == "blocked" or action["heldBy"] or action["awaitingConfirmation"]:
        return True
    final = action["status"] in ("Complete", "Failed", "Cancelled")
    return action["action"] == "noop" and (final or action["status"] is None)


@app.command()
def status(
    folder: DirArgument = None,
    dir_option: DirOption = None,
    output: Annotated[StatusOutput, typer.Option("--output", "-o")] = StatusOutput.text,
    template: TemplateOption = None,
    template_timeout: TemplateTimeoutOption = DEFAULT_TIMEOUT,
    state: StateOption = None,
    campaign: CampaignOption = None,
    verbose: VerboseOption = False,
    tree: Annotated[
        bool,
        typer.Option("--tree", help="Draw each campaign's dependency tree (text output)."),
    ] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", hidden=True)] = 0.0,
    no_lock: Annotated[bool, typer.Option("--no-lock", hidden=True)] = False,
) -> int:
    """The state of every managed job; reads only: no lock, nothing written.

    \b
    Exit 0 nothing needs attention, 4 a job is Failed, Blocked, or Complete
    with more failed tasks than it tolerates, 1 error, 64 usage error.
    """
    del lock_timeout, no_lock  # status never takes the lock (kept for older scripts)
    if tree and (output is not StatusOutput.text or template is not None):
        raise CommandError(
            "--tree draws text: use it without --output and --template", exitcodes.USAGE
        )
    jobs = jobs_folder(folder, dir_option)
    with controller(jobs, state=state, verbose=verbose, read_only=True, campaign=campaign) as ctl:
        result = ctl.run_pass(apply=False)
        notes = ctl.idle_engines(result.plan)
        view = {**plan_view(result.plan, notes=notes), "generatedAt": _stamp()}
        if output is StatusOutput.html:
            from runner.reports import graph, timeline

            now = time.time()
            lines = timeline.gather(
                result.plan.actions,
                ctl.services,
                ctl.ledger.records(),
                ctl.ledger.history(),
                now,
            )
            view["graphSvg"] = graph.svg(view)
            view["timelineSvg"] = timeline.svg(lines, now)
            view["timelineFromLedger"] = sorted(
                {ln.target for ln in lines if ln.source == "ledger"}
            )
    if tree:
        from runner.reports.graph import tree_lines

        typer.echo("\n".join(tree_lines(view)))
    elif template is not None:
        echo_user_template(template, view, template_timeout)
    elif output is StatusOutput.json:
        typer.echo(json.dumps(view, indent=2))
    elif output is StatusOutput.md:
        typer.echo(markdown("status.md.j2", view))
    else:
        suffix = "txt" if output is StatusOutput.text else output.value
        typer.echo(render(f"status.{suffix}.j2", view).rstrip("\n"))
    return exitcodes.FAILED if troubled(result.plan) else exitcodes.OK
