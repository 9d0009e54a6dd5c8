"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    """--update-golden rewrites the golden files of the shipped templates."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/reports/golden/ from the current templates",
    )


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO
