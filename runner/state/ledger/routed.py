"""Targets that keep their own state: one ledger view over several places.

A Target's ``state:`` block puts the records of its jobs in that place instead of the
project's state. The reconciler then sees one ledger: records are written where
their target's state is, read from everywhere (a record written before the block
was added stays visible where it is: nothing is lost) (their locks: ``runner.state.locks.LockSet``).
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.state.errors import StateError
from runner.state.ledger import LedgerStore, Observed
from runner.state.records import LedgerRecord, LedgerView, view_of


class RoutedLedger:
    """The ledgers of the project and of targets with their own state, as one."""

    def __init__(self, default: LedgerStore, routes: dict[str, LedgerStore]) -> None:
        self.default = default
        self.routes = routes
        self._all: list[LedgerStore] = [default]
        for ledger in routes.values():
            if all(ledger is not known for known in self._all):
                self._all.append(ledger)

    def _for(self, target: str) -> LedgerStore:
        return self.routes.get(target, self.default)

    def records(self) -> list[LedgerRecord]:
        """Every record of every place (each job once)."""
        seen: dict[str, LedgerRecord] = {}
        for ledger in self._all:
            for record in ledger.records():
                seen.setdefault(record.job_id, record)
        return sorted(seen.values(), key=lambda r: (r.target, r.name, r.generation))

    def view(self) -> LedgerView:
        """Each job's newest generation over every place, and every job ID."""
        return view_of(self.records())

    def record(self, record: LedgerRecord) -> None:
        """Write the record where its target's state is."""
        self._for(record.target).record(record)

    def refresh_from(self, observed: Iterable[Observed]) -> None:
        """Refresh every place (each updates the jobs it records)."""
        seen = list(observed)
        for ledger in self._all:
            ledger.refresh_from(seen)

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Remember an action where its target's state is."""
        self._for(target).note(target, name, action, job_id, detail)

    def history(self) -> list[dict[str, object]]:
        """Every place's history, oldest first."""
        merged = [entry for ledger in self._all for entry in ledger.history()]
        return sorted(merged, key=lambda entry: float(str(entry["at"])))

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Not here: `state migrate` moves one place at a time."""
        raise ValueError("migrate one state at a time (--state PLACE)")

    def retire(self, stamp: str) -> str:
        """Refused: each place is migrated on its own (``state migrate --state``)."""
        raise StateError("a routed ledger is migrated one state at a time")

    def close(self) -> None:
        """Close every place."""
        for ledger in self._all:
            ledger.close()
