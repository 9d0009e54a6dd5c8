"""`batchctl init [DIR]`: a new project that validates, plans and — once objects are put
in its bucket — reconciles, with `--ci` adding the recipe of a CI system or scheduler.

Idempotent: a file already as `init` would write it is left alone; one that differs (a
project's own edits) is kept and named, never overwritten without ``--force``; missing
files are written either way, so ``init --ci k8s`` adds a recipe to a project.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from runner.cli import exitcodes
from runner.cli.app import app
from runner.cli.errors import CommandError
from runner.spec.schema import render_schemas

TARGETS = """\
# yaml-language-server: $schema=../schemas/target.v1.json
#
# Where jobs run. `local` is batchctl's embedded engine: buckets are folders under
# .batchctl/objects (put objects there with `batchctl objects put`). Other targets:
#   spec: {aws: {accountId: "123456789012", region: us-east-1,
#                roleArn: "arn:aws:iam::123456789012:role/batch-ops"}}
#   spec: {cos: {uin: "100000000001", appId: "1250000000", region: ap-guangzhou}}
#   spec: {gcs: {project: my-project}}
# Credentials never go here: they come from the environment or a named profile.
apiVersion: batchctl/v1
kind: Target
metadata:
  name: local
spec:
  local:
    store: dir://.batchctl/objects   # or {s3: {endpointUrl: "http://127.0.0.1:9000"}}
    slots: 1                     # jobs Active at once; a higher priority pauses a lower one
    workers: 16                  # task threads per Active job
"""

FIRST_JOB = """\
# yaml-language-server: $schema=../schemas/batchjob.v1.json
#
# Your first campaign: restore the archived objects under s3://first-bucket/archive/
# for a week, then report. Put some there first:
#   batchctl objects mb s3://first-bucket
#   batchctl objects put PHOTOS/ s3://first-bucket/archive/ --storage-class GLACIER
# Then: batchctl validate, batchctl plan, batchctl reconcile --until-done, batchctl report.
apiVersion: batchctl/v1
kind: BatchJob
metadata:
  name: restore-archive          # the job's identity on its target: a DNS label
  campaign: first-campaign       # groups jobs in `batchctl status` and reports
  labels: {team: data}           # free-form; not sent to the service
spec:
  target: local                  # a Target's name (jobs.d/targets.yaml)
  description: Restore the archive for a week   # batchctl appends [batchctl:<name>:<hash>]
  priority: 10                   # higher runs first; never an ordering guarantee
  manifest:                      # exactly one of csv, inventory, generate, file
    generate:                    # list the bucket when the job is prepared
      bucket: first-bucket
      prefix: archive/
      filters:
        storageClasses: [GLACIER, DEEP_ARCHIVE]   # also keyMatches, createdAfter, minSize …
  operation:                     # exactly one operation
    restore: {days: 7, tier: BULK}
  report:                        # completion report in S3's layout; omit for none
    bucket: first-bucket
    prefix: reports
    scope: all                   # all tasks, or `failed` only
  tolerateFailedTasks: 0         # failed tasks allowed before the job needs attention
  onChange: recreate             # manifest/operation/report changed: recreate | ignore | error
  # dependsOn: [{job: another-job, condition: succeeded}]   # created once that one holds
  # confirmation: manual         # wait for `batchctl jobs confirm restore-archive`
  # schedule: "0 3 * * *"        # a new run every day at 03:00 (timezone: UTC)
"""

PROJECT = """\
# batchctl.yaml: settings of the whole project.
#
# Where the ledger and the reconcile lock live. The default is .batchctl/ beside jobs.d,
# which suits one machine; CI runners and teams keep them in a bucket:
# state:
#   url: s3://my-team-batchctl-state/my-project
#   region: us-east-1
#
# Prices for `plan`'s cost estimates, over batchctl's own (see the README, "Cost and
# duration"):
# pricing:
#   aws:
#     eu-west-1: {job: 0.25, object: 1.00, request.put.STANDARD: 0.0054}
"""

GITIGNORE = """\
# batchctl's local state: the engine, the ledger, the objects of local targets
.batchctl/
"""


class Ci(StrEnum):
    """The recipes `--ci` adds."""

    github = "github"
    gitlab = "gitlab"
    systemd = "systemd"
    k8s = "k8s"


# (packaged recipe, where it goes in the project)
RECIPES: dict[Ci, list[tuple[str, str]]] = {
    Ci.github: [
        ("github/batchctl.yml", ".github/workflows/batchctl.yml"),
        ("github/batchctl-scheduled.yml", ".github/workflows/batchctl-scheduled.yml"),
    ],
    Ci.gitlab: [("gitlab/gitlab-ci.yml", ".gitlab-ci.yml")],
    Ci.systemd: [
        ("systemd/batchctl-reconcile.service", "systemd/batchctl-reconcile.service"),
        ("systemd/batchctl-reconcile.timer", "systemd/batchctl-reconcile.timer"),
    ],
    Ci.k8s: [("k8s/cronjob.yaml", "kubernetes/cronjob.yaml")],
}


def project_files(ci: list[Ci]) -> dict[str, str]:
    """Every file of a new project, by its path relative to the project folder."""
    files = {
        "jobs.d/targets.yaml": TARGETS,
        "jobs.d/first-campaign.yaml": FIRST_JOB,
        "batchctl.yaml": PROJECT,
        ".gitignore": GITIGNORE,
    }
    files.update({f"schemas/{name}": text for name, text in render_schemas().items()})
    recipes = resources.files("runner.cli").joinpath("recipes")
    for kind in ci:
        for packaged, path in RECIPES[kind]:
            files[path] = recipes.joinpath(packaged).read_text(encoding="utf-8")
    return files


@app.command()
def init(
    folder: Annotated[
        Path, typer.Argument(metavar="[DIR]", help="The project folder (default: here).")
    ] = Path("."),
    ci: Annotated[
        list[Ci] | None,
        typer.Option("--ci", help="Add the recipe of a CI system or scheduler; repeat."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files that differ from init's.")
    ] = False,
) -> int:
    """Start a project: jobs.d with a local target and a first job, batchctl.yaml,
    .gitignore and the schemas (editor completion); nothing is overwritten without --force."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder}: exists and is not a folder")
    files = project_files(ci or [])
    differing = []
    for path, text in files.items():
        target = folder / path
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise CommandError(f"{target}: exists and is not a plain file: nothing was written")
        for parent in target.relative_to(folder).parents:
            place = folder / parent
            if parent != Path(".") and (
                place.is_symlink() or (place.exists() and not place.is_dir())
            ):
                raise CommandError(f"{place}: exists and is not a folder: nothing was written")
        if target.is_file() and target.read_text(encoding="utf-8", errors="replace") != text:
            differing.append(path)
    written, kept = [], []
    for path, text in files.items():
        target = folder / path
        if target.is_file() and (path not in differing or not force):
            kept.append(path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(path + (" (replaced)" if path in differing else ""))
    for path in written:
        typer.echo(f"wrote {folder / path}")
    for path in differing if not force else []:
        typer.echo(f"kept {folder / path}: it differs from what init writes (--force replaces it)")
    same = len(kept) - (0 if force else len(differing))
    if same:
        typer.echo(f"{same} file(s) already as init writes them")
    where = "" if folder == Path(".") else f"cd {folder} && "
    typer.echo(
        f"next: {where}batchctl objects mb s3://first-bucket, put objects under "
        "s3://first-bucket/archive/, then batchctl plan"
    )
    return exitcodes.OK
