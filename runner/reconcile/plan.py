"""The planner: specs, observed jobs and the ledger in, one action per spec out.

A pure function, level-triggered as a controller's reconcile: every pass
recomputes from what is observed, never from remembered events.

- The *current* job of a spec is its highest generation in the ledger, with the
  status ListJobs shows (or the ledger's, once the job has left ListJobs after
  90 days). A managed job that ListJobs shows but the ledger lacks (a crash
  between CreateJob and the ledger write) is adopted as the next generation.
- Dependencies are sequenced here, because priority never guarantees order: a
  dependent is created only once every dependency's condition holds (complete:
  Complete; succeeded: Complete with no more failed tasks than its
  ``tolerateFailedTasks``). A Failed or Cancelled dependency, or one Complete with
  failures beyond that under ``succeeded``, blocks its dependents transitively,
  naming the root cause. ``dependencyPolicy: stage`` creates the dependent early with
  confirmation required and confirms it once the dependencies hold;
  ``confirmation: manual`` is never confirmed here. On a service without confirmation
  (GCS) a manual job is held before it is created: it is created once a person's
  approval of that spec and generation is in the ledger (``approvals``).
- Nothing more happens without a person once every job is final, blocked, awaiting
  confirmation, or waiting only on such jobs (``held_by``): ``--until-done`` stops.
- A job needs attention (``attention``, exit 4) when it Failed, is Blocked, or is
  Complete with more failed tasks than it tolerates.
- A finished job is never re-run: a Complete, Failed or Cancelled job whose spec
  did not change stays as it is (``--replace NAME`` asks for a new generation).
  A change of the immutable fields is drift, handled by ``onChange``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus
from runner.reconcile.model import (
    Action,
    ActionKind,
    DesiredJob,
    JobKey,
    ObservedJob,
    Plan,
    PlanError,
)
from runner.reconcile.schedule import latest_slot, next_slot, stamp
from runner.spec.capabilities import CAPABILITIES
from runner.spec.gcpause import collector_paused
from runner.spec.models import failures_tolerated
from runner.state.records import Approval, LedgerRecord, LedgerView, view_of

SUSPENDED_EXPIRY_DAYS = 30
_DAY = 86400.0
_STOPPED = (JobStatus.COMPLETING, JobStatus.CANCELLING, JobStatus.FAILING)


@dataclass(frozen=True)
class Current:
    """A spec's current job: the ledger's latest generation, refreshed by ListJobs."""

    job_id: str
    generation: int
    spec_hash: str
    status: JobStatus
    counts: Counts
    priority: int | None
    created: float
    staged: bool
    immutable: str
    listed: bool
    slot: float | None
    failure: Failure | None = None


@dataclass(frozen=True)
class DependencyOutcome:
    """What a spec means to its dependents."""

    state: str  # succeeded | completed-with-failures | failed | cancelled | blocked | pending
    text: str  # "Active, 43%" / root cause
    failed_tasks: int = 0
    held: tuple[str, ...] = ()  # pending only on these jobs, each awaiting a person


def describe(status: JobStatus, counts: Counts) -> str:
    """``Active, 43% (430 of 1,000 tasks)``."""
    if status in (JobStatus.ACTIVE, JobStatus.PAUSED, JobStatus.PAUSING) and counts.total:
        return f"{status.value}, {counts.percent()}% ({counts.done:,} of {counts.total:,} tasks)"
    if status is JobStatus.COMPLETE:
        text = f"Complete ({counts.succeeded:,} succeeded"
        return text + (f", {counts.failed:,} failed)" if counts.failed else ")")
    return status.value


def _adopt(observed: Sequence[ObservedJob], ledger: LedgerView) -> list[LedgerRecord]:
    known = ledger.job_ids
    top = {record.key: record.generation for record in ledger.latest}
    adopted = []
    strangers = [job for job in observed if job.job_id not in known]
    for job in sorted(strangers, key=lambda o: (o.created, o.job_id)):
        key = (job.target, job.name)
        top[key] = top.get(key, 0) + 1
        adopted.append(
            LedgerRecord(
                target=job.target,
                name=job.name,
                generation=top[key],
                job_id=job.job_id,
                spec_hash=job.spec_hash,
                status=job.status,
                counts=job.counts,
                created=job.created,
                terminated=job.terminated,
            )
        )
    return adopted


def _currents(
    observed: Sequence[ObservedJob], records: Iterable[LedgerRecord]
) -> dict[JobKey, Current]:
    by_id = {o.job_id: o for o in observed}
    latest: dict[JobKey, LedgerRecord] = {}
    for record in records:
        if record.key not in latest or record.generation > latest[record.key].generation:
            latest[record.key] = record
    currents = {}
    for key, record in latest.items():
        seen = by_id.get(record.job_id)
        currents[key] = Current(
            job_id=record.job_id,
            generation=record.generation,
            spec_hash=record.spec_hash,
            status=seen.status if seen else record.status,
            counts=seen.counts if seen else record.counts,
            priority=seen.priority if seen else None,
            created=seen.created if seen else record.created,
            staged=record.staged,
            immutable=record.immutable,
            listed=seen is not None,
            slot=record.slot,
            failure=record.failure,
        )
    return currents


def _order(desired: Sequence[DesiredJob]) -> list[DesiredJob]:
    """Dependencies first (the specs were checked for cycles; a cycle is cut, not looped).

    Iterative: a campaign may chain ten thousand jobs, far past Python's recursion limit.
    """
    by_key = {d.key: d for d in desired}
    done: set[JobKey] = set()
    ordered: list[DesiredJob] = []
    for root in sorted(desired, key=lambda d: d.key):
        if root.key in done:
            continue
        trail = {root.key}
        stack: list[tuple[DesiredJob, int]] = [(root, 0)]
        while stack:
            item, i = stack[-1]
            deps = item.job.spec.depends_on
            if i < len(deps):
                stack[-1] = (item, i + 1)
                dep = deps[i]
                found = by_key.get((dep.target or item.key[0], dep.job))
                if found is not None and found.key not in done and found.key not in trail:
                    trail.add(found.key)
                    stack.append((found, 0))
                continue
            stack.pop()
            trail.discard(item.key)
            done.add(item.key)
            ordered.append(item)
    return ordered


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: value}


def changed_fields(old: str, new: str) -> list[str]:
    """The immutable fields that differ between two canonical JSON documents."""
    try:
        before = _flatten(json.loads(old)) if old else {}
    except ValueError:
        before = {}
    after = _flatten(json.loads(new)) if new else {}
    if not before:
        return ["manifest, operation or report (the earlier values are not recorded)"]
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


class _Planner:
    def __init__(
        self,
        desired: Sequence[DesiredJob],
        currents: dict[JobKey, Current],
        generations: dict[JobKey, int],
        *,
        now: float,
        replace: frozenset[JobKey],
        approvals: frozenset[Approval] = frozenset(),
    ) -> None:
        self.desired = {d.key: d for d in desired}
        self.approvals = approvals
        self.currents = currents
        self.generations = generations
        self.now = now
        self.replace = replace
        self.outcomes: dict[JobKey, DependencyOutcome] = {}
        self.problems: list[str] = []

    def _deps(self, item: DesiredJob) -> tuple[str, str, tuple[str, ...]]:
        """("met" | "wait" | "blocked", reason, the people-held jobs a wait ends on).

        The last is empty unless every dependency still pending waits for a person:
        then nothing more happens here without one.
        """
        waits: list[str] = []
        held: list[str] = []
        free = False
        for dep in item.job.spec.depends_on:
            key = (dep.target or item.key[0], dep.job)
            outcome = self.outcomes.get(key, DependencyOutcome("pending", "not planned"))
            label = dep.job if key[0] == item.key[0] else f"{key[0]}/{dep.job}"
            if outcome.state == "succeeded":
                continue
            if outcome.state == "completed-with-failures":
                if dep.condition == "complete":
                    continue
                return (
                    "blocked",
                    f"{label} completed with {outcome.failed_tasks:,} failed task(s), beyond "
                    "its tolerateFailedTasks (condition: succeeded)",
                    (),
                )
            if outcome.state in ("failed", "cancelled"):
                return ("blocked", f"{label} {outcome.state}", ())
            if outcome.state == "blocked":
                return ("blocked", outcome.text, ())
            waits.append(f"{label}: {outcome.text}")
            held.extend(h for h in outcome.held if h not in held)
            free = free or not outcome.held
        if waits:
            return ("wait", "waiting for " + "; ".join(waits), () if free else tuple(held))
        return ("met", "", ())

    def decide(self, item: DesiredJob) -> Action:
        spec = item.job.spec
        key = item.key
        current = self.currents.get(key)
        base = Action(
            ActionKind.NOOP,
            target=key[0],
            name=key[1],
            reason="",
            spec_hash=item.spec_hash,
            campaign=item.job.metadata.campaign,
            priority=spec.priority,
            depends_on=tuple(d.job for d in spec.depends_on),
            dependencies=tuple((d.target or key[0], d.job, d.condition) for d in spec.depends_on),
        )
        if current is not None:
            base = base.changed(job_id=current.job_id, status=current.status, counts=current.counts)

        if spec.state == "cancelled":
            self.outcomes[key] = DependencyOutcome(
                "cancelled", f"{key[1]} is cancelled (state: cancelled)"
            )
            if current is not None and not current.status.final:
                return base.changed(kind=ActionKind.CANCEL, reason="state: cancelled")
            reason = "state: cancelled" + ("" if current else "; never created")
            return base.changed(kind=ActionKind.NOOP, reason=reason)

        drift = current is not None and current.spec_hash != item.spec_hash
        if drift and spec.on_change == "error":
            assert current is not None
            fields = ", ".join(changed_fields(current.immutable, item.immutable))
            self.problems.append(
                f"{key[0]}/{key[1]}: {fields} changed since generation {current.generation} "
                f"(job {current.job_id}); onChange: error refuses to recreate it"
            )
            self.outcomes[key] = DependencyOutcome(
                "blocked", f"{key[1]} has drifted (onChange: error)"
            )
            return base.changed(kind=ActionKind.BLOCKED, reason="spec drifted; onChange: error")

        replacing = key in self.replace
        due: float | None = None
        if spec.schedule:
            due = latest_slot(spec.schedule, spec.timezone, self.now)
            base = base.changed(next_run=next_slot(spec.schedule, spec.timezone, self.now))
        if current is None or replacing or (drift and spec.on_change == "recreate"):
            return self._new_generation(
                item, current, base, drift=drift, replacing=replacing, slot=due
            )
        note = " (spec drift ignored: onChange: ignore)" if drift else ""
        if due is not None:
            last = current.slot if current.slot is not None else current.created
            if due > last and current.status.final:
                return self._new_generation(
                    item,
                    current,
                    base,
                    drift=False,
                    replacing=False,
                    slot=due,
                    cause=f"scheduled run of {stamp(due)}",
                )
            if due > last:
                note += f" (the run of {stamp(due)} follows once it is final)"
        return self._existing(item, current, base, note)

    def _new_generation(
        self,
        item: DesiredJob,
        current: Current | None,
        base: Action,
        *,
        drift: bool,
        replacing: bool,
        slot: float | None = None,
        cause: str | None = None,
    ) -> Action:
        spec = item.job.spec
        key = item.key
        generation = self.generations.get(key, 0) + 1
        live = current is not None and not current.status.final
        deps, why, held = self._deps(item)
        if cause is None and current is None:
            cause = "new spec"
        elif cause is None and replacing:
            assert current is not None
            cause = f"--replace (generation {current.generation} is {current.status.value})"
        elif cause is None:
            assert current is not None
            fields = ", ".join(changed_fields(current.immutable, item.immutable))
            cause = f"{fields} changed since generation {current.generation}"
        if live and current is not None:
            # The next generation starts only once the old job is final: two live jobs of
            # one spec could work on the same objects at once.
            self.outcomes[key] = DependencyOutcome("pending", "being replaced")
            if current.status is JobStatus.CANCELLING:
                return base.changed(
                    kind=ActionKind.WAIT,
                    reason=f"{cause}; waiting for job {current.job_id} to be cancelled",
                )
            return base.changed(
                kind=ActionKind.CANCEL,
                reason=f"{cause}; the next generation follows once job {current.job_id} "
                "is cancelled",
            )
        if deps == "blocked":
            self.outcomes[key] = DependencyOutcome("blocked", why)
            return base.changed(kind=ActionKind.BLOCKED, reason=f"blocked: {why}", attention=why)
        if deps == "wait" and spec.dependency_policy != "stage":
            self.outcomes[key] = DependencyOutcome("pending", "not created yet", held=held)
            return base.changed(kind=ActionKind.WAIT, reason=why, held_by=held)
        staged = deps == "wait"
        self.outcomes[key] = DependencyOutcome(
            "pending", "staged, suspended" if staged else "being created", held=held
        )
        scheduled_run = slot is not None and not drift and not replacing
        kind = (
            ActionKind.RECREATE
            if current is not None and not scheduled_run
            else (ActionKind.STAGE if staged else ActionKind.CREATE)
        )
        assert cause is not None
        if slot is not None and current is None:
            cause += f"; the run of {stamp(slot)} (then on schedule)"
        reason = cause
        if (
            not staged
            and spec.confirmation == "manual"
            and not _has_confirmation(item.target_kind)
            and (key[0], key[1], generation, item.spec_hash) not in self.approvals
        ):
            return self._held(item, base, generation, cause)
        if staged:
            reason += f"; staged with confirmation required until dependencies hold ({why})"
        elif spec.confirmation == "manual" and not _has_confirmation(item.target_kind):
            reason += "; confirmed by a person before it was created"
        elif spec.confirmation == "manual":
            reason += "; it will wait for a person to confirm it"
        return base.changed(
            kind=kind,
            reason=reason,
            generation=generation,
            staged=staged,
            slot=slot,
            window_start=current.created if current is not None else None,
        )

    def _held(self, item: DesiredJob, base: Action, generation: int, cause: str) -> Action:
        """A manual job on a service that starts every job it is given: batchctl holds the
        create itself until a person approves this spec's generation."""
        command = f"batchctl jobs confirm {item.key[1]}{_target_flag(item.key[0])}"
        self.outcomes[item.key] = DependencyOutcome(
            "pending", f"awaiting confirmation by a person ({command})", held=(item.key[1],)
        )
        return base.changed(
            kind=ActionKind.NOOP,
            reason=f"awaiting confirmation: {command} ({cause}; {item.target_kind} jobs start "
            "when created, so batchctl creates it once confirmed)",
            generation=generation,
            awaiting_confirmation=True,
            command=command,
        )

    def _existing(self, item: DesiredJob, current: Current, base: Action, note: str) -> Action:
        spec = item.job.spec
        key = item.key
        status = current.status
        if status.final:
            return self._final(item, current, base, note)
        if not current.listed:
            self.outcomes[key] = DependencyOutcome(
                "blocked", f"{key[1]}'s job {current.job_id} is lost"
            )
            lost = (
                f"job {current.job_id} ({status.value} when last seen) is no longer listed by "
                "the target"
            )
            return base.changed(kind=ActionKind.BLOCKED, reason=lost, attention=lost)
        self.outcomes[key] = DependencyOutcome("pending", describe(status, current.counts))
        if (
            current.priority is not None
            and current.priority != spec.priority
            and (status not in _STOPPED)
            and _has_priority(item.target_kind)
        ):
            return base.changed(
                kind=ActionKind.SET_PRIORITY,
                reason=f"priority {current.priority} → {spec.priority}",
                old_priority=current.priority,
            )
        if status is JobStatus.SUSPENDED:
            return self._suspended(item, current, base, note)
        return base.changed(kind=ActionKind.NOOP, reason=describe(status, current.counts) + note)

    def _final(self, item: DesiredJob, current: Current, base: Action, note: str) -> Action:
        key = item.key
        status = current.status
        counts = current.counts
        gone = "" if current.listed else " (gone from ListJobs; known from the ledger)"
        reason = describe(status, counts)
        attention: str | None = None
        failure = current.failure
        if status is JobStatus.COMPLETE:
            tolerance = item.job.spec.tolerate_failed_tasks
            within = failures_tolerated(tolerance, failed=counts.failed, total=counts.total)
            state = "succeeded" if within else "completed-with-failures"
            self.outcomes[key] = DependencyOutcome(state, reason, counts.failed)
            if not within:
                attention = (
                    f"{counts.failed:,} of {counts.total:,} tasks failed "
                    f"(tolerateFailedTasks: {tolerance})"
                )
                if failure is not None and failure.text():
                    attention += f"; {failure.text()}"
                reason += f": {attention}"
            elif counts.failed:
                reason += f": within tolerateFailedTasks ({tolerance})"
        elif status is JobStatus.FAILED:
            self.outcomes[key] = DependencyOutcome("failed", f"{key[1]} failed")
            attention = failure.text() if failure is not None and failure.text() else None
            attention = attention or "the service gave no reason"
            reason += f": {attention}"
        else:
            self.outcomes[key] = DependencyOutcome("cancelled", f"{key[1]} cancelled")
        return base.changed(
            kind=ActionKind.NOOP,
            reason=reason + gone + note,
            failed=status is JobStatus.FAILED,
            attention=attention,
            failure=failure,
            command=_look(key, status, counts) if attention else None,
        )

    def _suspended(self, item: DesiredJob, current: Current, base: Action, note: str) -> Action:
        spec = item.job.spec
        days = (self.now - current.created) / _DAY
        expiry = (
            f" (Suspended {int(days)} days: AWS fails jobs left Suspended over "
            f"{SUSPENDED_EXPIRY_DAYS} days)"
            if days > SUSPENDED_EXPIRY_DAYS
            else ""
        )
        deps, why, held = self._deps(item)
        if deps == "blocked":
            self.outcomes[item.key] = DependencyOutcome("blocked", why)
            return base.changed(
                kind=ActionKind.BLOCKED,
                reason=f"blocked: {why}{expiry}",
                attention=why,
                staged=True,
            )
        if deps == "wait":
            self.outcomes[item.key] = DependencyOutcome("pending", "staged, suspended", held=held)
            return base.changed(
                kind=ActionKind.WAIT,
                reason=f"staged; {why}{expiry}",
                held_by=held,
                staged=True,
            )
        if spec.confirmation == "manual":
            command = f"batchctl jobs confirm {item.key[1]}{_target_flag(item.key[0])}"
            self.outcomes[item.key] = DependencyOutcome(
                "pending", f"awaiting confirmation by a person ({command})", held=(item.key[1],)
            )
            return base.changed(
                kind=ActionKind.NOOP,
                reason=f"awaiting confirmation: {command}{expiry}{note}",
                awaiting_confirmation=True,
                command=command,
            )
        return base.changed(kind=ActionKind.CONFIRM, reason="dependencies hold" + expiry + note)


