"""`batchctl objects …`: your own objects in and out of a local target's store.

The doors the AWS CLI's ``s3`` commands give (``ls``, ``cp``→``put``/``get``, ``rm``,
``mb``) plus ``stat`` — everything the engine knows of one object — and ``manifest``,
a listing as a CSV manifest. They work on any local target's store, a folder or an S3
endpoint (``--target``); the checks live in ``stores.transfer``.
"""

from __future__ import annotations

import csv
import json
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.cli import exitcodes
from runner.cli.app import TextOrJson, app
from runner.cli.errors import CommandError
from runner.cli.project import DirOption, jobs_folder
from runner.cli.targets import local_backend
from runner.stores.base import Retention, StoreError
from runner.stores.transfer import (
    PutOptions,
    TransferError,
    Upload,
    describe,
    destination,
    get_one,
    make_bucket,
    parse_url,
    plan_put,
    put_all,
)

objects_app = typer.Typer(
    help="Your objects in a local target's store: ls, put, get, stat, rm, mb, manifest.",
    no_args_is_help=True,
)
app.add_typer(objects_app, name="objects")

TargetOption = Annotated[
    str, typer.Option("--target", "-t", help="A local target (its store: folder or S3).")
]
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values or []:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise CommandError(f"{flag} {value!r}: expected KEY=VALUE", exitcodes.USAGE)
        found[name] = text
    return found


def _retention(value: str | None) -> Retention | None:
    if value is None:
        return None
    mode, sep, until = value.partition(":")
    if not sep or mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise CommandError(
            f"--retention {value!r}: expected GOVERNANCE:UNTIL or COMPLIANCE:UNTIL",
            exitcodes.USAGE,
        )
    try:
        moment = datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"--retention {value!r}: UNTIL must be a date or time such as 2030-01-01",
            exitcodes.USAGE,
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise CommandError(f"--retention {value!r}: UNTIL is not in the future", exitcodes.USAGE)
    return Retention(mode, moment)


def _url(value: str, *, key_required: bool = False) -> tuple[str, str]:
    try:
        return parse_url(value, key_required=key_required)
    except TransferError as exc:
        raise CommandError(str(exc), exitcodes.USAGE) from None


def _fail(exc: StoreError, where: str) -> CommandError:
    return CommandError(f"{where}: {exc.code}: {exc.message}")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- ls ---------------------------------------------------------------------------------


@objects_app.command("ls")
def ls(
    url: Annotated[str | None, typer.Argument(metavar="[s3://BUCKET[/PREFIX]]")] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Every key, not one level.")
    ] = False,
    versions: Annotated[bool, typer.Option("--versions", help="Every version.")] = False,
    long: Annotated[bool, typer.Option("--long", "-l", help="With tags and version.")] = False,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Buckets, or the keys under a prefix: time, size, storage class, key (as aws s3 ls)."""
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        store = backend.store
        if url is None:
            names = store.list_buckets()
            for name in names:
                typer.echo(name)
            if not names:
                typer.echo(
                    "no buckets (a server may list none to a key without an identity, as "
                    "SeaweedFS does: name one, `batchctl objects ls s3://BUCKET`)",
                    err=True,
                )
            return exitcodes.OK
        bucket, prefix = _url(url)
        if not store.bucket_exists(bucket):
            raise CommandError(f"no bucket {bucket}")
        shown_prefix: str | None = None
        try:
            for info in store.list(bucket, prefix, versions=versions):
                rest = info.key[len(prefix) :]
                if not recursive and "/" in rest:
                    folder_name = prefix + rest.split("/", 1)[0] + "/"
                    if folder_name != shown_prefix:  # keys of one folder come together
                        typer.echo(f"{'PRE':>30} {folder_name}")
                        shown_prefix = folder_name
                    continue
                line = (
                    f"{_when(info.last_modified)} {info.size:>10} "
                    f"{info.storage_class or 'STANDARD':<19} {info.key}"
                )
                if versions or long:
                    line += f"  {info.version_id or '-'}{'' if info.is_latest else ' (noncurrent)'}"
                if long:
                    tags = store.get_tags(bucket, info.key, info.version_id)
                    line += "  " + (urllib.parse.urlencode(tags) if tags else "-")
                typer.echo(line)
        except StoreError as exc:
            raise _fail(exc, f"s3://{bucket}/{prefix}") from exc
    return exitcodes.OK


# -- put --------------------------------------------------------------------------------


@objects_app.command("put")
def put(
    paths: Annotated[list[str], typer.Argument(metavar="SRC… s3://BUCKET/PREFIX")],
    storage_class: Annotated[
        str | None,
        typer.Option("--storage-class", help=f"One of {', '.join(STORAGE_CLASSES)}."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE; repeat.")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="KEY=VALUE user metadata; repeat.")
    ] = None,
    content_type: Annotated[
        str | None, typer.Option("--content-type", help="Else guessed from each name.")
    ] = None,
    legal_hold: Annotated[
        bool, typer.Option("--legal-hold", help="Put a legal hold on each object.")
    ] = False,
    retention: Annotated[
        str | None,
        typer.Option("--retention", metavar="MODE:UNTIL", help="e.g. GOVERNANCE:2030-01-01."),
    ] = None,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Upload files and folders (recursively) below s3://BUCKET/PREFIX; checked first."""
    if len(paths) < 2:
        raise CommandError("put needs SRC… and s3://BUCKET/PREFIX", exitcodes.USAGE)
    *sources, dest = paths
    bucket, prefix = _url(dest)
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise CommandError(
            f"--storage-class {storage_class}: one of {', '.join(STORAGE_CLASSES)}",
            exitcodes.USAGE,
        )
    options = PutOptions(
        storage_class=storage_class,
        tags=_pairs(tag, "--tag"),
        metadata=_pairs(metadata, "--metadata"),
        content_type=content_type,
        legal_hold=legal_hold,
        retention=_retention(retention),
    )
    try:
        uploads = plan_put(sources, prefix)
    except TransferError as exc:
        raise CommandError(str(exc)) from None
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        # A folder store writes through one SQLite sidecar: one writer is fastest there.
        workers = 1 if isinstance(backend.target.store, str) else min(backend.target.workers, 16)
        total = sum(u.size for u in uploads)
        with _Progress(len(uploads), total) as progress:
            try:
                errors = put_all(
                    backend.store, bucket, uploads, options, workers=workers, done=progress.done
                )
            except TransferError as exc:
                raise CommandError(str(exc)) from None
            except StoreError as exc:
                raise _fail(exc, f"s3://{bucket}") from exc
    for error in errors:
        typer.echo(f"batchctl: {error}", err=True)
    written = len(uploads) - len(errors)
    typer.echo(f"{written:,} of {len(uploads):,} file(s) written to s3://{bucket}/{prefix}")
    return exitcodes.ERROR if errors else exitcodes.OK


