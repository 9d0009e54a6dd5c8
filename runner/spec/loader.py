"""Spec files (already read into memory) to validated resources and located errors.

This module is pure: it takes file names and bytes and returns models and
errors; finding and reading the files is the job of ``runner.jobsdir``. Each
document is checked for apiVersion and kind first, then for keys that look like
credentials, then validated by the pydantic models; pydantic's errors are
translated into ``SpecError``s that name the line and column of the field and
say what to do in words a person uses ("must be at most 2147483647", "unknown
field 'priorty' (did you mean 'priority'?)"). Cross-resource rules (names,
targets, dependencies, capabilities) live in ``checks``.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from runner.spec.errors import SpecError
from runner.spec.gcpause import collector_paused
from runner.spec.models import (
    API_VERSION,
    CREATED_AFTER_TAGS,
    DEFAULT_LOCAL_TARGET,
    DEFAULT_TARGET,
    KINDS,
    STORE_TAGS,
    BatchJob,
    Target,
)
from runner.spec.yamlsource import Path, YamlDocument, parse_yaml


@dataclass(frozen=True)
class SourceFile:
    """A spec file's name (as shown in errors) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class LoadedJob:
    """A validated BatchJob and the document it came from."""

    job: BatchJob
    doc: YamlDocument

    @property
    def key(self) -> tuple[str, str]:
        """(target, name): a job's identity."""
        return (self.job.spec.target, self.job.metadata.name)


@dataclass(frozen=True)
class LoadedTarget:
    """A validated Target; ``doc`` is None for the implicit ``local`` target."""

    target: Target
    doc: YamlDocument | None

    @property
    def kind(self) -> str:
        """local, aws or cos."""
        return self.target.spec.choice


@dataclass
class SpecSet:
    """Everything loaded from a jobs folder, with every error found."""

    jobs: list[LoadedJob] = field(default_factory=list)
    targets: dict[str, LoadedTarget] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # sha256 of each repository manifest (manifest.file), by job key.
    manifest_digests: dict[tuple[str, str], str] = field(default_factory=dict)
    # Names of BatchJobs that failed validation (their errors already say why).
    invalid_job_names: set[str] = field(default_factory=set)
    # batchctl.yaml's `pricing:` as read with the specs (backend → region → item → USD).
    pricing: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def resource_count(self) -> int:
        """Declared resources (the implicit local target not counted)."""
        return len(self.jobs) + sum(1 for t in self.targets.values() if t.doc is not None)


_CREDENTIAL_WORDS = (
    "secret",
    "password",
    "passwd",
    "accesskey",
    "token",
    "apikey",
    "privatekey",
    "credential",
)
# The keys of user data (labels, object tags, copy metadata) are checked too: a
# `password:` tag would put a secret on every object of a campaign, and in git.

CREDENTIALS_HINT = (
    "credentials never go in resources: AWS and S3 stores use boto3's standard chain "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `profile:` naming a profile in ~/.aws, SSO, "
    "instance roles); COS reads TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY "
    "from the environment"
)


_CREDENTIAL = re.compile("|".join(map(re.escape, _CREDENTIAL_WORDS)))
# Keys already judged harmless: they repeat across specs (apiVersion, kind, …), so a
# document's keys are judged once each. Bounded, since user data brings keys of its own.
_harmless: set[str] = set()
_HARMLESS_MAX = 100_000


def _looks_like_credential(key: str) -> bool:
    return _CREDENTIAL.search(key.lower().replace("-", "").replace("_", "")) is not None


def _any_credential(keys: set[str]) -> bool:
    """Whether any of ``keys`` looks like a credential (judging each new key once)."""
    found = False
    for key in keys - _harmless:
        if _looks_like_credential(key):
            found = True
        elif len(_harmless) < _HARMLESS_MAX:
            _harmless.add(key)
    return found


def _strip_credentials(data: Any, path: Path, doc: YamlDocument, errors: list[SpecError]) -> Any:
    """Report credential-like keys (never their values) and drop them before validation.

    The data is the parser's own fresh tree, so keys are dropped in place.
    """
    if isinstance(data, dict):
        for key in [k for k in data if _looks_like_credential(k)]:
            errors.append(doc.error((*path, key), f"looks like a credential; {CREDENTIALS_HINT}"))
            del data[key]
        for key, value in data.items():
            if isinstance(value, dict | list):
                _strip_credentials(value, (*path, key), doc, errors)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, dict | list):
                _strip_credentials(value, (*path, index), doc, errors)
    return data


def parse_sources(sources: Sequence[SourceFile]) -> SpecSet:
    """Parse and validate every resource of ``sources``; cross-resource checks not included."""
    with collector_paused():
        result = SpecSet(files=[s.name for s in sources])
        for source in sources:
            text = _decode(source, result.errors)
            if text is None:
                continue
            documents, errors = parse_yaml(source.name, text)
            result.errors.extend(errors)
            for doc in documents:
                _load_document(doc, result)
        if DEFAULT_TARGET not in result.targets:
            result.targets[DEFAULT_TARGET] = LoadedTarget(DEFAULT_LOCAL_TARGET, None)
        return result