def _look(key: JobKey, status: JobStatus, counts: Counts) -> str:
    """Where a person sees what went wrong: the report of failed tasks, else the job."""
    if status is JobStatus.FAILED and not counts.failed:
        return f"batchctl jobs describe {key[1]}{_target_flag(key[0])}"
    return f"batchctl report {key[1]}{_target_flag(key[0])}"


def _has_priority(kind: str) -> bool:
    # GCS has no priority: a change would be planned on every pass and never take effect.
    caps = CAPABILITIES.get(kind)
    return caps is None or caps.priority


def _deletes_jobs(kind: str) -> bool:
    caps = CAPABILITIES.get(kind)
    return caps is not None and caps.deletes_jobs


def _has_confirmation(kind: str) -> bool:
    caps = CAPABILITIES.get(kind)
    return caps is None or caps.confirmation


def _target_flag(target: str) -> str:
    return f" --target {target}" if target != "local" else ""


def plan(
    desired: Sequence[DesiredJob],
    observed: Sequence[ObservedJob],
    ledger: Sequence[LedgerRecord] | LedgerView,
    *,
    now: float,
    prune: bool = False,
    replace: Iterable[JobKey] = (),
    approvals: Iterable[Approval] = (),
    target_kinds: Mapping[str, str] | None = None,
) -> Plan:
    """The plan for ``desired`` given what is observed and recorded (pure).

    ``ledger`` is the ledger's view (``LedgerStore.view()``) or all of its records;
    ``approvals`` are the (target, name, generation, spec hash) a person confirmed before
    their job existed (``state.records.approvals_in``); ``target_kinds`` (name → kind)
    tells ``prune`` where a removed spec's finished job is deleted.
    """
    view = ledger if isinstance(ledger, LedgerView) else view_of(ledger)
    with collector_paused():  # 100,000 jobs: see there
        return _plan(
            desired,
            observed,
            view,
            now=now,
            prune=prune,
            replace=replace,
            approvals=frozenset(approvals),
            target_kinds=target_kinds or {},
        )


