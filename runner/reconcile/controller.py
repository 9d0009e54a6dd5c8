"""The controller: load, observe, plan, apply — once, on a timer, or until done.

One reconcile at a time per state folder (``reconcile.lock``); whoever waits is
told the holder's pid, host and start time. On a ``local`` target the embedded
engine runs in this process while a reconcile waits, unless a ``batchctl
engine run`` worker already serves that state folder.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from runner import jobsdir
from runner.backends import open_backend
from runner.backends.base import JobService, RunsItsEngine
from runner.backends.traced import TracedService
from runner.jobs.progress import Failure
from runner.jobs.status import FINAL, JobStatus
from runner.reconcile.apply import ApplyResult, apply_plan
from runner.reconcile.estimate import LISTING_LIMIT, Estimate, estimate_plan
from runner.reconcile.failures import read_failure
from runner.reconcile.model import ActionKind, DesiredJob, JobKey, ObservedJob, Plan
from runner.reconcile.observe import observe
from runner.reconcile.plan import plan as make_plan
from runner.reconcile.pricing import PriceBook
from runner.spec.capabilities import CAPABILITIES
from runner.spec.errors import SpecInvalid
from runner.spec.identity import immutable_fields, spec_hash
from runner.spec.loader import SpecSet
from runner.state.ledger import LedgerStore, ReadOnlyLedger
from runner.state.ledger.routed import RoutedLedger
from runner.state.location import LocalState, State, StateLocation, target_locations
from runner.state.locks import LockSet
from runner.state.records import Approval, LedgerView, approvals_in
from runner.support.filelock import FileLock, LockHeld

if TYPE_CHECKING:
    from runner.state.locks.lease import S3Lease

from runner.support.log import Log

# Actions that leave a job for a worker to prepare or run.
_MAKES_WORK = frozenset(
    {ActionKind.CREATE, ActionKind.STAGE, ActionKind.RECREATE, ActionKind.CONFIRM}
)

# Statuses only a worker moves on (Suspended waits for a confirmation, not a worker).
_NEEDS_WORKER = frozenset(JobStatus) - FINAL - {JobStatus.SUSPENDED}


class ReconcileError(Exception):
    """A reconcile cannot go on (a bad option, a backend that cannot be opened)."""


class UnknownCampaign(ReconcileError):
    """``--campaign`` names a campaign no job has."""


def only_campaign(plan: Plan, campaign: str) -> Plan:
    """The part of ``plan`` about one campaign's jobs (orphans have no campaign any more)."""
    actions = tuple(a for a in plan.actions if a.campaign == campaign)
    names = {a.key for a in actions}
    return Plan(
        actions=actions,
        adoptions=tuple(r for r in plan.adoptions if r.key in names),
        notes=plan.notes,
    )


def desired_jobs(specs: SpecSet) -> list[DesiredJob]:
    """The specs as the planner takes them: hashed, with their target's kind."""
    found = []
    for loaded in specs.jobs:
        digest = specs.manifest_digests.get(loaded.key)
        fields = immutable_fields(loaded.job, digest)
        found.append(
            DesiredJob(
                job=loaded.job,
                spec_hash=spec_hash(loaded.job, digest),
                target_kind=specs.targets[loaded.job.spec.target].kind,
                immutable=json.dumps(fields, sort_keys=True, separators=(",", ":")),
            )
        )
    return found


def settled(plan: Plan) -> bool:
    """Nothing more can happen without a person: every job final, blocked, awaiting a
    person's confirmation, or waiting only on jobs that await one."""
    for action in plan.actions:
        if action.kind is ActionKind.BLOCKED:
            continue
        if action.kind is ActionKind.WAIT and action.held_by:
            continue
        if action.kind is not ActionKind.NOOP:
            return False
        live = action.status is not None and not action.status.final
        if live and not action.awaiting_confirmation:
            return False
    return True


def troubled(plan: Plan) -> bool:
    """Whether a managed job needs attention (exit code 4): Failed, Blocked, or Complete
    with more failed tasks than its spec tolerates."""
    return any(a.attention is not None or a.kind is ActionKind.BLOCKED for a in plan.actions)


