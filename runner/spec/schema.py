"""JSON Schema for the resources, generated from the models (for editors and CI)."""

from __future__ import annotations

import ast
import inspect
import json
import sys
from functools import cache
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
    _describe(schema, model)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_schemas() -> dict[str, str]:
    """File name → JSON text of every schema, formatted stably for diffs."""
    return {
        name: json.dumps(schema_for(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, model in SCHEMA_FILES.items()
    }


# The fields' descriptions are the docstrings under them. pydantic can read them while it
# builds each model (`use_attribute_docstrings`), but that reads and parses source for
# every class on every start — a third of `batchctl validate`'s start-up — for text only
# the schema shows. So they are read here, when a schema is asked for.


def _describe(schema: dict[str, Any], root: type[BaseModel]) -> None:
    """Give each property of the schema its field's docstring, where it has no description."""
    models = {cls.__name__: cls for cls in _models_under(root)}
    _describe_object(schema, root)
    for name, definition in schema.get("$defs", {}).items():
        cls = models.get(name)
        if cls is not None:
            _describe_object(definition, cls)


def _describe_object(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    docs = _attribute_docstrings(cls)
    properties = schema.get("properties", {})
    for field_name, field in cls.model_fields.items():
        doc = docs.get(field_name)
        prop = properties.get(field.alias or field_name)
        if doc and isinstance(prop, dict) and "description" not in prop:
            prop["description"] = doc


def _models_under(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model class reachable from ``root``'s fields, ``root`` included."""
    found: list[type[BaseModel]] = []
    todo: list[Any] = [root]
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in found:
                continue
            found.append(tp)
            todo.extend(f.annotation for f in tp.model_fields.values())
        todo.extend(getattr(tp, "__args__", ()))
        todo.extend(getattr(tp, "__metadata__", ()))
    return found


def _attribute_docstrings(cls: type[BaseModel]) -> dict[str, str]:
    """Field name → the docstring written under it, over the class and its model bases."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
            docs.update(_module_docstrings(base.__module__).get(base.__qualname__, {}))
    return docs


@cache
def _module_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """Class qualname → {attribute: docstring} for the classes of one module."""
    module = sys.modules[module_name]
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, dict[str, str]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                qualname = prefix + node.name
                found[qualname] = _class_docstrings(node)
                visit(node.body, qualname + ".")

    visit(tree.body, "")
    return found


def _class_docstrings(node: ast.ClassDef) -> dict[str, str]:
    # As pydantic reads them: a string statement right after an annotated assignment.
    docs: dict[str, str] = {}
    previous: ast.stmt | None = None
    for stmt in node.body:
        if (
            isinstance(previous, ast.AnnAssign)
            and isinstance(previous.target, ast.Name)
            and isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            docs[previous.target.id] = inspect.cleandoc(stmt.value.value)
        previous = stmt
    return docs
