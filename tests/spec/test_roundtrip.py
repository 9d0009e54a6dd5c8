"""Valid resources survive model → YAML → model unchanged; jobs.d stays valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner.jobsdir import load
from runner.spec.loader import SourceFile, parse_sources
from runner.spec.models import BatchJob, Target

VALID = Path(__file__).parent / "valid"


def _dump(resource: BatchJob | Target) -> bytes:
    data = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _folders(repo: Path) -> list[Path]:
    return [repo / "jobs.d", VALID]


@pytest.mark.parametrize("which", ["jobs.d", "valid"])
def test_valid_folders_load_without_errors(repo: Path, which: str) -> None:
    folder = repo / "jobs.d" if which == "jobs.d" else VALID
    specs = load(folder)
    assert specs.errors == []
    assert specs.jobs


@pytest.mark.parametrize("which", ["jobs.d", "valid"])
def test_round_trip_is_unchanged(repo: Path, which: str) -> None:
    folder = repo / "jobs.d" if which == "jobs.d" else VALID
    specs = load(folder)
    resources: list[BatchJob | Target] = [j.job for j in specs.jobs]
    resources += [t.target for t in specs.targets.values() if t.doc is not None]
    for resource in resources:
        again = parse_sources([SourceFile("again.yaml", _dump(resource))])
        assert again.errors == []
        back = again.jobs[0].job if isinstance(resource, BatchJob) else None
        if back is None:
            back = next(t.target for t in again.targets.values() if t.doc is not None)
        assert back == resource


def test_every_operation_and_manifest_kind_is_exercised() -> None:
    specs = load(VALID)
    operations = {j.job.spec.operation.choice for j in specs.jobs}
    manifests = {j.job.spec.manifest.choice for j in specs.jobs}
    kinds = {t.kind for t in specs.targets.values()}
    assert operations == {
        "copy",
        "tag",
        "untag",
        "acl",
        "restore",
        "retention",
        "legalHold",
        "delete",
        "checksum",
        "invoke",
    }
    assert manifests == {"csv", "inventory", "generate", "file"}
    assert kinds == {"local", "aws", "cos"}


def test_yaml_1_1_words_stay_text() -> None:
    text = b"""apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: hold}
spec:
  manifest: {csv: {bucket: logs, key: m.csv}}
  operation: {legalHold: {status: ON}}
"""
    specs = parse_sources([SourceFile("x.yaml", text)])
    assert specs.errors == []
    assert specs.jobs[0].job.spec.operation.legal_hold is not None
    assert specs.jobs[0].job.spec.operation.legal_hold.status == "ON"
