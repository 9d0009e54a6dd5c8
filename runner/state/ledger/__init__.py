"""The ledger: every job batchctl made, so a finished job is never re-run by mistake.

Jobs leave ListJobs 90 days after they end; the ledger remembers them for
good: target, name, generation, job ID, spec hash, the immutable fields as
they were, the last status and counts seen, the report location and times.
SQLite by default (``sqlite.py``, ``<project>/.batchctl/ledger.db``), or a document
in a bucket (``bucket.py``); ``routed.py`` sends each target to its own.
Every implementation passes ``tests/state/test_ledger_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from runner.jobs.progress import Counts
from runner.jobs.status import JobStatus
from runner.state.records import LedgerRecord, LedgerView


class Observed(Protocol):
    """What one ListJobs sweep showed of a job (the reconciler's ObservedJob is one)."""

    @property
    def job_id(self) -> str: ...

    @property
    def status(self) -> JobStatus: ...

    @property
    def counts(self) -> Counts: ...

    @property
    def terminated(self) -> float | None: ...


class LedgerStore(Protocol):
    """What the reconciler needs of a ledger: SQLite here, or a bucket."""

    def records(self) -> list[LedgerRecord]:
        """Every recorded job."""
        ...

    def view(self) -> LedgerView:
        """Each job's newest generation and every job ID: what a plan reads."""
        ...

    def record(self, record: LedgerRecord) -> None:
        """Add a job (or refresh it, if its generation is known)."""
        ...

    def refresh_from(self, observed: Iterable[Observed]) -> None:
        """Store the statuses and counts one ListJobs sweep showed."""
        ...

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Remember an applied action."""
        ...

    def history(self) -> list[dict[str, object]]:
        """Every applied action, oldest first."""
        ...

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Fill an empty ledger with another's records and history."""
        ...

    def retire(self, stamp: str) -> str:
        """Set the ledger aside under a name ending in ``migrated-<stamp>``; return where."""
        ...

    def close(self) -> None:
        """Release the ledger."""
        ...


class ReadOnlyLedger:
    """A ledger to read only (``plan --no-lock``): what is observed is not written back."""

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner

    def records(self) -> list[LedgerRecord]:
        """Every recorded job."""
        return self.inner.records()

    def view(self) -> LedgerView:
        """Each job's newest generation and every job ID."""
        return self.inner.view()

    def record(self, record: LedgerRecord) -> None:
        """Refused: nothing is written without the lock."""
        raise PermissionError("the ledger was opened read-only (--no-lock)")

    def refresh_from(self, observed: Iterable[Observed]) -> None:
        """Nothing: the plan uses what it observed; the ledger is refreshed by locked runs."""

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Refused: nothing is written without the lock."""
        raise PermissionError("the ledger was opened read-only (--no-lock)")

    def history(self) -> list[dict[str, object]]:
        """Every applied action, oldest first."""
        return self.inner.history()

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Refused: nothing is written without the lock."""
        raise PermissionError("the ledger was opened read-only (--no-lock)")

    def retire(self, stamp: str) -> str:
        """Refused: nothing is written without the lock."""
        raise PermissionError("the ledger was opened read-only (--no-lock)")

    def close(self) -> None:
        """Close the ledger underneath."""
        self.inner.close()
