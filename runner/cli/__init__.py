"""The batchctl command line: typer app, one module per command group.

Exit codes are listed in ``app.HELP`` (and the README's "Running it unattended").
Commands return their exit code; the app's result callback keeps it, because
click in standalone mode exits 0 after a command whatever it returned. Click
exits 2 on a usage error, before any command runs; ``main`` turns that into 64
(EX_USAGE), since 2 means "changes pending" here. An exception that escapes a
command is reported as a bug, without a traceback unless ``BATCHCTL_DEBUG`` is set.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from runner.cli import demo as _demo

# Command modules register themselves on `app` when imported.
from runner.cli import engine as _engine
from runner.cli import exitcodes
from runner.cli import jobs as _jobs
from runner.cli import reconcile as _reconcile
from runner.cli import report as _report
from runner.cli import schema as _schema
from runner.cli import state as _state
from runner.cli import validate as _validate
from runner.cli.app import app, outcome
from runner.cli.errors import CommandError
from runner.jobs.errors import JobServiceError

__all__ = ["app", "main"]

del _demo, _engine, _jobs, _reconcile, _report, _schema, _state, _validate

_CLICK_USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Run batchctl with ``argv`` (default: the process arguments); return the exit code."""
    outcome.reset()
    try:
        app(args=argv, prog_name="batchctl")
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            return outcome.code
        if code == _CLICK_USAGE_ERROR and not outcome.ran:
            return exitcodes.USAGE
        if isinstance(code, int):
            return code
        typer.echo(str(code), err=True)
        return exitcodes.ERROR
    except CommandError as exc:
        typer.echo(f"batchctl: {exc.message}", err=True)
        return exc.code
    except JobServiceError as exc:
        typer.echo(f"batchctl: {exc.code}: {exc.message}", err=True)
        return exitcodes.ERROR
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return exitcodes.INTERRUPTED
    except Exception as exc:
        if os.environ.get("BATCHCTL_DEBUG"):
            traceback.print_exc()
        typer.echo(
            f"batchctl: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in batchctl; please report it with the command you ran "
            "(set BATCHCTL_DEBUG=1 for the traceback).",
            err=True,
        )
        return exitcodes.ERROR
    finally:
        sys.stdout.flush()
    return outcome.code
