"""Loading the jobs folder and opening a target's backend, for commands that need one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from runner import jobsdir
from runner.backends import BackendUnavailable, open_backend
from runner.backends.base import JobService
from runner.backends.local import LocalBackend
from runner.cli.errors import CommandError
from runner.engine.stores import StoreUnavailable
from runner.spec.loader import LoadedTarget, SpecSet


def load_specs(folder: Path) -> SpecSet:
    """Every resource under ``folder``; invalid specs stop the command before any backend."""
    specs = jobsdir.load(folder)
    if specs.errors:
        for error in specs.errors:
            typer.echo(str(error), err=True)
        count = len(specs.errors)
        raise CommandError(
            f"{count} error{'s' if count != 1 else ''} in {folder}; nothing was done"
        )
    return specs


def project_root(folder: Path) -> Path:
    """The folder relative paths of targets start from: the one holding the jobs folder."""
    resolved = folder.resolve()
    return resolved.parent if resolved.is_dir() or not resolved.exists() else resolved.parent.parent


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
def target_backend(folder: Path, target: str) -> Iterator[JobService]:
    """The backend of any target named in ``folder``'s specs (local, aws or cos)."""
    loaded = declared_target(folder, target)
    try:
        backend = open_backend(loaded, project_root(folder))
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
