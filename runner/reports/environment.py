"""The Jinja environment of the shipped templates (StrictUndefined: a typo is an error)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_ENV = Environment(
    loader=PackageLoader("runner.reports", "templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(template: str, context: dict[str, Any]) -> str:
    """Render a shipped template with ``context``."""
    return _ENV.get_template(template).render(**context)
