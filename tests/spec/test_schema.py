"""The committed JSON Schemas are current, describe every field, and accept jobs.d."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runner.cli import main
from runner.spec.schema import render_schemas


def test_committed_schemas_are_current(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    assert main(["schema", "--check"]) == 0


def test_check_fails_on_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    (tmp_path / "target.v1.json").write_text("{}\n")
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 1
    assert "target.v1.json is stale" in capsys.readouterr().err


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            found.append((f"{where}.{name}", prop))
        for key, value in node.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for item in node:
            found.extend(_properties(item, where))
    return found


@pytest.mark.parametrize("name", sorted(render_schemas()))
def test_every_field_is_described(name: str) -> None:
    schema = json.loads(render_schemas()[name])
    missing = [where for where, prop in _properties(schema) if not prop.get("description")]
    assert missing == []


def test_jobs_d_files_declare_and_satisfy_their_schema(repo: Path) -> None:
    schemas = {n: json.loads(t) for n, t in render_schemas().items()}
    files = sorted((repo / "jobs.d").glob("*.yaml"))
    assert files
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../schemas/"), path
        schema = schemas[first.rsplit("/", 1)[1]]
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            jsonschema.validate(document, schema)


def test_schema_rejects_two_operations() -> None:
    schema = json.loads(render_schemas()["batchjob.v1.json"])
    job = {
        "apiVersion": "batchctl/v1",
        "kind": "BatchJob",
        "metadata": {"name": "a"},
        "spec": {
            "manifest": {"generate": {"bucket": "logs"}},
            "operation": {"untag": {}, "delete": {}},
        },
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, schema)
