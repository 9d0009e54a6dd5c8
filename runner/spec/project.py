"""``batchctl.yaml``: settings of the whole project, beside the jobs folder (pure).

Today it holds where the state lives (the ledger and the reconcile lock), so that
every runner of a team — CI, cron hosts, laptops — finds the same state without
each passing ``--state``::

    state:
      url: s3://team-batchctl-state/data-platform
      region: eu-central-1
      leaseSeconds: 120
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError

from runner.spec.errors import SpecError
from runner.spec.loader import translate
from runner.spec.models import EndpointUrl, Model, Region, _matcher
from runner.spec.yamlsource import parse_yaml

PROJECT_FILE = "batchctl.yaml"
_STATE_URL = r"(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|[^:]+)"
StateUrl = Annotated[
    str,
    _matcher(_STATE_URL, "must be s3://BUCKET/PREFIX or a folder path"),
    Field(json_schema_extra={"pattern": f"^{_STATE_URL}$"}),
]


class StateConfig(Model):
    """Where the ledger and the reconcile lock live."""

    url: StateUrl
    """s3://BUCKET/PREFIX (shared by a team) or a folder (relative to the project)."""
    endpoint_url: EndpointUrl | None = None
    """S3 endpoint instead of AWS's (or AWS_ENDPOINT_URL_S3 from the environment)."""
    region: Region | None = None
    """Region of the state bucket (else the environment's)."""
    profile: str | None = None
    """AWS profile with the credentials (else boto3's standard chain)."""
    lease_seconds: int = Field(default=120, ge=15, le=3600)
    """How long the lock lasts unless renewed; a reconcile renews it while it runs."""


class ProjectConfig(Model):
    """The settings of batchctl.yaml."""

    state: StateConfig | None = None
    """Shared state; the default is the SQLite ledger in .batchctl beside the jobs folder."""


def parse_project(file: str, text: str) -> tuple[ProjectConfig, list[SpecError]]:
    """``batchctl.yaml``'s settings, or every error in it (file, line, field)."""
    documents, errors = parse_yaml(file, text)
    if errors:
        return ProjectConfig(), errors
    if len(documents) > 1:
        return ProjectConfig(), [SpecError(file, 1, 1, "", "holds one document only")]
    if not documents:
        return ProjectConfig(), []
    doc = documents[0]
    if not isinstance(doc.data, dict):
        return ProjectConfig(), [doc.error((), "must be a mapping such as `state: {url: …}`")]
    try:
        return ProjectConfig.model_validate(doc.data, by_name=False), []
    except ValidationError as exc:
        return ProjectConfig(), translate(doc, exc, ProjectConfig)
