"""Reading a jobs folder from disk: the I/O edge in front of the pure ``spec`` package.

Finds every ``*.yaml``/``*.yml`` below the folder (hidden folders skipped,
sorted so runs are reproducible), reads the bytes, hands them to
``spec.loader``, reads the CSV manifests that specs keep in the repository
(``manifest.file``) to pin them by content, and runs the cross-resource checks.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from runner.spec.checks import check_all
from runner.spec.errors import SpecError, SpecInvalid
from runner.spec.loader import LoadedJob, SourceFile, SpecSet, parse_sources
from runner.spec.project import PROJECT_FILE, ProjectConfig, parse_project

SUFFIXES = (".yaml", ".yml")


def find_spec_files(root: Path) -> list[Path]:
    """Spec files under ``root`` (or ``root`` itself when it is a file), sorted."""
    if root.is_file():
        return [root]
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def manifest_file_path(loaded: LoadedJob) -> str:
    """Where a job's ``manifest.file`` lies: relative to the spec file that names it."""
    ref = loaded.job.spec.manifest.file or ""
    return posixpath.normpath(posixpath.join(posixpath.dirname(loaded.doc.file), ref))


def load(folder: str | Path) -> SpecSet:
    """Load, validate and cross-check every resource under ``folder``."""
    root = Path(folder)
    shown = str(folder)
    if not root.exists():
        return SpecSet(errors=[SpecError(shown, 1, 1, "", "no such file or folder")])
    try:
        files = find_spec_files(root)
    except OSError as exc:
        return SpecSet(errors=[SpecError(shown, 1, 1, "", f"cannot read: {exc.strerror}")])
    if not files:
        return SpecSet(
            errors=[SpecError(shown, 1, 1, "", "no *.yaml or *.yml files in this folder")]
        )
    sources = []
    read_errors = []
    for path in files:
        try:
            sources.append(SourceFile(str(path), path.read_bytes()))
        except OSError as exc:
            read_errors.append(SpecError(str(path), 1, 1, "", f"cannot read: {exc.strerror}"))
    specs = parse_sources(sources)
    specs.errors.extend(read_errors)
    if not specs.errors and specs.resource_count == 0:
        specs.errors.append(SpecError(shown, 1, 1, "", "no resources found"))
    _pin_repository_manifests(specs)
    specs.errors.extend(check_all(specs))
    if root.is_dir():  # the project's batchctl.yaml is part of what validate checks
        try:
            load_project(root.resolve().parent)
        except SpecInvalid as exc:
            specs.errors.extend(exc.errors)
    specs.errors.sort()
    return specs


def _pin_repository_manifests(specs: SpecSet) -> None:
    for loaded in specs.jobs:
        if loaded.job.spec.manifest.file is None:
            continue
        path = manifest_file_path(loaded)
        field = ("spec", "manifest", "file")
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            specs.errors.append(loaded.doc.error(field, f"file not found: {path}"))
            continue
        except OSError as exc:
            specs.errors.append(loaded.doc.error(field, f"cannot read {path}: {exc.strerror}"))
            continue
        specs.manifest_digests[loaded.key] = hashlib.sha256(data).hexdigest()


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
