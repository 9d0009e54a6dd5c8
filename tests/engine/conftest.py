"""Engine test helpers: a store, an engine, requests, and a worker driven step by step."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.models import JobRequest
from runner.jobs.status import JobStatus
from runner.spec.models import Manifest, Operation, Report
from runner.stores.dirstore import DirStore

_tokens = itertools.count()


def request(
    operation: dict[str, Any],
    manifest: dict[str, Any],
    *,
    priority: int = 10,
    confirm: bool = False,
    report: dict[str, Any] | None = None,
    token: str | None = None,
    description: str = "test job",
) -> JobRequest:
    """A JobRequest from plain dicts."""
    return JobRequest(
        operation=Operation.model_validate(operation),
        manifest=Manifest.model_validate(manifest),
        report=Report.model_validate(report) if report else None,
        priority=priority,
        confirmation_required=confirm,
        description=description,
        client_request_token=token or f"token-{next(_tokens)}",
    )


def sleep_command(seconds: float) -> list[str]:
    """An invoke command that takes ``seconds`` per object."""
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


class Clock:
    """A controllable clock for the 90-day window."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DirStore]:
    """A dir store with buckets logs, reports and archive."""
    s = DirStore(tmp_path / "objects")
    for bucket in ("logs", "reports", "archive", "manifests"):
        s.create_bucket(bucket)
    yield s
    s.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine with its state under tmp_path."""
    e = Engine(tmp_path / "state")
    yield e
    e.close()


def put_objects(store: DirStore, count: int, prefix: str = "data/", bucket: str = "logs") -> None:
    """``count`` small objects under ``prefix``."""
    for i in range(count):
        store.put(bucket, f"{prefix}{i:06d}.txt", f"object {i}".encode())


def csv_manifest(store: DirStore, lines: list[str], key: str = "m.csv") -> dict[str, Any]:
    """Upload a CSV manifest and return the manifest dict pointing at it."""
    store.put("manifests", key, ("\n".join(lines) + "\n").encode())
    return {"csv": {"bucket": "manifests", "key": key}}


def history(engine: Engine, job_id: str) -> list[str]:
    """The statuses a job went through, in order."""
    return [new for _, _, new, _ in engine.events(job_id)]


def until(
    condition: Callable[[], bool], worker: Worker | None = None, timeout: float = 30.0
) -> None:
    """Tick ``worker`` (if given) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if worker is not None:
            worker.tick()
        time.sleep(0.01)


def status(engine: Engine, job_id: str) -> JobStatus:
    """A job's current status."""
    return engine.describe_job(job_id).status
