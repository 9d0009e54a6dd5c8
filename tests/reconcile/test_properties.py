"""Property: for any sequence of spec edits and job status changes, plan → apply → plan

- never creates a generation twice (one job per (spec, generation), none unrecorded),
- never leaves two live jobs for one spec,
- never starts a dependent (creates it unsuspended, or confirms it) before its
  dependencies hold,
- and a second pass right after apply creates nothing new.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.backends.memory import MemoryBackend
from runner.jobs.models import JobRequest
from runner.jobs.status import JobStatus
from runner.reconcile.apply import apply_plan
from runner.reconcile.model import ActionKind, DesiredJob
from runner.reconcile.observe import observe
from runner.reconcile.plan import plan
from runner.spec.identity import parse_marker
from runner.state.ledger.sqlite import SqliteLedger
from tests.reconcile.helpers import desired, job_yaml

S = JobStatus
NAMES = ["a", "b", "c", "d"]
DEPS = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"]}
POLICY = {"c": "stage"}
CONDITION = {"b": "succeeded", "c": "complete", "d": "succeeded"}


def _specs(state: dict[str, dict[str, object]]) -> list[DesiredJob]:
    documents = []
    for name in NAMES:
        spec = state[name]
        extra = [f"priority: {spec['priority']}", f"state: {spec['state']}"]
        if DEPS[name]:
            deps = ", ".join(f"{{job: {d}, condition: {CONDITION[name]}}}" for d in DEPS[name])
            extra.append(f"dependsOn: [{deps}]")
        if name in POLICY:
            extra.append(f"dependencyPolicy: {POLICY[name]}")
        documents.append(
            job_yaml(name, "\n".join(extra), op=f"{{tag: {{tags: {{v: '{spec['version']}'}}}}}}")
        )
    return desired(*documents)


class Checked(MemoryBackend):
    """A memory backend that checks, at each create and confirm, that dependencies hold."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, DesiredJob] = {}
        self.ledger: SqliteLedger | None = None

    def _deps_hold(self, name: str) -> bool:
        assert self.ledger is not None
        item = self.items[name]
        latest = {}
        for record in self.ledger.records():
            if record.name not in latest or record.generation > latest[record.name].generation:
                latest[record.name] = record
        for dep in item.job.spec.depends_on:
            record = latest.get(dep.job)
            if record is None or record.spec_hash != self.items[dep.job].spec_hash:
                return False
            job = self.jobs[record.job_id]
            if job.status is not S.COMPLETE:
                return False
            if dep.condition == "succeeded" and job.progress.failed:
                return False
        return True

    def create_job(self, request: JobRequest) -> str:
        marker = parse_marker(request.description)
        assert marker is not None
        if not request.confirmation_required:
            assert self._deps_hold(marker.name), f"{marker.name} created before its dependencies"
        return super().create_job(request)

    def update_job_status(
        self, job_id: str, requested: JobStatus | str, reason: str | None = None
    ) -> JobStatus:
        if JobStatus(requested) is S.READY:
            marker = parse_marker(self.jobs[job_id].request.description)
            assert marker is not None
            assert self._deps_hold(marker.name), f"{marker.name} confirmed before its dependencies"
        return super().update_job_status(job_id, requested, reason)


def _advance(backend: Checked, index: int, outcome: int) -> None:
    live = [j for j in backend.order if not backend.jobs[j].status.final]
    if not live:
        return
    job = backend.jobs[live[index % len(live)]]
    status = job.status
    if status is S.NEW:
        backend.set_status(job.id, S.PREPARING)
    elif status is S.PREPARING:
        backend.set_status(
            job.id, S.SUSPENDED if job.request.confirmation_required else S.READY, total=10
        )
    elif status is S.READY:
        backend.set_status(job.id, S.ACTIVE, total=10)
    elif status is S.ACTIVE:
        if outcome == 0:
            backend.set_status(job.id, S.COMPLETE, total=10, succeeded=10)
        elif outcome == 1:
            backend.set_status(job.id, S.COMPLETE, total=10, succeeded=8, failed=2)
        else:
            backend.set_status(job.id, S.FAILED, total=10, succeeded=1, failed=9)
    elif status is S.CANCELLING:
        backend.set_status(job.id, S.CANCELLED)


def _check(backend: Checked, ledger: SqliteLedger) -> None:
    records = ledger.records()
    assert len({(r.name, r.generation) for r in records}) == len(records)
    assert {r.job_id for r in records} == set(backend.jobs), "a job is missing from the ledger"
    live = Counter(
        parse_marker(j.request.description).name  # type: ignore[union-attr]
        for j in backend.jobs.values()
        if not j.status.final
    )
    assert all(n <= 1 for n in live.values()), f"two live jobs for one spec: {live}"


STEP = st.one_of(
    st.tuples(st.just("advance"), st.integers(0, 7), st.integers(0, 2)),
    st.tuples(
        st.just("edit"), st.sampled_from(NAMES), st.sampled_from(["version", "priority", "state"])
    ),
    st.tuples(st.just("reconcile"), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=5, max_size=45))
def test_plan_apply_plan_properties(steps: list[tuple[str, object, object]]) -> None:
    state = {n: {"version": 1, "priority": 10, "state": "present"} for n in NAMES}
    with tempfile.TemporaryDirectory() as folder:
        ledger = SqliteLedger(Path(folder) / "ledger.db")
        backend = Checked()
        backend.ledger = ledger
        for step in [*steps, ("reconcile", 0, 0)]:
            kind = step[0]
            if kind == "advance":
                _advance(backend, int(step[1]), int(step[2]))  # type: ignore[call-overload]
                continue
            if kind == "edit":
                spec = state[str(step[1])]
                field = str(step[2])
                if field == "version":
                    spec["version"] = int(spec["version"]) + 1  # type: ignore[call-overload]
                elif field == "priority":
                    spec["priority"] = int(spec["priority"]) + 5  # type: ignore[call-overload]
                else:
                    spec["state"] = "cancelled" if spec["state"] == "present" else "present"
                continue
            items = _specs(state)
            backend.items = {d.key[1]: d for d in items}
            first = plan(items, observe({"local": backend}), ledger.records(), now=backend.clock())
            result = apply_plan(first, {d.key: d for d in items}, {"local": backend}, ledger)
            assert result.errors == []
            _check(backend, ledger)
            created = {
                a.name
                for a, _ in result.done
                if a.kind in (ActionKind.CREATE, ActionKind.STAGE, ActionKind.RECREATE)
            }
            again = plan(items, observe({"local": backend}), ledger.records(), now=backend.clock())
            recreated = {
                a.name
                for a in again.actions
                if a.kind in (ActionKind.CREATE, ActionKind.STAGE, ActionKind.RECREATE)
            }
            assert not created & recreated, f"a second pass creates again: {created & recreated}"
            assert not again.adoptions
        ledger.close()