def _plan(
    desired: Sequence[DesiredJob],
    observed: Sequence[ObservedJob],
    ledger: LedgerView,
    *,
    now: float,
    prune: bool,
    replace: Iterable[JobKey],
    approvals: frozenset[Approval],
    target_kinds: Mapping[str, str],
) -> Plan:
    adoptions = _adopt(observed, ledger)
    records = [*ledger.latest, *adoptions]
    currents = _currents(observed, records)
    generations: dict[JobKey, int] = {}
    for record in records:
        generations[record.key] = max(generations.get(record.key, 0), record.generation)
    planner = _Planner(
        desired, currents, generations, now=now, replace=frozenset(replace), approvals=approvals
    )
    actions = [planner.decide(item) for item in _order(desired)]
    if planner.problems:
        raise PlanError(planner.problems)
    wanted = {d.key for d in desired}
    orphans = []
    for key, current in sorted(currents.items()):
        if key in wanted or not current.listed:
            continue
        if current.status.final:
            if prune and _deletes_jobs(target_kinds.get(key[0], "")):
                orphans.append(
                    Action(
                        ActionKind.DELETE,
                        target=key[0],
                        name=key[1],
                        reason="no spec any more (--prune): the finished job is deleted from "
                        "the service (the ledger keeps its record)",
                        job_id=current.job_id,
                        status=current.status,
                        counts=current.counts,
                        spec_hash=current.spec_hash,
                        orphan=True,
                    )
                )
            continue
        orphan = Action(
            ActionKind.CANCEL if prune else ActionKind.NOOP,
            target=key[0],
            name=key[1],
            reason=(
                "no spec any more (--prune)" if prune else "its spec is gone; `--prune` cancels it"
            ),
            job_id=current.job_id,
            status=current.status,
            counts=current.counts,
            spec_hash=current.spec_hash,
            orphan=True,
        )
        orphans.append(orphan)
    return Plan(actions=tuple(actions), orphans=tuple(orphans), adoptions=tuple(adoptions))
