"""The typer application every command module registers on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer


@dataclass
class Outcome:
    """The exit code the last command returned (see ``runner.cli``)."""

    code: int = 0
    ran: bool = False

    def reset(self) -> None:
        """Forget the previous run (tests call ``main`` many times in one process)."""
        self.code = 0
        self.ran = False


outcome = Outcome()


def _keep_exit_code(result: Any, **_: Any) -> None:
    outcome.ran = True
    outcome.code = result if isinstance(result, int) else 0


app = typer.Typer(
    name="batchctl",
    help="Object-storage batch operation campaigns, the GitOps way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    result_callback=_keep_exit_code,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class TextOrJson(StrEnum):
    """Output formats of commands that print a summary or JSON."""

    text = "text"
    json = "json"
