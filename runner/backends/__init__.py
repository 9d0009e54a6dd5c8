"""Actual state: the JobService protocol and one module per backend (local, aws, cos, gcs)."""

from __future__ import annotations

from pathlib import Path

from runner.backends.base import JobService
from runner.spec.loader import LoadedTarget


class BackendUnavailable(Exception):
    """The target's backend cannot be used in this version or on this machine."""


def open_backend(
    target: LoadedTarget, project_root: Path, *, read_only: bool = False
) -> JobService:
    """The JobService of ``target`` (paths relative to ``project_root``).

    ``read_only`` is for commands that only look: the embedded engine's database is
    then opened without creating or writing anything.
    """
    spec = target.target.spec
    if spec.local is not None:
        from runner.backends.local import LocalBackend

        return LocalBackend(spec.local, project_root, read_only=read_only)
    if spec.aws is not None:
        from runner.backends.aws import AwsBackend

        return AwsBackend(spec.aws)
    if spec.cos is not None:
        from runner.backends.cos import CosBackend

        return CosBackend(spec.cos)
    if spec.gcs is not None:
        from runner.backends.gcs import GcsBackend, GcsUnavailable

        try:
            return GcsBackend(spec.gcs)
        except GcsUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
    raise BackendUnavailable(
        f"target {target.target.metadata.name!r} is {target.kind}: this version of batchctl "
        "reconciles local, aws, cos and gcs targets"
    )