def _decode(source: SourceFile, errors: list[SpecError]) -> str | None:
    try:
        return source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source.data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (source.data.rfind(b"\n", 0, exc.start) + 1) + 1
        errors.append(
            SpecError(
                source.name,
                line,
                column,
                "",
                f"not UTF-8 (byte 0x{source.data[exc.start]:02x}); save the file as UTF-8",
            )
        )
        return None


def _load_document(doc: YamlDocument, result: SpecSet) -> None:
    data = doc.data
    if not isinstance(data, dict):
        result.errors.append(
            doc.error((), "a resource must be a mapping with apiVersion, kind, metadata and spec")
        )
        return
    usable = True
    api_version = data.get("apiVersion")
    if api_version is None:
        result.errors.append(doc.error((), f"apiVersion is required ({API_VERSION})"))
        usable = False
    elif api_version != API_VERSION:
        result.errors.append(
            doc.error(
                ("apiVersion",), f"unknown apiVersion {api_version!r} (expected {API_VERSION})"
            )
        )
        usable = False
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if kind is None:
        result.errors.append(doc.error((), "kind is required (BatchJob or Target)"))
        usable = False
    elif model is None:
        result.errors.append(
            doc.error(("kind",), f"unknown kind {kind!r} (expected BatchJob or Target)")
        )
        usable = False
    if _any_credential(doc.keys):
        data = _strip_credentials(data, (), doc, result.errors)
    cleaned = data
    if not usable or model is None:
        return
    try:
        # by_name=False: only the camelCase keys of the file format, never Python's names.
        resource = model.model_validate(cleaned, by_name=False)
    except ValidationError as exc:
        result.errors.extend(translate(doc, exc, model))
        if model is BatchJob and isinstance(cleaned.get("metadata"), dict):
            # Its own errors are reported; a dependent naming it is not wrong as well.
            result.invalid_job_names.add(str(cleaned["metadata"].get("name")))
        return
    if isinstance(resource, BatchJob):
        result.jobs.append(LoadedJob(resource, doc))
    else:
        name = resource.metadata.name
        if name in result.targets:
            first = result.targets[name].doc
            where = f"{first.file}:{first.locate(('metadata', 'name'))[0]}" if first else "?"
            result.errors.append(
                doc.error(
                    ("metadata", "name"),
                    f"target {name!r} is declared twice (also at {where})",
                )
            )
            return
        result.targets[name] = LoadedTarget(resource, doc)


# ---------------------------------------------------------------------------
# pydantic errors in people's words


def translate(doc: YamlDocument, exc: ValidationError, model: type[BaseModel]) -> list[SpecError]:
    """pydantic's errors for ``doc`` as located SpecErrors (input values never echoed)."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        path = _clean_loc(err["loc"])
        errors.append(doc.error(path, _message(err, path, model)))
    return errors


def _clean_loc(loc: tuple[int | str, ...]) -> Path:
    out: list[str | int] = []
    for index, part in enumerate(loc):
        if part == "[key]":
            continue
        # The tag of the store union (dir | s3) is pydantic's, not a key in the file.
        if index and loc[index - 1] == "store" and part in STORE_TAGS:
            continue
        if index and loc[index - 1] == "createdAfter" and part in CREATED_AFTER_TAGS:
            continue
        out.append(part)
    return tuple(out)


_SIMPLE = {
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "datetime_parsing": "must be a date-time such as 2025-01-31T00:00:00Z",
    "datetime_type": "must be a date-time such as 2025-01-31T00:00:00Z",
    "datetime_from_date_parsing": "must be a date-time such as 2025-01-31T00:00:00Z",
}


def _message(err: Any, path: Path, model: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "extra_forbidden":
        return _unknown_field(path, model)
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_too_short":
        minimum = ctx["min_length"]
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items"
    if kind == "too_short":
        minimum = ctx["min_length"]
        return "must not be empty" if minimum == 1 else f"must have at least {minimum} items"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    msg = str(err["msg"])
    return msg.replace("Input should be", "must be", 1)


def _unknown_field(path: Path, model: type[BaseModel]) -> str:
    name = str(path[-1]) if path else "?"
    parent = _model_at(model, path[:-1])
    if parent is None:
        return f"unknown field {name!r}"
    allowed = [f.alias or n for n, f in parent.model_fields.items()]
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if not close:
        folded = {a.lower().replace("_", "").replace("-", ""): a for a in allowed}
        hit = folded.get(name.lower().replace("_", "").replace("-", ""))
        close = [hit] if hit else []
    if close:
        return f"unknown field {name!r} (did you mean {close[0]!r}?)"
    return f"unknown field {name!r}; allowed: {', '.join(allowed)}"


def _model_at(model: type[BaseModel], path: Path) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        found = fields.get(part)
        if found is None:
            return None
        current = _inner_model(found.annotation)
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is dict:
        return None
    if origin in (typing.Union, types.UnionType, list, typing.Annotated) or get_args(annotation):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None
