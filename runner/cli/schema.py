"""`batchctl schema [--check]`: write or verify the JSON Schemas in schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runner.cli import exitcodes
from runner.cli.app import app
from runner.spec.schema import render_schemas


@app.command()
def schema(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the files are missing or stale.")
    ] = False,
    out: Annotated[Path, typer.Option("--dir", help="Folder of the schema files.")] = Path(
        "schemas"
    ),
) -> int:
    """Write schemas/batchjob.v1.json and schemas/target.v1.json from the models."""
    problems = []
    for name, text in render_schemas().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if check:
            problems.append(f"{path} is {'missing' if current is None else 'stale'}")
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")
    if problems:
        for problem in problems:
            typer.echo(f"{problem}: run `batchctl schema` and commit the result", err=True)
        return exitcodes.ERROR
    if check:
        typer.echo(f"{out}: schemas up to date")
    return exitcodes.OK
