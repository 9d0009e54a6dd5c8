"""Loading the jobs folder and opening a target's backend, for commands that need one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from runner import jobsdir
from runner.backends import BackendUnavailable, open_backend
from runner.backends.base import JobService
from runner.backends.local import LocalBackend
from runner.cli.errors import CommandError, echo_errors
from runner.cli.project import jobs_folder
from runner.spec.loader import LoadedTarget, SpecSet
from runner.state.ledger import LedgerStore
from runner.state.location import State, StateError, state_location, target_locations
from runner.state.records import APPROVE, LedgerRecord
from runner.stores import StoreUnavailable


def load_specs(folder: Path) -> SpecSet:
    """Every resource under ``folder``; invalid specs stop the command before any backend."""
    specs = jobsdir.load(jobs_folder(option=folder))
    if specs.errors:
        echo_errors(specs.errors)
        count = len(specs.errors)
        raise CommandError(
            f"{count} error{'s' if count != 1 else ''} in {folder}; nothing was done"
        )
    return specs


def project_root(folder: Path) -> Path:
    """The folder relative paths of targets start from: the one holding the jobs folder."""
    return jobsdir.project_of(folder)


def declared_target(folder: Path, target: str) -> LoadedTarget:
    """The target called ``target`` in ``folder``'s specs, or a CommandError naming the known."""
    specs = load_specs(folder)
    loaded = specs.targets.get(target)
    if loaded is None:
        raise CommandError(
            f"unknown target {target!r}; declared: {', '.join(sorted(specs.targets))}"
        )
    return loaded


@contextlib.contextmanager
def target_backend(folder: Path, target: str, *, read_only: bool = False) -> Iterator[JobService]:
    """The backend of any target named in ``folder``'s specs (local, aws or cos);
    ``read_only`` for commands that only look (nothing is created or written)."""
    loaded = declared_target(folder, target)
    try:
        backend = open_backend(loaded, project_root(folder), read_only=read_only)
    except BackendUnavailable as exc:
        raise CommandError(str(exc)) from exc
    with _closing(backend):
        yield backend


@contextlib.contextmanager
def local_backend(folder: Path, target: str) -> Iterator[LocalBackend]:
    """The backend of a local target named in ``folder``'s specs."""
    loaded = declared_target(folder, target)
    if loaded.kind != "local":
        raise CommandError(
            f"target {target!r} is {loaded.kind}: this version of batchctl runs jobs only on "
            "local targets (the embedded engine)"
        )
    spec = loaded.target.spec.local
    assert spec is not None
    backend = LocalBackend(spec, project_root(folder))
    with _closing(backend):
        yield backend


@contextlib.contextmanager
def _closing(backend: JobService) -> Iterator[None]:
    """Close ``backend`` at the end; an unreachable store becomes a command error."""
    try:
        yield
    except StoreUnavailable as exc:
        raise CommandError(str(exc)) from exc
    finally:
        backend.close()


def _read_ledgers(folder: Path, specs: SpecSet, state: str | None) -> Iterator[LedgerStore]:
    """Each ledger of this project (the project's, the targets' own), opened read-only."""
    try:
        location = state_location(folder, state)
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    for place in [location, *target_locations(specs, project_root(folder)).values()]:
        try:
            ledger = State(place).open_ledger(read_only=True)
            try:
                yield ledger
            finally:
                ledger.close()
        except StateError as exc:
            raise CommandError(str(exc)) from exc


def ledger_records(folder: Path, specs: SpecSet, state: str | None = None) -> list[LedgerRecord]:
    """Every job the ledgers of this project record, read without writing anything."""
    found: dict[str, LedgerRecord] = {}
    for ledger in _read_ledgers(folder, specs, state):
        for record in ledger.records():
            found.setdefault(record.job_id, record)
    return list(found.values())


def ledger_history(
    folder: Path, specs: SpecSet, state: str | None = None
) -> list[dict[str, object]]:
    """What batchctl did, from every ledger of this project, read without writing anything."""
    return [entry for ledger in _read_ledgers(folder, specs, state) for entry in ledger.history()]


def current_record(records: list[LedgerRecord], name: str, target: str) -> LedgerRecord | None:
    """The latest generation the ledger records for spec ``name`` on ``target``."""
    named = [r for r in records if r.name == name and r.target == target]
    return max(named, key=lambda r: r.generation) if named else None


def note_approval(folder: Path, specs: SpecSet, target: str, name: str, detail: str) -> None:
    """Record a person's approval of a held job in the ledger that keeps ``target``'s jobs.

    Taken without the reconcile lock, so a person can confirm while `reconcile --watch`
    runs: a history entry is only ever appended (an SQLite insert in its own transaction;
    a conditional write retried on conflict in a bucket), and no run rewrites history.
    """
    root = project_root(folder)
    try:
        place = target_locations(specs, root).get(target) or state_location(folder, None)
        ledger = State(place).open_ledger()
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    try:
        ledger.note(target, name, APPROVE, None, detail)
    finally:
        ledger.close()
