"""Every object store runs the same contract tests (a parametrised fixture lists them)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from runner.stores.base import ObjectStore
from runner.stores.dirstore import DirStore
from runner.stores.s3 import S3ObjectStore
from tests.servers import CREDENTIALS, reset_moto

STORES = ["dir", "moto", "seaweedfs"]
BUCKETS = ("src", "dst", "ver", "locked")
_count = itertools.count()


class Renamed:
    """An S3 store whose buckets carry a per-test suffix, so tests never share a bucket.

    (Objects under COMPLIANCE retention can never be deleted, so a server cannot be
    emptied between tests.)
    """

    def __init__(self, inner: S3ObjectStore, suffix: str) -> None:
        self.inner = inner
        self.names = {b: f"{b}-{suffix}" for b in BUCKETS}
        self.attribute_threads = inner.attribute_threads

    def list_buckets(self) -> list[str]:
        """This test's buckets, by the names the test gave them (the server holds others')."""
        back = {real: given for given, real in self.names.items()}
        return sorted(back[name] for name in self.inner.list_buckets() if name in back)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(self.names.get(a, a) if isinstance(a, str) else a for a in args)
            return method(*args, **kwargs)

        return call


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """A fresh store with buckets src, dst, ver (versioned) and locked (object lock)."""
    kind = request.param
    request.node.store_kind = kind
    endpoint = None
    if kind == "dir":
        found: ObjectStore = DirStore(tmp_path / "objects")
    else:
        endpoint = request.getfixturevalue(f"{kind}_endpoint")
        inner = S3ObjectStore(endpoint, "us-east-1", credentials=CREDENTIALS, max_attempts=3)
        found = cast(ObjectStore, Renamed(inner, f"{next(_count)}-{uuid.uuid4().hex[:8]}"))
    found.create_bucket("src")
    found.create_bucket("dst")
    found.create_bucket("ver", versioning=True)
    found.create_bucket("locked", object_lock=True)
    yield found
    found.close()
    if kind == "moto":
        assert endpoint is not None
        reset_moto(endpoint)


def deviation(request: pytest.FixtureRequest, **reasons: str) -> None:
    """Skip this case on the stores named, each with the server's deviation from S3."""
    kind = getattr(request.node, "store_kind", "dir")
    if kind in reasons:
        pytest.skip(f"{kind}: {reasons[kind]}")
