"""Errors a command reports to the user: a message and an exit code, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from runner.cli import exitcodes


class CommandError(Exception):
    """Stop the command: print ``message`` on stderr and exit with ``code``."""

    def __init__(self, message: str, code: int = exitcodes.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


SHOWN_ERRORS = 50


def echo_errors(errors: Sequence[object], *, err: bool = True) -> None:
    """Print the first SHOWN_ERRORS errors and how many more there are (a flood of
    100,000 empty documents must not print 200,000 lines; --output json keeps all)."""
    for error in errors[:SHOWN_ERRORS]:
        typer.echo(str(error), err=err)
    if len(errors) > SHOWN_ERRORS:
        more = len(errors) - SHOWN_ERRORS
        typer.echo(f"… and {more:,} more error{'s' if more != 1 else ''}", err=err)
