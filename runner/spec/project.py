"""``batchctl.yaml``: settings of the whole project, beside the jobs folder (pure).

It holds where the state lives (the ledger and the reconcile lock), so that every
runner of a team — CI, cron hosts, laptops — finds the same state without each passing
``--state``, and prices that replace or extend batchctl's own for `plan`'s estimates::

    state:
      url: s3://team-batchctl-state/data-platform
      region: eu-central-1
      leaseSeconds: 120
    pricing:
      aws:
        eu-west-1: {job: 0.25, object: 1.00, request.put.STANDARD: 0.0054}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError

from runner.spec.errors import SpecError
from runner.spec.loader import translate
from runner.spec.models import Model, Region, StateConfig
from runner.spec.models.scalars import matcher
from runner.spec.yamlsource import parse_yaml

PROJECT_FILE = "batchctl.yaml"


# What can be priced (units fixed by the item): `job` per job, `object` per 1,000,000
# objects, `request.*` and `restore.*` per 1,000 requests, `retrieval.*` per GB.
_CLASS = "(STANDARD|STANDARD_IA|ONEZONE_IA|INTELLIGENT_TIERING|GLACIER_IR|GLACIER|DEEP_ARCHIVE)"
PRICE_ITEM = (
    rf"job|object|request\.(get|list|delete)|request\.put\.{_CLASS}"
    r"|(restore|retrieval)\.(GLACIER|DEEP_ARCHIVE)\.(BULK|STANDARD)"
)
PriceItem = Annotated[
    str,
    matcher(
        PRICE_ITEM,
        "must be a price item: job, object, request.get, request.list, request.delete, "
        "request.put.CLASS, restore.CLASS.TIER or retrieval.CLASS.TIER",
    ),
]
PricedBackend = Literal["aws", "cos", "gcs"]


class ProjectConfig(Model):
    """The settings of batchctl.yaml."""

    state: StateConfig | None = None
    """Shared state; the default is the SQLite ledger in .batchctl beside the jobs folder."""
    pricing: dict[PricedBackend, dict[Region, dict[PriceItem, Annotated[float, Field(ge=0)]]]] = (
        Field(default_factory=dict)
    )
    """Prices in USD by backend, region and item, over batchctl's own (pricing.yaml)."""


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
