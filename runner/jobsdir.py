"""Reading a jobs folder from disk: the I/O edge in front of the pure ``spec`` package.

Finds every ``*.yaml``/``*.yml`` below the folder (hidden folders skipped,
sorted so runs are reproducible), reads the bytes, hands them to
``spec.loader``, reads the CSV manifests that specs keep in the repository
(``manifest.file``) to pin them by content, and runs the cross-resource checks.

Specs come through pull requests, so what they point at is untrusted: a spec file
or a manifest file must be a regular file inside the project (the folder that holds
the jobs folder and ``batchctl.yaml``), symlinks followed; a manifest file is read
streaming and bounded in size. Nothing else is opened, so a FIFO cannot block a
validate and ``/dev/zero`` cannot fill memory.
"""

from __future__ import annotations

import hashlib
import posixpath
import stat
from pathlib import Path
from typing import BinaryIO

from runner.spec.checks import check_all
from runner.spec.errors import SpecError, SpecInvalid
from runner.spec.gcpause import collector_paused
from runner.spec.loader import LoadedJob, SourceFile, SpecSet, parse_sources
from runner.spec.project import PROJECT_FILE, ProjectConfig, parse_project

SUFFIXES = (".yaml", ".yml")
# A manifest kept in the repository is hashed (streamed) and uploaded; no CSV a repository
# holds comes near this, and anything larger is a mistake or an attack.
MAX_MANIFEST_BYTES = 2 * 1024**3
_CHUNK = 1024 * 1024


def project_of(root: Path) -> Path:
    """The project folder of a jobs folder (its parent), or of a single spec file."""
    resolved = root.resolve()
    return resolved.parent if resolved.is_dir() else resolved.parent.parent


def _inside(path: Path, project: Path) -> bool:
    return path == project or path.is_relative_to(project)


def find_spec_files(root: Path, project: Path | None = None) -> tuple[list[Path], list[SpecError]]:
    """Spec files under ``root`` (or ``root`` itself when it is a file), sorted, and the
    entries refused: a symlink that leaves the project, anything but a regular file.

    The walk follows symlinked folders inside the project once each (a loop ends there).
    Nothing is opened here: a FIFO or a device is seen by its mode, never read.
    """
    project = project or project_of(root)
    errors: list[SpecError] = []
    if not root.is_dir():
        return ([root] if _acceptable(root, project, errors) else []), errors
    found: list[Path] = []
    seen: set[Path] = {root.resolve()}
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            errors.append(SpecError(str(folder), 1, 1, "", f"cannot read: {exc.strerror}"))
            continue
        for path in entries:
            if path.name.startswith("."):
                continue
            try:
                is_dir = path.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                real = path.resolve()
                if path.is_symlink() and not _inside(real, project):
                    errors.append(_refused_link(path, real))
                elif real not in seen:
                    seen.add(real)
                    pending.append(path)
            elif path.suffix in SUFFIXES and _acceptable(path, project, errors):
                found.append(path)
    return sorted(found), errors


def _refused_link(path: Path, real: Path) -> SpecError:
    return SpecError(
        str(path), 1, 1, "", f"a symlink to {real}, outside the project: refused (copy the file in)"
    )


def _acceptable(path: Path, project: Path, errors: list[SpecError]) -> bool:
    """Whether ``path`` is a regular file to read: inside the project if it is a link."""
    if path.is_symlink():
        real = path.resolve()
        if not _inside(real, project):
            errors.append(_refused_link(path, real))
            return False
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        errors.append(SpecError(str(path), 1, 1, "", f"cannot read: {exc.strerror}"))
        return False
    if not stat.S_ISREG(mode):
        errors.append(
            SpecError(str(path), 1, 1, "", "not a regular file (a FIFO, a device …): skipped")
        )
        return False
    return True


def manifest_file_path(loaded: LoadedJob) -> str:
    """Where a job's ``manifest.file`` lies: relative to the spec file that names it."""
    ref = loaded.job.spec.manifest.file or ""
    return posixpath.normpath(posixpath.join(posixpath.dirname(loaded.doc.file), ref))


