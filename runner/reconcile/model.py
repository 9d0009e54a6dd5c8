"""The planner's inputs and outputs: desired jobs, observed jobs, ledger records, actions.

Plain frozen values, no I/O: ``plan`` takes them and returns a ``Plan``;
``observe`` and ``ledger`` produce the inputs, ``apply`` consumes the plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

from runner.jobs.status import JobStatus
from runner.spec.models import BatchJob

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


@dataclass(frozen=True)
class Counts:
    """Task counters of a job."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        """Tasks that ran."""
        return self.succeeded + self.failed

    def percent(self) -> int:
        """Share of tasks that ran, in percent."""
        return int(100 * self.done / self.total) if self.total else 0


@dataclass(frozen=True)
class Failure:
    """Why a job failed, or what its failed tasks failed with."""

    reasons: tuple[tuple[str, str], ...] = ()  # (code, reason) of a Failed job
    top_error: tuple[str, int] | None = None  # the commonest error code of failed tasks, count
    note: str | None = None  # what could not be read (no report, report unreadable)

    def text(self) -> str:
        """``ManifestGenerationFailed: cannot list …`` or ``top error NoSuchKey (3 tasks)``."""
        if self.reasons:
            return "; ".join(
                f"{code}: {reason}" if reason else code for code, reason in self.reasons
            )
        if self.top_error is not None:
            code, count = self.top_error
            return f"top error {code} ({count:,} task{'s' if count != 1 else ''})"
        return self.note or ""

    def to_json(self) -> str:
        """The ledger's form."""
        return json.dumps(
            {
                "reasons": [list(r) for r in self.reasons],
                "topError": list(self.top_error) if self.top_error else None,
                "note": self.note,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Failure | None:
        """Read the ledger's form back (None when nothing is recorded)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            top = data.get("topError")
            return cls(
                reasons=tuple((str(c), str(r)) for c, r in data.get("reasons") or ()),
                top_error=(str(top[0]), int(top[1])) if top else None,
                note=data.get("note"),
            )
        except (ValueError, TypeError, IndexError, AttributeError):
            return None


@dataclass(frozen=True)
class ObservedJob:
    """A managed job as one ListJobs sweep shows it."""

    target: str
    job_id: str
    name: str
    spec_hash: str
    status: JobStatus
    priority: int
    counts: Counts
    created: float
    terminated: float | None = None


@dataclass(frozen=True)
class LedgerRecord:
    """One job batchctl made, as the ledger remembers it."""

    target: str
    name: str
    generation: int
    job_id: str
    spec_hash: str
    status: JobStatus
    counts: Counts = Counts()
    created: float = 0.0
    terminated: float | None = None
    immutable: str = ""
    staged: bool = False
    report: str | None = None
    slot: float | None = None  # the scheduled run this generation is (recurring jobs)
    failure: Failure | None = None  # read once the job is final with failures

    @property
    def key(self) -> JobKey:
        """(target, name)."""
        return (self.target, self.name)


class ActionKind(StrEnum):
    """What the plan does for one spec."""

    CREATE = "create"
    STAGE = "stage"
    CONFIRM = "confirm"
    SET_PRIORITY = "priority"
    CANCEL = "cancel"
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