class _Progress:
    """A progress bar on a terminal (stderr); nothing otherwise."""

    def __init__(self, files: int, size: int) -> None:
        self.files, self.size = files, size
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty() and self.files > 1:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("put"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[files]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("put", total=self.size, files=f"0/{self.files}")
        return self

    def done(self, upload: Upload, info: object, error: str | None) -> None:
        """One file written (or failed)."""
        del info, error
        if self.bar is not None:
            finished = int(self.bar.tasks[0].fields["files"].split("/")[0]) + 1
            self.bar.update(self.task, advance=upload.size, files=f"{finished}/{self.files}")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


# -- get, stat, rm, mb ------------------------------------------------------------------

VersionOption = Annotated[
    str | None, typer.Option("--version-id", help="A version (default: the latest).")
]


@objects_app.command("get")
def get(
    url: Annotated[str, typer.Argument(metavar="s3://BUCKET/KEY")],
    dest: Annotated[str | None, typer.Argument(metavar="[DEST]")] = None,
    version_id: VersionOption = None,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Download an object into the current folder (DEST: a file or folder inside it)."""
    bucket, key = _url(url, key_required=True)
    try:
        path = destination(key, dest, Path.cwd())
    except TransferError as exc:
        raise CommandError(str(exc)) from None
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        try:
            size = get_one(backend.store, bucket, key, version_id, path)
        except StoreError as exc:
            raise _fail(exc, url) from exc
    typer.echo(f"{url} → {path.relative_to(Path.cwd().resolve())} ({size:,} bytes)")
    return exitcodes.OK


@objects_app.command("stat")
def stat_(
    url: Annotated[str, typer.Argument(metavar="s3://BUCKET/KEY")],
    version_id: VersionOption = None,
    output: Annotated[TextOrJson, typer.Option("--output", "-o")] = TextOrJson.text,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Everything the engine knows of an object: ETag, size, class, restore, tags, metadata,
    ACL, retention, legal hold, versions."""
    bucket, key = _url(url, key_required=True)
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        try:
            found = describe(backend.store, bucket, key, version_id)
        except StoreError as exc:
            raise _fail(exc, url) from exc
    if output is TextOrJson.json:
        typer.echo(json.dumps(found, indent=2))
        return exitcodes.OK
    for name, value in found.items():
        label = f"{name}:".ljust(14)
        if isinstance(value, dict) and "unavailable" in value:
            text = f"(not available from this store: {value['unavailable']})"
        elif name == "versions":
            text = (
                ", ".join(f"{v['versionId']}{' (latest)' if v['latest'] else ''}" for v in value)
                or "-"
            )
        elif isinstance(value, dict | list):
            text = json.dumps(value) if value else "-"
        else:
            text = "-" if value is None else str(value)
        typer.echo(f"{label}{text}")
    return exitcodes.OK


@objects_app.command("rm")
def rm(
    url: Annotated[str, typer.Argument(metavar="s3://BUCKET/KEY")],
    version_id: VersionOption = None,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Delete an object (a delete marker in a versioned bucket); a locked version stays."""
    bucket, key = _url(url, key_required=True)
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        store = backend.store
        try:
            # S3 refuses to delete a version under a legal hold or retention; a folder
            # store is asked first, so that it refuses just the same.
            if version_id is not None or not _versioned(store, bucket, key):
                why = _locked(store, bucket, key, version_id)
                if why:
                    raise CommandError(f"{url}: refused: the object is locked ({why})")
            store.delete(bucket, key, version_id)
        except StoreError as exc:
            raise _fail(exc, url) from exc
    typer.echo(f"deleted {url}" + (f" (version {version_id})" if version_id else ""))
    return exitcodes.OK


def _locked(store: Any, bucket: str, key: str, version: str | None) -> str | None:
    """Why S3 would refuse to delete this version (a legal hold, retention), or None.

    A store that cannot say (a server without object lock) is left to decide itself.
    """
    try:
        if store.get_legal_hold(bucket, key, version):
            return "a legal hold"
        kept = store.get_retention(bucket, key, version)
    except StoreError:
        return None
    if kept is not None and kept.until > datetime.now(UTC):
        return f"{kept.mode} retention until {kept.until:%Y-%m-%d}"
    return None


def _versioned(store: Any, bucket: str, key: str) -> bool:
    """Whether deleting without a version leaves a marker (the key has version IDs)."""
    info = store.head(bucket, key)
    return bool(info.version_id) and info.version_id != "null"


@objects_app.command("mb")
def mb(
    url: Annotated[str, typer.Argument(metavar="s3://BUCKET")],
    versioning: Annotated[bool, typer.Option("--versioning", help="Keep every version.")] = False,
    object_lock: Annotated[
        bool, typer.Option("--object-lock", help="Allow retention and legal holds (versioned).")
    ] = False,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Make a bucket."""
    bucket, key = _url(url)
    if key:
        raise CommandError(f"{url}: a bucket is s3://BUCKET, without a key", exitcodes.USAGE)
    jobs = jobs_folder(option=folder)
    with local_backend(jobs, target) as backend:
        try:
            make_bucket(backend.store, bucket, versioning=versioning, object_lock=object_lock)
        except StoreError as exc:
            raise _fail(exc, url) from exc
    typer.echo(f"make_bucket: {bucket}")
    return exitcodes.OK


# -- manifest ---------------------------------------------------------------------------


@objects_app.command("manifest")
def manifest(
    url: Annotated[str, typer.Argument(metavar="s3://BUCKET[/PREFIX]")],
    key_matches: Annotated[
        str | None, typer.Option("--key-matches", help="A glob on keys (** crosses /).")
    ] = None,
    storage_class: Annotated[
        list[str] | None, typer.Option("--storage-class", help="Only this class; repeat.")
    ] = None,
    min_size: Annotated[int | None, typer.Option("--min-size", min=0)] = None,
    max_size: Annotated[int | None, typer.Option("--max-size", min=0)] = None,
    versions: Annotated[
        bool, typer.Option("--versions", help="Every version (a third column).")
    ] = False,
    folder: DirOption = None,
    target: TargetOption = "local",
) -> int:
    """Write a CSV manifest of a listing to stdout (bucket,key[,versionId]; keys encoded as
    S3 Batch Operations reads them), with the generate manifest's filters."""
    from pydantic import ValidationError

    from runner.engine.manifests import ManifestError, generated_tasks
    from runner.spec.models import GenerateManifest

    bucket, prefix = _url(url)
    filters: dict[str, Any] = {
        "keyMatches": key_matches,
        "storageClasses": storage_class,
        "minSize": min_size,
        "maxSize": max_size,
    }
    try:
        spec = GenerateManifest.model_validate(
            {
                "bucket": bucket,
                "prefix": prefix or None,
                "filters": {k: v for k, v in filters.items() if v is not None},
                "versions": "all" if versions else "current",
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CommandError(f"bad filter: {problems}", exitcodes.USAGE) from None
    jobs = jobs_folder(option=folder)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    rows = 0
    with local_backend(jobs, target) as backend:
        try:
            for task_bucket, key, version in generated_tasks(backend.store, spec):
                writer.writerow(
                    [task_bucket, key, version or ""] if versions else [task_bucket, key]
                )
                rows += 1
        except ManifestError as exc:
            raise CommandError(str(exc)) from exc
    typer.echo(f"{rows:,} object(s) listed", err=True)
    return exitcodes.OK
