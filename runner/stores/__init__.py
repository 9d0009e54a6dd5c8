"""Object stores behind one protocol: the embedded ``dir://`` store, and S3."""

from __future__ import annotations

from pathlib import Path

from runner.spec.models import S3Store
from runner.stores.base import ObjectStore
from runner.stores.dirstore import DirStore


class StoreUnavailable(Exception):
    """The configured store cannot be opened here."""


def open_store(store: str | S3Store, project_root: Path, *, workers: int = 16) -> ObjectStore:
    """The object store a local target names, paths relative to ``project_root``."""
    if isinstance(store, str):
        path = Path(store.removeprefix("dir://"))
        return DirStore(path if path.is_absolute() else project_root / path)
    from runner.stores.s3 import S3ObjectStore

    return S3ObjectStore(
        store.s3.endpoint_url, store.s3.region, profile=store.s3.profile, pool=workers
    )
