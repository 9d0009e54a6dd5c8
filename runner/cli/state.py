"""`batchctl state …`: where the ledger and lock live, moving them, and unlocking."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from runner import jobsdir
from runner.cli import exitcodes
from runner.cli.app import TextOrJson, app
from runner.cli.errors import CommandError
from runner.cli.project import DirOption, jobs_folder
from runner.spec.errors import SpecInvalid
from runner.state.ledger import LedgerStore
from runner.state.location import (
    LocalState,
    S3State,
    State,
    StateError,
    StateLocation,
    parse_location,
    state_location,
)
from runner.state.migrate import migrate as migrate_ledger
from runner.support.filelock import FileLock, LockHeld, held, read_holder

state_app = typer.Typer(help="Show, move and unlock the reconcile state.", no_args_is_help=True)
app.add_typer(state_app, name="state")

StateOption = Annotated[
    str | None,
    typer.Option(
        "--state",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="The state to act on; default batchctl.yaml's, else .batchctl beside the folder.",
    ),
]


def _location(folder: Path | None, state: str | None) -> StateLocation:
    try:
        return state_location(jobs_folder(option=folder), state)
    except SpecInvalid as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise CommandError("batchctl.yaml is invalid; nothing was done") from exc
    except StateError as exc:
        raise CommandError(str(exc)) from exc


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    except LockHeld as exc:
        raise CommandError(f"{exc.where} is held by {exc.holder or 'another process'}") from exc


def _shown(location: StateLocation) -> str:
    """A folder relative to here when it is below here, as people type it."""
    if isinstance(location, LocalState):
        try:
            return str(location.folder.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(location.folder)
    return str(location)


def _counts(ledger: LedgerStore) -> tuple[int, int]:
    return len(ledger.records()), len(ledger.history())


@state_app.command("show")
def show(
    folder: DirOption = None,
    state: StateOption = None,
    output: Annotated[TextOrJson, typer.Option("--output", "-o")] = TextOrJson.text,
) -> int:
    """Where the state is, how many jobs it records, and who holds its lock."""
    location = _location(folder, state)
    holder: dict[str, object] | None = None
    with _errors():
        current = State(location)
        ledger = current.open_ledger(read_only=True)  # looks only: creates nothing
        try:
            records, history = _counts(ledger)
        finally:
            ledger.close()
        if isinstance(current.location, S3State):
            from runner.state.locks.lease import S3Lease

            assert isinstance(current.lock, S3Lease)
            found = current.lock.read()
            if found is not None:
                holder = found[0]
        elif isinstance(current.lock, FileLock) and held(current.lock.path):
            holder = {"holder": str(read_holder(current.lock.path) or "another process")}
    if output is TextOrJson.json:
        typer.echo(
            json.dumps(
                {"state": _shown(location), "records": records, "history": history, "lock": holder},
                indent=2,
            )
        )
        return exitcodes.OK
    typer.echo(f"state:   {_shown(location)}")
    typer.echo(f"ledger:  {records} job record(s), {history} history entr(ies)")
    if holder is None:
        typer.echo("lock:    free")
    elif "id" in holder:
        typer.echo(
            f"lock:    held by {holder.get('holder')} (pid {holder.get('pid')} on "
            f"{holder.get('host')}) since {holder.get('started')}, lock ID {holder.get('id')}, "
            f"expires {holder.get('expiresAt')}"
        )
    else:
        typer.echo(f"lock:    held by {holder['holder']}")
    return exitcodes.OK


@state_app.command("unlock")
def unlock(
    lock_id: Annotated[str, typer.Argument(metavar="LOCK_ID")],
    folder: DirOption = None,
    state: StateOption = None,
) -> int:
    """Remove a stuck lock on bucket state (as Terraform's force-unlock); say whose it was."""
    location = _location(folder, state)
    if not isinstance(location, S3State):
        raise CommandError(
            f"the state at {location} is a folder: its lock is released by the system when "
            "its holder ends, so it cannot be stuck"
        )
    with _errors():
        from runner.state.locks.lease import S3Lease

        lease = State(location).lock
        assert isinstance(lease, S3Lease)
        holder = lease.unlock(lock_id)
    typer.echo(f"unlocked {location}: removed lock {lock_id} of {holder}")
    return exitcodes.OK


@state_app.command("migrate")
def migrate(
    to: Annotated[
        str, typer.Option("--to", metavar="PATH|s3://BUCKET/PREFIX", help="Where to move it.")
    ],
    folder: DirOption = None,
    state: StateOption = None,
) -> int:
    """Move the ledger to another place (a folder or a bucket) without losing a record."""
    source = _location(folder, state)
    # valid: _location read it
    config = jobsdir.load_project(jobs_folder(option=folder).resolve().parent).state
    with _errors():
        target = parse_location(to, Path.cwd(), config)
        moved = migrate_ledger(source, target)
    records, history, kept = moved.records, moved.history, moved.kept
    typer.echo(
        f"moved {records} job record(s) and {history} history entr(ies) from {source} to "
        f"{target}; the old ledger is kept as {kept}"
    )
    typer.echo(
        "Point every runner at the new place: batchctl.yaml's `state: {url: "
        f"{target}}}` (or --state {target})."
    )
    return exitcodes.OK
