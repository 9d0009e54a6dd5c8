"""`--template FILE` and `--template-timeout` of `report` and `status`: a user's template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runner.cli.errors import CommandError
from runner.reports.environment import TEMPLATE_SECONDS, UserTemplateError, render_user_template

TemplateOption = Annotated[
    Path | None, typer.Option("--template", help="Render with this Jinja template instead.")
]
TemplateTimeoutOption = Annotated[
    float,
    typer.Option(
        "--template-timeout",
        metavar="SECONDS",
        help="Stop a --template that renders for longer than this.",
    ),
]
DEFAULT_TIMEOUT = TEMPLATE_SECONDS


def echo_user_template(template: Path, view: dict[str, Any], timeout: float) -> None:
    """Print ``view`` rendered by the user's ``template``; its failure is a command error."""
    try:
        typer.echo(render_user_template(template, view, timeout=timeout).rstrip("\n"))
    except UserTemplateError as exc:
        raise CommandError(str(exc)) from exc
