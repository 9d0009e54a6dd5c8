"""`batchctl demo init`: the sample objects the example campaign in jobs.d works on.

The same doors as `batchctl objects mb` and `put` (stores.transfer), with the samples
made in memory.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated

import typer

from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.project import DirOption, jobs_folder
from runner.cli.targets import local_backend
from runner.stores.transfer import make_bucket, put_missing

demo_app = typer.Typer(help="The example campaign's sample data.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")

MONTHS, DAYS, PER_DAY = 12, 28, 30


def sample_objects(folder: Path) -> list[tuple[str, str, bytes]]:
    """Every sample object (bucket, key, content); contracts as listed in ``folder``."""
    objects: list[tuple[str, str, bytes]] = []
    for month in range(1, MONTHS + 1):
        for day in range(1, DAYS + 1):
            for n in range(PER_DAY):
                key = f"2024/{month:02d}/{day:02d}/app-{n:03d}.log"
                line = f"2024-{month:02d}-{day:02d} app-{n:03d} request served in {n + day} ms\n"
                objects.append(("logs", key, line.encode() * 4))
    objects.append(("logs", "2024/README.txt", b"Application logs of 2024.\n"))
    for n in range(20):
        objects.append(("logs", f"2023/12/31/app-{n:03d}.log", b"2023 log line\n"))
    manifest = folder / "manifests" / "contracts.csv"
    keys = [f"signed/{y}/contract-{i:03d}.pdf" for y in (2023, 2024) for i in range(1, 26)]
    keys.append("signed/2024/Q4 amendment (final).pdf")
    if manifest.is_file():
        keys = [
            urllib.parse.unquote(line.split(",", 1)[1])
            for line in manifest.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    for key in keys:
        objects.append(("contracts", key, f"%PDF-1.4 sample contract {key}\n".encode()))
    return objects


@demo_app.command("init")
def init(
    folder: DirOption = None,
    target: Annotated[str, typer.Option("--target", "-t")] = "local",
) -> int:
    """Create the sample buckets and about 10,000 objects in the local store (idempotent)."""
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        store = backend.store
        for bucket in ("logs", "archive", "reports", "contracts"):
            make_bucket(store, bucket)
        created, kept = put_missing(store, sample_objects(jobs), content_type="text/plain")
        typer.echo(
            f"demo data in {backend.target.store}: {created:,} objects created, "
            f"{kept:,} already there (buckets logs, archive, reports, contracts)"
        )
    return exitcodes.OK
