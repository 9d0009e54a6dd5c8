"""Every object store runs the same contract tests (a parametrised fixture lists them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engine.stores.base import ObjectStore
from runner.engine.stores.dirstore import DirStore

STORES = ["dir"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """A fresh store with buckets ``src`` and ``dst`` (and ``ver``, versioned)."""
    if request.param == "dir":
        found: ObjectStore = DirStore(tmp_path / "objects")
    else:  # pragma: no cover - new stores are added to STORES
        raise AssertionError(request.param)
    found.create_bucket("src")
    found.create_bucket("dst")
    found.create_bucket("ver", versioning=True)
    yield found
    found.close()
