"""Errors a command reports to the user: a message and an exit code, never a traceback."""

from __future__ import annotations

from runner.cli import exitcodes


class CommandError(Exception):
    """Stop the command: print ``message`` on stderr and exit with ``code``."""

    def __init__(self, message: str, code: int = exitcodes.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
