"""`batchctl engine run`: the embedded engine's worker."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer

from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.errors import CommandError
from runner.cli.project import DirOption, jobs_folder
from runner.cli.targets import local_backend
from runner.jobs.status import JobStatus
from runner.support.filelock import LockHeld, read_holder

engine_app = typer.Typer(help="The embedded batch engine.", no_args_is_help=True)
app.add_typer(engine_app, name="engine")

TargetOption = Annotated[str, typer.Option("--target", "-t", help="A local target's name.")]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_change(
    job_id: str, description: str, old: JobStatus, new: JobStatus, reason: str
) -> None:
    typer.echo(f"{_stamp()} job {job_id} {old.value} → {new.value}: {reason}")


@engine_app.command("run")
def run(
    folder: DirOption = None,
    target: TargetOption = "local",
    once: Annotated[
        bool, typer.Option("--once", help="Run until nothing more can run, then exit.")
    ] = False,
) -> int:
    """Run the jobs of a local target: prepare, schedule by priority, execute, report."""
    with local_backend(jobs_folder(option=folder), target) as backend:
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            typer.echo(
                f"{_stamp()} stopping (signal {signum}); running tasks finish first", err=True
            )
            stop.set()

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if backend.worker_running():
                raise LockHeld(backend.worker_lock().path, read_holder(backend.worker_lock().path))
            typer.echo(
                f"{_stamp()} engine serving {backend.state_dir} "
                f"(target {target}, {backend.target.slots} slot(s), "
                f"{backend.target.workers} workers per job)"
            )
            backend.run_engine(once=once, stop=stop, notify=_print_change)
        except LockHeld as exc:
            raise CommandError(
                f"another worker serves {backend.state_dir} ({exc.holder or 'unknown holder'})"
            ) from exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        typer.echo(
            f"{_stamp()} engine stopped" if stop.is_set() else f"{_stamp()} nothing left to run"
        )
    return exitcodes.OK


@engine_app.command("serve")
def serve(
    folder: DirOption = None,
    target: TargetOption = "local",
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8090,
) -> int:
    """Serve a local target's engine over the S3 Control, COS and GCS job APIs.

    S3 Control and COS requests are signed with BATCHCTL_SERVE_ACCESS_KEY_ID/SECRET; GCS
    requests carry the bearer token BATCHCTL_SERVE_GCS_TOKEN (without it, GCS is off).
    """
    key = os.environ.get("BATCHCTL_SERVE_ACCESS_KEY_ID")
    secret = os.environ.get("BATCHCTL_SERVE_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise CommandError(
            "engine serve needs BATCHCTL_SERVE_ACCESS_KEY_ID and BATCHCTL_SERVE_SECRET_ACCESS_KEY "
            "in the environment: the keys clients sign their requests with"
        )
    from runner.serve.server import EngineServer  # brings boto3: only for this command

    gcs_token = os.environ.get("BATCHCTL_SERVE_GCS_TOKEN") or None

    with local_backend(jobs_folder(option=folder), target) as backend:
        try:
            server = EngineServer(
                backend,
                {key: secret},
                host=host,
                port=port,
                gcs_token=gcs_token,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with backend.running(notify=_print_change) as elsewhere:
                if elsewhere is not None:
                    typer.echo(f"{_stamp()} jobs are run by the worker {elsewhere}", err=True)
                server.start()
                typer.echo(
                    f"{_stamp()} serving the job APIs of target {target} on {server.url} "
                    "(S3 Control under /v20180820/jobs, any <account>. host prefix; COS under "
                    "/jobs; GCS under /v1/projects, "
                    + ("bearer token" if gcs_token else "off: no BATCHCTL_SERVE_GCS_TOKEN")
                    + "); Ctrl-C stops",
                )
                try:
                    stop.wait()
                finally:
                    server.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        typer.echo(f"{_stamp()} engine serve stopped")
    return exitcodes.OK