@dataclass
class PassResult:
    """One reconcile pass: the plan and, if applied, what apply did."""

    plan: Plan
    applied: ApplyResult | None = None
    calls: dict[str, int] = field(default_factory=dict)


def lock_lost(lock: FileLock | S3Lease | LockSet) -> bool:
    """Whether a bucket lease among ``lock`` was taken over or unlocked while held."""
    return bool(getattr(lock, "lost", False))


def acquire_with_wait(lock: FileLock | S3Lease | LockSet, timeout: float, log: Log | None) -> None:
    """Take ``lock``, waiting up to ``timeout`` seconds and saying who holds it."""
    deadline = time.monotonic() + timeout
    told = False
    # A lease in a bucket costs a request to look at: ask about once a second, not five.
    interval = 0.2 if isinstance(lock, FileLock) else 1.0
    while True:
        try:
            lock.acquire()
            return
        except LockHeld as exc:
            if time.monotonic() >= deadline:
                raise
            if log and not told:
                log(f"waiting for the reconcile lock held by {exc.holder or 'another process'}")
                told = True
            time.sleep(interval * random.uniform(0.75, 1.25))


class Controller:
    """Reconciles one jobs folder against its targets."""

    def __init__(
        self,
        folder: Path,
        *,
        state: StateLocation | None = None,
        prune: bool = False,
        replace: Iterable[str] = (),
        log: Log | None = None,
        trace: Log | None = None,
        lock_timeout: float = 0.0,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        campaign: str | None = None,
    ) -> None:
        self.folder = folder
        self.campaign = campaign
        self.project_root = folder.resolve().parent
        self.location = state or LocalState(self.project_root / ".batchctl")
        self.prune = prune
        self.replace_names = set(replace)
        self.log = log
        self.trace = trace
        self.clock = clock
        # The targets' own state blocks decide which locks to take: read the specs now, and
        # let the first pass use this reading rather than a second one.
        found = jobsdir.load(folder)
        if found.errors:  # before any state is touched: a wrong folder leaves nothing behind
            raise SpecInvalid(found.errors)
        self._preloaded: SpecSet | None = found
        self.target_states = target_locations(found, self.project_root)
        places = {str(self.location): State(self.location, log=log)}
        for location in self.target_states.values():
            places.setdefault(str(location), State(location, log=log))
        self.lock: FileLock | S3Lease | LockSet = (
            places[str(self.location)].lock
            if len(places) == 1
            else LockSet([(key, place.lock) for key, place in places.items()])
        )
        self.read_only = read_only
        if not read_only:
            started = time.monotonic()
            acquire_with_wait(self.lock, lock_timeout, log)
            if time.monotonic() - started > 1.0:
                self._preloaded = None  # waited for another run: read the specs afresh
        try:
            ledgers = {key: place.open_ledger(read_only=read_only) for key, place in places.items()}
        except BaseException:
            self.lock.release()
            raise
        self.ledger: LedgerStore = (
            ledgers[str(self.location)]
            if len(places) == 1
            else RoutedLedger(
                ledgers[str(self.location)],
                {t: ledgers[str(loc)] for t, loc in self.target_states.items()},
            )
        )
        if read_only:
            self.ledger = ReadOnlyLedger(self.ledger)
        self.services: dict[str, TracedService] = {}
        self._engines: dict[str, contextlib.ExitStack] = {}  # target → its running engine
        self.specs = SpecSet()
        self.desired: list[DesiredJob] = []
        self._failures: dict[str, Failure] = {}

    def close(self) -> None:
        """Stop in-process engines, close backends and the ledger, release the lock."""
        self.stop_engines()
        for service in self.services.values():
            service.close()
        self.services.clear()
        self.ledger.close()
        self.lock.release()

    # -- one pass --------------------------------------------------------------

    def load(self) -> None:
        """Load and validate the specs; any error stops before a backend is touched."""
        specs, self._preloaded = self._preloaded or jobsdir.load(self.folder), None
        if specs.errors:
            raise SpecInvalid(specs.errors)
        campaigns = {j.job.metadata.campaign for j in specs.jobs} - {None}
        if self.campaign is not None and self.campaign not in campaigns:
            known = ", ".join(sorted(c for c in campaigns if c)) or "none"
            raise UnknownCampaign(
                f"--campaign {self.campaign}: no job belongs to it (campaigns: {known})"
            )
        unknown = self.replace_names - {j.job.metadata.name for j in specs.jobs}
        if unknown:
            raise ReconcileError(f"--replace names no job: {', '.join(sorted(unknown))}")
        if target_locations(specs, self.project_root) != self.target_states:
            raise ReconcileError(
                "a Target's state block changed since this run started; run batchctl again "
                "to use the new place"
            )
        self.specs = specs
        self.desired = desired_jobs(specs)

    def _service(self, target: str) -> TracedService:
        service = self.services.get(target)
        if service is None:
            loaded = self.specs.targets[target]
            service = TracedService(
                open_backend(loaded, self.project_root, read_only=self.read_only),
                target,
                self.trace,
            )
            self.services[target] = service
        return service

    def _targets(self) -> set[str]:
        names = {d.key[0] for d in self.desired}
        names |= {r.target for r in self.ledger.view().latest if r.target in self.specs.targets}
        return names

    def plan(self) -> Plan:
        """Observe every target and plan (nothing is changed)."""
        services: dict[str, JobService] = {t: self._service(t) for t in sorted(self._targets())}
        observed = observe(services)
        self.ledger.refresh_from(observed)
        replace = {d.key for d in self.desired if d.job.metadata.name in self.replace_names}
        return make_plan(
            self.desired,
            observed,
            self._with_failures(observed, self.ledger.view()),
            now=self.clock(),
            prune=self.prune,
            replace=replace,
            approvals=self._approvals(),
            target_kinds={name: t.kind for name, t in self.specs.targets.items()},
        )

    def estimate(self, plan: Plan, *, listing_limit: int = LISTING_LIMIT) -> Estimate:
        """The cost and duration of the jobs ``plan`` would create (objects counted, and
        a listing made, here: see reconcile.estimate)."""
        return estimate_plan(
            plan,
            self.desired,
            {loaded.key: loaded for loaded in self.specs.jobs},
            self.specs.targets,
            self.services,
            self.ledger,
            self.project_root,
            PriceBook(self.specs.pricing),
            listing_limit=listing_limit,
        )

    def _approvals(self) -> frozenset[Approval]:
        """Approvals of jobs held before creation, read only when a spec can have one (the
        history of a bucket ledger is many documents)."""
        held = any(
            d.job.spec.confirmation == "manual" and not CAPABILITIES[d.target_kind].confirmation
            for d in self.desired
            if d.target_kind in CAPABILITIES
        )
        return approvals_in(self.ledger.history()) if held else frozenset()

    def _with_failures(self, observed: list[ObservedJob], view: LedgerView) -> LedgerView:
        """The ledger's view, each current job that failed (or has failed tasks) with its reasons.

        Read once per job (DescribeJob, and the report for failed tasks) and kept in
        the ledger, since a final job does not change; a read-only run keeps them in memory.
        """
        seen = {o.job_id: o for o in observed}
        filled = {}
        for record in view.latest:
            job = seen.get(record.job_id)
            status, counts = (job.status, job.counts) if job else (record.status, record.counts)
            wanted = status is JobStatus.FAILED or (status is JobStatus.COMPLETE and counts.failed)
            if not wanted or record.failure is not None or record.target not in self.specs.targets:
                continue
            failure = self._failures.get(record.job_id)
            if failure is None:
                failure = read_failure(self._service(record.target), record.job_id)
                self._failures[record.job_id] = failure
            fresh = replace(record, status=status, counts=counts, failure=failure)
            if not self.read_only:
                self.ledger.record(fresh)
            filled[record.job_id] = fresh
        return view._replace(latest=[filled.get(r.job_id, r) for r in view.latest])

    def run_pass(self, *, apply: bool) -> PassResult:
        """One pass: load, observe, plan, and apply unless ``apply`` is False."""
        self.load()
        plan = self.plan()
        if self.campaign is not None:
            plan = only_campaign(plan, self.campaign)
        result = PassResult(plan)
        if apply and self.read_only:
            raise ReconcileError("a read-only run (--no-lock) cannot apply")
        if apply and (plan.changes or plan.adoptions):
            if lock_lost(self.lock):
                raise ReconcileError(
                    f"the lock on {self.location} was taken over or unlocked during this run; "
                    "nothing more is applied"
                )
            manifests = self._repository_manifests()
            desired = {d.key: d for d in self.desired}
            result.applied = apply_plan(
                plan,
                desired,
                dict(self.services),
                self.ledger,
                manifests=manifests,
                log=self.log,
            )
            if self.replace_names and not result.applied.errors:
                self.replace_names.clear()  # replaced once, not at every pass
        result.calls = self.call_counts()
        return result

    def _repository_manifests(self) -> dict[JobKey, bytes]:
        found: dict[JobKey, bytes] = {}
        for loaded in self.specs.jobs:
            if loaded.job.spec.manifest.file is not None:
                try:
                    found[loaded.key] = jobsdir.read_manifest_file(loaded, self.project_root)
                except (jobsdir.ManifestFileError, OSError) as exc:
                    raise ReconcileError(f"{loaded.doc.file}: manifest.file: {exc}") from exc
        return found

    def call_counts(self) -> dict[str, int]:
        """API calls made so far, by name."""
        total: dict[str, int] = {}
        for service in self.services.values():
            for name, count in service.calls.items():
                total[name] = total.get(name, 0) + count
        return total

    # -- the embedded engine ---------------------------------------------------

    def _engines_not_running_here(self) -> Iterator[tuple[str, RunsItsEngine]]:
        """Each target whose jobs need a worker (the embedded engine's) not run by this process."""
        for target in sorted(self._targets()):
            service = self._service(target).inner
            if isinstance(service, RunsItsEngine) and target not in self._engines:
                yield target, service

    def idle_engines(self, plan: Plan, *, applied: bool = False) -> list[str]:
        """One line for each local target whose jobs wait for a worker that is not running
        (``applied``: the jobs the plan's actions just created or confirmed count too)."""
        making = _MAKES_WORK if applied else frozenset()
        lines = []
        for target, service in self._engines_not_running_here():
            stuck = [
                f"{a.name} ({a.status.value if a.status in _NEEDS_WORKER else a.kind.value})"
                for a in (*plan.actions, *plan.orphans)
                if a.target == target and (a.status in _NEEDS_WORKER or a.kind in making)
            ]
            if stuck and not service.worker_running():
                flag = f" --target {target}" if target != "local" else ""
                lines.append(
                    f"no engine is running for target {target}: {', '.join(stuck)} will not "
                    f"move until `batchctl engine run{flag}` (or `batchctl reconcile "
                    "--until-done`) runs"
                )
        return lines

    def start_engines(self) -> list[str]:
        """Run the engine of every local target in this process, unless a worker serves it."""
        started = []
        for target, service in self._engines_not_running_here():
            stack = contextlib.ExitStack()
            elsewhere = stack.enter_context(service.running())
            if elsewhere is not None:
                stack.close()
                if self.log:
                    self.log(f"target {target}: the engine is served by {elsewhere}")
                continue
            self._engines[target] = stack
            started.append(target)
        return started

    def stop_engines(self) -> None:
        """Stop the in-process engines; running tasks finish and are recorded first."""
        while self._engines:
            _, stack = self._engines.popitem()
            stack.close()


__all__ = [
    "Controller",
    "PassResult",
    "ReconcileError",
    "UnknownCampaign",
    "desired_jobs",
    "only_campaign",
    "settled",
    "troubled",
]
