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

from pydantic import ValidationError

from runner.spec.errors import SpecError
from runner.spec.loader import translate
from runner.spec.models import Model, StateConfig
from runner.spec.yamlsource import parse_yaml

PROJECT_FILE = "batchctl.yaml"


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
