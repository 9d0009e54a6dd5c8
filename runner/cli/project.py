"""Which project a command works on: one spelling, ``--dir JOBS``, on every command.

The five commands that always took the jobs folder as an argument (validate, plan,
apply, reconcile, status) still take it there too, so that existing cron lines and
CI steps keep working; giving both is refused unless they agree. ``-C DIR`` (before
the command, as ``git -C``) changes folder first. Nothing is created before the
jobs folder is found: a wrong folder leaves no litter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runner.cli import exitcodes
from runner.cli.errors import CommandError

DEFAULT = Path("jobs.d")

DirArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="DIR", help="Jobs folder (the same as --dir; default jobs.d).", show_default=False
    ),
]
DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        "-d",
        metavar="DIR",
        help="Jobs folder, where the specs and targets are declared (default jobs.d).",
        show_default=False,
    ),
]


def jobs_folder(argument: Path | None = None, option: Path | None = None) -> Path:
    """The jobs folder a command names, which must exist; else exit 1 naming where it looked."""
    if argument is not None and option is not None and argument != option:
        raise CommandError(
            f"the jobs folder is given twice ({argument} and --dir {option}); give it once",
            exitcodes.USAGE,
        )
    folder = option or argument or DEFAULT
    if not folder.exists():
        raise CommandError(
            f"no jobs folder here: {folder.absolute()} does not exist; run batchctl in the "
            "project folder, or name it with -C PROJECT (before the command) or --dir JOBS"
        )
    return folder