class ManifestFileError(Exception):
    """A repository manifest that must not be read; the message says why."""


def open_manifest_file(loaded: LoadedJob, project: Path) -> BinaryIO:
    """A job's ``manifest.file``, opened for reading once it is known to be a regular file
    inside the project (symlinks followed) of at most MAX_MANIFEST_BYTES."""
    path = Path(manifest_file_path(loaded))
    real = path.resolve()
    if not _inside(real, project):
        raise ManifestFileError(
            f"{path} resolves outside the project ({project}): keep manifests in the repository"
        )
    try:
        info = real.stat()
    except FileNotFoundError:
        raise ManifestFileError(f"file not found: {path}") from None
    except OSError as exc:
        raise ManifestFileError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ManifestFileError(f"{path} is not a regular file (a FIFO, a device, a folder …)")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ManifestFileError(
            f"{path} is {info.st_size:,} bytes; a repository manifest may have "
            f"{MAX_MANIFEST_BYTES:,} at most (use a csv manifest in a bucket)"
        )
    try:
        return open(real, "rb")
    except OSError as exc:
        raise ManifestFileError(f"cannot read {path}: {exc.strerror}") from None


def read_manifest_file(loaded: LoadedJob, project: Path) -> bytes:
    """A job's ``manifest.file`` whole, checked as ``open_manifest_file`` checks it."""
    with open_manifest_file(loaded, project) as stream:
        data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:  # it grew since it was looked at
        raise ManifestFileError(f"{manifest_file_path(loaded)} is over the size bound")
    return data


def load(folder: str | Path) -> SpecSet:
    """Load, validate and cross-check every resource under ``folder``."""
    with collector_paused():  # see there: half the time of a large folder otherwise
        return _load(folder)


def _load(folder: str | Path) -> SpecSet:
    root = Path(folder)
    shown = str(folder)
    if not root.exists():
        return SpecSet(errors=[SpecError(shown, 1, 1, "", "no such file or folder")])
    project = project_of(root)
    files, refused = find_spec_files(root, project)
    if not files and not refused:
        return SpecSet(
            errors=[SpecError(shown, 1, 1, "", "no *.yaml or *.yml files in this folder")]
        )
    sources = []
    read_errors = list(refused)
    for path in files:
        try:
            sources.append(SourceFile(str(path), path.read_bytes()))
        except OSError as exc:
            read_errors.append(SpecError(str(path), 1, 1, "", f"cannot read: {exc.strerror}"))
    specs = parse_sources(sources)
    specs.errors.extend(read_errors)
    if not specs.errors and specs.resource_count == 0:
        specs.errors.append(SpecError(shown, 1, 1, "", "no resources found"))
    _pin_repository_manifests(specs, project)
    specs.errors.extend(check_all(specs))
    if root.is_dir():  # the project's batchctl.yaml is part of what validate checks
        try:
            config = load_project(project)
            specs.pricing = {str(backend): regions for backend, regions in config.pricing.items()}
        except SpecInvalid as exc:
            specs.errors.extend(exc.errors)
    specs.errors.sort()
    return specs


def _pin_repository_manifests(specs: SpecSet, project: Path) -> None:
    for loaded in specs.jobs:
        if loaded.job.spec.manifest.file is None:
            continue
        field = ("spec", "manifest", "file")
        digest = hashlib.sha256()
        try:
            with open_manifest_file(loaded, project) as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
        except ManifestFileError as exc:
            specs.errors.append(loaded.doc.error(field, str(exc)))
            continue
        except OSError as exc:
            specs.errors.append(loaded.doc.error(field, f"cannot read: {exc.strerror}"))
            continue
        specs.manifest_digests[loaded.key] = digest.hexdigest()


def load_project(root: Path) -> ProjectConfig:
    """``root/batchctl.yaml``'s settings (defaults when there is none); SpecInvalid if bad."""
    path = root / PROJECT_FILE
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ProjectConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecInvalid([SpecError(str(path), 1, 1, "", f"cannot read: {exc}")]) from None
    config, errors = parse_project(str(path), text)
    if errors:
        raise SpecInvalid(errors)
    return config
