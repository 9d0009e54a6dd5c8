"""The typer application every command module registers on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.cli import exitcodes
from runner.cli.errors import CommandError


@dataclass
class ExitOutcome:
    """The exit code the last command returned (see ``runner.cli``)."""

    code: int = 0
    ran: bool = False

    def reset(self) -> None:
        """Forget the previous run (tests call ``main`` many times in one process)."""
        self.code = 0
        self.ran = False


outcome = ExitOutcome()


def _keep_exit_code(result: Any, **_: Any) -> None:
    outcome.ran = True
    outcome.code = result if isinstance(result, int) else 0


HELP = """Object-storage batch operation campaigns, the GitOps way.

\b
Exit codes (for alerting: see the README, "Running it unattended"):
  0    success; with --detailed-exitcode, nothing pending
  1    error: invalid specs, a backend failure, a refused confirmation
  2    changes or work pending: --detailed-exitcode, reconcile --timeout
  3    plan --max-cost: the estimate is above the bound, or not wholly known
  4    a job needs attention: Failed, Blocked, or Complete with more failed
       tasks than its tolerateFailedTasks (status, reconcile --until-done)
  64   usage error
  130  interrupted (re-running is safe)
"""

app = typer.Typer(
    name="batchctl",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    result_callback=_keep_exit_code,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"batchctl {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed package's version."""
    # Imported here: importlib.metadata costs ~20 ms of every start, for `--version` alone.
    from importlib import metadata

    try:
        return metadata.version("batchctl")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@app.callback()
def _global(
    chdir: Annotated[
        Path | None,
        typer.Option(
            "-C",
            "--chdir",
            metavar="DIR",
            help="Work in DIR, as if batchctl were started there (as git -C).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    del version
    if chdir is not None:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise CommandError(f"-C {chdir}: {exc.strerror}", exitcodes.USAGE) from exc


class TextOrJson(StrEnum):
    """Output formats of commands that print a summary or JSON."""

    text = "text"
    json = "json"
