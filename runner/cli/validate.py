"""`batchctl validate [DIR]`: check specs; nothing touched."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from runner import jobsdir
from runner.cli import exitcodes
from runner.cli.app import TextOrJson, app
from runner.cli.errors import echo_errors
from runner.cli.project import DirOption, jobs_folder
from runner.spec.checks import warnings_of


@app.command()
def validate(
    folder: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR", help="Jobs folder or file (the same as --dir).", show_default=False
        ),
    ] = None,
    dir_option: DirOption = None,
    output: Annotated[
        TextOrJson, typer.Option("--output", "-o", help="text or json.")
    ] = TextOrJson.text,
) -> int:
    """Check every spec under DIR; print every error with file:line:column and field."""
    folder = jobs_folder(folder, dir_option)
    specs = jobsdir.load(folder)
    valid = not specs.errors
    warnings = warnings_of(specs) if valid else []
    if output is TextOrJson.json:
        document = {
            "valid": valid,
            "resources": specs.resource_count,
            "errors": [e.to_json() for e in specs.errors],
            "warnings": [w.to_json() for w in warnings],
        }
        typer.echo(json.dumps(document, indent=2))
        return exitcodes.OK if valid else exitcodes.ERROR
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if valid:
        kinds = Counter(["BatchJob"] * len(specs.jobs))
        kinds["Target"] = specs.resource_count - len(specs.jobs)
        parts = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        files = len(specs.files)
        typer.echo(
            f"{folder}: {specs.resource_count} resources valid ({parts}) "
            f"in {files} file{'s' if files != 1 else ''}"
        )
    else:
        echo_errors(specs.errors, err=False)
        count = len(specs.errors)
        typer.echo(f"{count:,} error{'s' if count != 1 else ''} in {folder}")
    return exitcodes.OK if valid else exitcodes.ERROR
