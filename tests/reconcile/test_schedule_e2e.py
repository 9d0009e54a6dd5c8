"""A recurring job through the controller and the embedded engine, a day apart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.cli import main
from runner.jobs.status import JobStatus
from runner.reconcile.controller import Controller
from runner.reconcile.model import ActionKind
from runner.stores.dirstore import DirStore

SPEC = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: nightly-tags}
spec:
  schedule: "0 3 * * *"
  timezone: Europe/Berlin
  manifest:
    generate: {bucket: logs, filters: {createdAfter: lastRun}}
  operation: {tag: {tags: {seen: "yes"}}}
"""


def _until_final(ctl: Controller) -> JobStatus:
    deadline = time.monotonic() + 60
    while True:
        action = ctl.run_pass(apply=False).plan.actions[0]
        assert action.status is not None
        if action.status.final:
            return action.status
        assert time.monotonic() < deadline, action
        time.sleep(0.1)


def test_a_day_later_the_next_run_takes_only_new_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "nightly.yaml").write_text(SPEC)
    store = DirStore(tmp_path / ".batchctl" / "objects")
    store.create_bucket("logs")
    for i in range(3):
        store.put("logs", f"old-{i}.log", b"x")
    now = [time.time()]
    ctl = Controller(tmp_path / "jobs.d", clock=lambda: now[0])
    try:
        first = ctl.run_pass(apply=True)
        assert [a.kind for a in first.plan.actions] == [ActionKind.CREATE]
        assert first.plan.actions[0].next_run is not None
        ctl.start_engines()
        assert _until_final(ctl) is JobStatus.COMPLETE
        time.sleep(0.05)
        for i in range(2):
            store.put("logs", f"new-{i}.log", b"y")
        again = ctl.run_pass(apply=True).plan.actions[0]
        assert again.kind is ActionKind.NOOP  # the next run is not due yet
        now[0] += 86400  # a day later
        second = ctl.run_pass(apply=True).plan.actions[0]
        assert second.kind is ActionKind.CREATE
        assert second.generation == 2
        assert second.reason.startswith("scheduled run of ")
        assert _until_final(ctl) is JobStatus.COMPLETE
        action = ctl.run_pass(apply=True).plan.actions[0]
        assert action.kind is ActionKind.NOOP
        assert action.counts is not None
        assert action.counts.total == 2  # only what came after the first run
        records = ctl.ledger.records()
        assert [r.generation for r in records] == [1, 2]
        assert all(r.slot is not None for r in records)
    finally:
        ctl.close()
        store.close()
    assert main(["status", str(tmp_path / "jobs.d")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("nightly-tags")
    assert "; next run 20" in line
