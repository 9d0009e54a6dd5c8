"""The Jinja environment of the shipped templates (StrictUndefined: a typo is an error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

_ENV = Environment(
    loader=PackageLoader("runner.reports", "templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html", "html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(template: str, context: dict[str, Any]) -> str:
    """Render a shipped template with ``context``."""
    return _ENV.get_template(template).render(**context)


class UserTemplateError(Exception):
    """A user's template failed: where, and why, in one line."""


def render_user_template(path: Path, context: dict[str, Any]) -> str:
    """Render a user's template in the sandbox, with the same context as the shipped ones.

    The sandbox refuses access to Python internals (``__class__``, ``__mro__``,
    ``__globals__`` …); an undefined variable is an error, not an empty string.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserTemplateError(f"{path}: cannot read the template: {exc}") from exc
    environment = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=path.name.endswith((".html", ".htm", ".html.j2", ".htm.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    try:
        return environment.from_string(text).render(**context)
    except TemplateSyntaxError as exc:
        raise UserTemplateError(
            f"{path}:{exc.lineno}: template syntax error: {exc.message}"
        ) from exc
    except SecurityError as exc:
        raise UserTemplateError(f"{path}: refused by the template sandbox: {exc}") from exc
    except UndefinedError as exc:
        raise UserTemplateError(
            f"{path}: {exc.message} (the README lists the variables a template gets)"
        ) from exc
    except TemplateError as exc:
        raise UserTemplateError(f"{path}: template error: {exc}") from exc
