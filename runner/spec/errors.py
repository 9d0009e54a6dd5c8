"""Spec errors: one value type for every problem found in the user's files.

Every error names the file, the line and column (1-based) and the field path in
the resource (``spec.operation.tag.tags``), so that a person can go straight to
the place. Errors are collected, never raised one at a time: a run reports all
of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one place of the user's files."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_json(self) -> dict[str, object]:
        """The error as the JSON object of ``validate --output json``."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SpecInvalid(Exception):
    """Raised at an edge (CLI, reconcile) when specs are invalid; carries every error."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} error(s) in specs")
        self.errors = errors
