"""`status -o html` on a campaign with a pre-empted job and a manual step (issue 19).

The engine runs in this process (one slot, one worker thread) while batchctl applies the
campaign in two steps: a slow low-priority job first, then an urgent one that pre-empts
it, followed by a job that waits for a person.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from runner.backends.local import LocalBackend
from runner.cli import main
from runner.jobs.status import JobStatus
from runner.spec.models import LocalTarget

SLOW = [sys.executable, "-c", "import time; time.sleep(0.05)"]


def _job(name: str, priority: int, extra: str = "", command: list[str] | None = None) -> str:
    operation = (
        f"{{invoke: {{command: {command!r}}}}}" if command else "{tag: {tags: {done: 'yes'}}}"
    )
    return (
        f"apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {{name: {name}, campaign: c}}\n"
        f"spec:\n  priority: {priority}\n  manifest: {{generate: {{bucket: data}}}}\n"
        f"  operation: {operation}\n{extra}"
    )


TARGET = (
    "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: local}\n"
    "spec:\n  local: {slots: 1, workers: 1}\n"
)


def _wait(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_status_page_shows_pre_emption_and_the_manual_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    (jobs / "target.yaml").write_text(TARGET)
    backend = LocalBackend(LocalTarget.model_validate({"slots": 1, "workers": 1}), tmp_path)
    backend.store.create_bucket("data")
    for index in range(30):
        backend.store.put("data", f"k{index:02d}", b"x")
    monkeypatch.chdir(tmp_path)
    low = _job("backfill", 1, command=SLOW)
    (jobs / "c.yaml").write_text(low)
    with backend.running():
        assert main(["apply", "--yes"]) == 0

        def started() -> bool:
            listed = backend.list_jobs().jobs
            return bool(listed) and listed[0].progress.succeeded >= 2

        _wait(started)
        urgent = _job("urgent", 9)
        manual = _job("publish", 5, "  dependsOn: [{job: urgent}]\n  confirmation: manual\n")
        (jobs / "c.yaml").write_text("---\n".join([low, urgent, manual]))
        assert main(["apply", "--yes"]) == 0

        def urgent_done() -> bool:
            return any(
                j.status is JobStatus.COMPLETE and "[batchctl:urgent:" in j.description
                for j in backend.list_jobs().jobs
            )

        _wait(urgent_done)
        assert main(["apply", "--yes"]) == 0  # creates publish: it waits for a person
        capsys.readouterr()
        assert main(["reconcile", "--until-done", "--interval", "0.2", "--timeout", "120"]) == 0
    capsys.readouterr()
    assert main(["status", "-o", "html"]) == 0
    page = capsys.readouterr().out
    graph = re.search(r'<svg[^>]*class="graph".*?</svg>', page, re.S)
    timeline = re.search(r'<svg[^>]*class="timeline".*?</svg>', page, re.S)
    assert graph
    assert timeline
    # the graph matches dependsOn: three jobs, one edge (urgent → publish)
    assert graph.group(0).count('class="node"') == 3
    assert graph.group(0).count('class="edge"') == 1
    rows = re.findall(r'<g class="job".*?</g>', timeline.group(0), re.S)
    by_name = {re.search(r">([a-z]+)</text>", row).group(1): row for row in rows}  # type: ignore[union-attr]
    assert 'data-state="Paused"' in by_name["backfill"]  # pre-empted by urgent
    assert by_name["backfill"].count('data-state="Active"') == 2
    assert 'data-state="Awaiting confirmation"' in by_name["publish"]
    assert 'class="end" data-state="Complete"' in by_name["urgent"]
    backend.close()
