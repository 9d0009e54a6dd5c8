"""Apply: idempotence, healing a crash between CreateJob and the ledger, the 90-day case."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.backends.memory import MemoryBackend
from runner.jobs.errors import ServiceUnavailable
from runner.jobs.models import JobRequest
from runner.jobs.status import JobStatus
from runner.reconcile.apply import apply_plan, build_request
from runner.reconcile.model import ActionKind, DesiredJob
from runner.reconcile.observe import observe
from runner.reconcile.plan import plan
from runner.state.ledger.sqlite import SqliteLedger
from tests.engine.conftest import Clock
from tests.reconcile.helpers import by_name, desired, job_yaml


def _pass(items: list[DesiredJob], backend: MemoryBackend, ledger: SqliteLedger) -> list[str]:
    seen = observe({"local": backend})
    ledger.refresh_from(seen)
    result = plan(items, seen, ledger.records(), now=backend.clock())
    applied = apply_plan(result, {d.key: d for d in items}, {"local": backend}, ledger)
    assert applied.errors == []
    return [f"{a.kind.value} {a.name}" for a, _ in applied.done]


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "ledger.db")


def test_apply_twice_makes_no_second_job(ledger: SqliteLedger) -> None:
    items = desired(job_yaml("a"), job_yaml("b", "dependsOn: [{job: a}]"))
    backend = MemoryBackend()
    assert _pass(items, backend, ledger) == ["create a"]
    assert _pass(items, backend, ledger) == []
    assert len(backend.jobs) == 1
    record = ledger.records()[0]
    assert (record.name, record.generation, record.status) == ("a", 1, JobStatus.NEW)
    assert backend.calls["ListJobs"] == 2


def test_crash_between_create_and_ledger_is_healed(ledger: SqliteLedger) -> None:
    items = desired(job_yaml("a"))
    backend = MemoryBackend()
    first = plan(items, [], [], now=backend.clock())
    # The process dies right after CreateJob: the job exists, the ledger does not know it.
    backend.create_job(build_request(items[0], first.actions[0], backend, None))
    result = plan(items, observe({"local": backend}), ledger.records(), now=backend.clock())
    assert [a.kind for a in result.actions] == [ActionKind.NOOP]
    assert [(r.name, r.generation) for r in result.adoptions] == [("a", 1)]
    apply_plan(result, {items[0].key: items[0]}, {"local": backend}, ledger)
    assert [r.job_id for r in ledger.records()] == list(backend.jobs)
    assert len(backend.jobs) == 1


class Flaky(MemoryBackend):
    """CreateJob succeeds on the service but the answer is lost (a timeout, a 5xx)."""

    def create_job(self, request: JobRequest) -> str:
        super().create_job(request)
        raise ServiceUnavailable("the connection was reset")


def test_unknown_create_outcome_looks_before_retrying(ledger: SqliteLedger) -> None:
    items = desired(job_yaml("a"))
    backend = Flaky()
    assert _pass(items, backend, ledger) == ["create a"]
    assert len(backend.jobs) == 1
    assert backend.calls["CreateJob"] == 1
    assert ledger.records()[0].job_id == next(iter(backend.jobs))


def test_finished_jobs_are_remembered_past_90_days(ledger: SqliteLedger) -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    items = desired(job_yaml("a"), job_yaml("b", "dependsOn: [{job: a}]"))
    assert _pass(items, backend, ledger) == ["create a"]
    job_id = next(iter(backend.jobs))
    backend.set_status(job_id, JobStatus.COMPLETE, total=3, succeeded=3)
    assert _pass(items, backend, ledger) == ["create b"]
    b_id = next(j for j in backend.jobs if j != job_id)
    backend.set_status(b_id, JobStatus.COMPLETE, total=3, succeeded=3)
    _pass(items, backend, ledger)
    clock.now += 91 * 86400
    assert backend.list_jobs().jobs == []  # gone from ListJobs
    assert _pass(items, backend, ledger) == []
    result = plan(items, observe({"local": backend}), ledger.records(), now=clock.now)
    a = by_name(items, "a")
    action = next(x for x in result.actions if x.key == a.key)
    assert action.kind is ActionKind.NOOP
    assert "known from the ledger" in action.reason
    assert len(backend.jobs) == 2
