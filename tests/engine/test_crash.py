"""Crash safety: kill -9 a real `batchctl engine run` at random moments, restart, repeat.

Every job must end Complete (or Cancelled), each of its tasks recorded and
reported exactly once, whatever moment the worker died at: preparing, running,
recording results, writing the report. A job left Cancelling or Pausing by a
dead worker finishes that move after the restart.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from runner.engine.service import Engine
from runner.jobs.status import JobStatus
from runner.stores.dirstore import DirStore
from tests.engine.conftest import put_objects, request

REPO = Path(__file__).resolve().parents[2]
OBJECTS = 2500
ROUNDS = 12

TARGET = """apiVersion: batchctl/v1
kind: Target
metadata: {name: local}
spec:
  local: {stateDir: state, store: "dir://objects", slots: 1, workers: 4}
"""


def _start(project: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "engine", "run", "--dir", "jobs.d", "--once"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(process: subprocess.Popen[bytes]) -> bool:
    """kill -9 if still running; True when it was killed."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
        return True
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return False


def _run_to_end(project: Path) -> None:
    process = _start(project)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()


def _report_rows(store: DirStore, engine: Engine, job_id: str) -> list[list[str]]:
    location = engine.report_location(job_id)
    assert location is not None, f"job {job_id} has no report"
    with store.open(location["bucket"], location["key"]) as stream:
        manifest = json.loads(stream.read())
    rows: list[list[str]] = []
    for result in manifest["Results"]:
        with store.open(result["Bucket"], result["Key"]) as stream:
            rows.extend(csv.reader(io.StringIO(stream.read().decode())))
    return rows


def _check_exactly_once(store: DirStore, engine: Engine, job_id: str, expected: int) -> None:
    job = engine.describe_job(job_id)
    rows = _report_rows(store, engine, job_id)
    keys = Counter(row[1] for row in rows)
    assert [k for k, n in keys.items() if n > 1] == [], "a task is reported twice"
    assert len(rows) == job.progress.succeeded + job.progress.failed
    if job.status is JobStatus.COMPLETE:
        assert len(rows) == expected == job.progress.total
        assert job.progress.failed == 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "targets.yaml").write_text(TARGET)
    store = DirStore(tmp_path / "objects")
    for bucket in ("logs", "archive", "reports"):
        store.create_bucket(bucket)
    put_objects(store, OBJECTS)
    store.close()
    return tmp_path


def test_kill_at_random_moments(project: Path) -> None:
    rng = random.Random(20261127)
    engine = Engine(project / "state")
    store = DirStore(project / "objects")
    jobs: list[str] = []
    operations = [
        {"tag": {"tags": {"round": "x"}}},
        {"copy": {"bucket": "archive", "prefix": "copy/"}},
        {"checksum": {"algorithm": "SHA256"}},
    ]
    killed = 0
    for round_no in range(ROUNDS):
        # Keep work queued so that every kill lands in the middle of something.
        live = [j for j in jobs if not engine.describe_job(j).status.final]
        for _ in range(max(0, 2 - len(live))):
            operation = operations[len(jobs) % len(operations)]
            jobs.append(
                engine.create_job(
                    request(
                        operation,
                        {"generate": {"bucket": "logs", "prefix": "data/"}},
                        report={"bucket": "reports", "prefix": f"round-{round_no}"},
                    )
                )
            )
        process = _start(project)
        time.sleep(rng.uniform(0.3, 1.2))
        killed += _kill(process)
    assert killed >= 10, f"only {killed} of {ROUNDS} rounds killed the worker mid-run"
    _run_to_end(project)
    assert len(jobs) >= 2
    for job_id in jobs:
        assert engine.describe_job(job_id).status is JobStatus.COMPLETE
        _check_exactly_once(store, engine, job_id, OBJECTS)
    # The copies are whole, and the tags are on every object.
    assert sum(1 for _ in store.list("archive", "copy/")) == OBJECTS
    assert store.get_tags("logs", "data/000000.txt") == {"round": "x"}
    engine.close()
    store.close()


def _start_and_kill_when_active(project: Path, engine: Engine, job_id: str) -> None:
    process = _start(project)
    deadline = time.monotonic() + 60
    while engine.describe_job(job_id).progress.done < 50:
        assert time.monotonic() < deadline, "the job never ran"
        assert process.poll() is None, "the worker ended before it was killed"
        time.sleep(0.02)
    _kill(process)


def test_cancelling_completes_after_restart(project: Path) -> None:
    engine = Engine(project / "state")
    store = DirStore(project / "objects")
    job_id = engine.create_job(
        request(
            {"copy": {"bucket": "archive"}},
            {"generate": {"bucket": "logs"}},
            report={"bucket": "reports"},
        )
    )
    _start_and_kill_when_active(project, engine, job_id)
    assert engine.update_job_status(job_id, "Cancelled") is JobStatus.CANCELLING
    _run_to_end(project)
    job = engine.describe_job(job_id)
    assert job.status is JobStatus.CANCELLED
    assert 50 <= job.progress.done < OBJECTS
    _check_exactly_once(store, engine, job_id, OBJECTS)
    engine.close()
    store.close()


def test_pausing_completes_after_restart(project: Path) -> None:
    engine = Engine(project / "state")
    store = DirStore(project / "objects")
    job_id = engine.create_job(
        request(
            {"copy": {"bucket": "archive"}},
            {"generate": {"bucket": "logs"}},
            report={"bucket": "reports"},
        )
    )
    _start_and_kill_when_active(project, engine, job_id)
    # The worker died while pausing the job for a higher-priority one.
    assert engine.transition(job_id, JobStatus.ACTIVE, JobStatus.PAUSING, "test")
    _run_to_end(project)
    history = [new for _, _, new, _ in engine.events(job_id)]
    assert history[-5:] == ["Pausing", "Paused", "Active", "Completing", "Complete"]
    _check_exactly_once(store, engine, job_id, OBJECTS)
    engine.close()
    store.close()


def test_a_second_worker_is_refused(project: Path) -> None:
    engine = Engine(project / "state")
    job_id = engine.create_job(
        request(
            {"invoke": {"command": [sys.executable, "-c", "import time; time.sleep(1)"]}},
            {"generate": {"bucket": "logs", "prefix": "data/00000"}},
        )
    )
    first = _start(project)
    try:
        deadline = time.monotonic() + 30
        while engine.describe_job(job_id).status is not JobStatus.ACTIVE:
            assert time.monotonic() < deadline, "the first worker never started the job"
            time.sleep(0.05)
        assert first.poll() is None
        second = subprocess.run(
            [sys.executable, "-m", "runner", "engine", "run", "--dir", "jobs.d", "--once"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert first.poll() is None, "the first worker ended too soon for this test"
        assert second.returncode == 1
        assert "another worker serves" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        _kill(first)
        engine.close()
