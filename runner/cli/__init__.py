"""The batchctl command line: typer app, one module per command group.

Exit codes are listed in ``app.HELP`` (and the README's "Running it unattended").
Commands return their exit code; the app's result callback keeps it, because
click in standalone mode exits 0 after a command whatever it returned. Click
exits 2 on a usage error, before any command runs; ``main`` turns that into 64
(EX_USAGE), since 2 means "changes pending" here. An exception that escapes a
command is reported as a bug, without a traceback unless ``BATCHCTL_DEBUG`` is set.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import typer

from runner.cli import exitcodes
from runner.cli.app import app, outcome
from runner.cli.errors import CommandError
from runner.jobs.errors import JobServiceError

__all__ = ["COMMANDS", "app", "load_commands", "main"]

# The module that registers each top-level command on `app`, in the order `--help` lists
# them. A run imports only the module of the command it runs: importing every module (the
# backends, the engine, rich, jinja2) cost ~150 ms of each start — more than `validate`
# itself takes (bench/startup.py). tests/cli/test_commands.py keeps this table true.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "engine": "engine",
    "init": "init",
    "jobs": "jobs",
    "objects": "objects",
    "plan": "reconcile",
    "apply": "reconcile",
    "reconcile": "reconcile",
    "status": "reconcile",
    "report": "report",
    "schema": "schema",
    "state": "state",
    "validate": "validate",
}
_GLOBAL_WITH_VALUE = ("-C", "--chdir")


def load_commands(argv: list[str] | None = None) -> None:
    """Register on `app` the command ``argv`` runs, or every command when that is unclear."""
    name = _command_name(sys.argv[1:] if argv is None else argv)
    modules = [COMMANDS[name]] if name in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(f"runner.cli.{module}")


def _command_name(argv: list[str]) -> str | None:
    """The first word after the global options; None for `--help`, `--version` or a typo."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_WITH_VALUE:
            next(words, None)
        elif word.startswith("-"):
            # `--chdir=DIR` and `-CDIR` carry their value; anything else (--help) needs all
            if not word.startswith(("--chdir=", "-C")) or word == "--":
                return None
        else:
            return word
    return None


_CLICK_USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Run batchctl with ``argv`` (default: the process arguments); return the exit code."""
    outcome.reset()
    load_commands(argv)
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
