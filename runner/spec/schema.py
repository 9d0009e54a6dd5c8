"""JSON Schema for the resources, generated from the models (for editors and CI)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from runner.spec.models import BatchJob, Target

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "batchjob.v1.json": BatchJob,
    "target.v1.json": Target,
}


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one resource kind, keys as written in YAML."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_schemas() -> dict[str, str]:
    """File name → JSON text of every schema, formatted stably for diffs."""
    return {
        name: json.dumps(schema_for(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, model in SCHEMA_FILES.items()
    }
