"""The planner's inputs and outputs: desired jobs, observed jobs, ledger records, actions.

Plain frozen values, no I/O: ``plan`` takes them and returns a ``Plan``;
``observe`` and ``ledger`` produce the inputs, ``apply`` consumes the plan.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple

from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus
from runner.spec.models import BatchJob
from runner.state.records import LedgerRecord

JobKey = tuple[str, str]  # (target, name)


def client_token(target: str, name: str, spec_hash: str, generation: int) -> str:
    """The ClientRequestToken of one generation of a spec (≤ 64 characters)."""
    digest = hashlib.sha256(f"{target}/{name}:{spec_hash}:{generation}".encode()).hexdigest()
    return f"batchctl-{digest[:48]}"


@dataclass(frozen=True)
class DesiredJob:
    """A BatchJob spec with its identity hash and its target's kind."""

    job: BatchJob
    spec_hash: str
    target_kind: str
    immutable: str  # canonical JSON of the immutable fields, for drift messages

    @property
    def key(self) -> JobKey:
        """(target, name)."""
        return (self.job.spec.target, self.job.metadata.name)


class ObservedJob(NamedTuple):
    """A managed job as one ListJobs sweep shows it.

    A tuple: built once per listed job, a frozen dataclass's __init__ was a fifth of
    observing 100,000 jobs (bench/reconcile.py).
    """

    target: str
    job_id: str
    name: str
    spec_hash: str
    status: JobStatus
    priority: int
    counts: Counts
    created: float
    terminated: float | None = None


class ActionKind(StrEnum):
    """What the plan does for one spec."""

    CREATE = "create"
    STAGE = "stage"
    CONFIRM = "confirm"
    SET_PRIORITY = "priority"
    CANCEL = "cancel"
    DELETE = "delete"  # a finished job of a removed spec, where jobs stay listed (--prune)
    RECREATE = "recreate"
    WAIT = "wait"
    BLOCKED = "blocked"
    NOOP = "noop"

    @property
    def changes(self) -> bool:
        """Whether applying it changes anything."""
        return self not in (ActionKind.WAIT, ActionKind.BLOCKED, ActionKind.NOOP)


@dataclass(frozen=True)
class Action:
    """One spec's action, with the reason a person reads."""

    kind: ActionKind
    target: str
    name: str
    reason: str
    spec_hash: str = ""
    campaign: str | None = None
    job_id: str | None = None
    status: JobStatus | None = None
    counts: Counts | None = None
    generation: int | None = None
    priority: int | None = None
    old_priority: int | None = None
    depends_on: tuple[str, ...] = ()
    # (target, name, condition) of each dependsOn entry: the campaign's graph
    dependencies: tuple[tuple[str, str, str], ...] = ()
    awaiting_confirmation: bool = False
    failed: bool = False
    orphan: bool = False
    staged: bool = False
    slot: float | None = None  # the scheduled run a new generation is for
    window_start: float | None = None  # createdAfter: lastRun (the previous run's creation)
    next_run: float | None = None  # a recurring job's next scheduled run
    # Jobs awaiting a person that this one waits on (transitively): nothing moves without them.
    held_by: tuple[str, ...] = ()
    attention: str | None = None  # why a person must look: Failed, failures beyond tolerance
    failure: Failure | None = None
    command: str | None = None  # what a person runs to move this job on

    @property
    def key(self) -> JobKey:
        """(target, name)."""
        return (self.target, self.name)

    def changed(self, **changes: Any) -> Action:
        """A copy with ``changes``: ``dataclasses.replace`` at a sixth of its cost.

        replace() walks every field and runs the frozen __init__; a plan makes two copies
        per job, and at 10,000 jobs that was a quarter of planning (bench/reconcile.py).
        No __post_init__ exists to skip; unknown names are refused as replace() refuses them.
        """
        unknown = changes.keys() - _ACTION_FIELDS
        if unknown:
            raise TypeError(f"Action has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(Action)
        attributes = copy.__dict__
        attributes.update(self.__dict__)
        attributes.update(changes)
        return copy


_ACTION_FIELDS = frozenset(f.name for f in fields(Action))


@dataclass(frozen=True)
class Plan:
    """Every spec's action, in dependency order, plus orphans and jobs to record."""

    actions: tuple[Action, ...]
    orphans: tuple[Action, ...] = ()
    adoptions: tuple[LedgerRecord, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changes(self) -> list[Action]:
        """Actions that change something when applied."""
        return [a for a in (*self.actions, *self.orphans) if a.kind.changes]

    def summary(self) -> dict[str, int]:
        """Counts per kind of change, and of waiting and blocked specs."""
        counts: dict[str, int] = {}
        for action in (*self.actions, *self.orphans):
            counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
        return counts


class PlanError(Exception):
    """The plan cannot be made (``onChange: error`` met drift); names every cause."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
