"""Moving a ledger to another place (folder ↔ bucket) without losing a record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from runner.state.errors import StateError
from runner.state.location import State, StateLocation


@dataclass(frozen=True)
class Moved:
    """What a migration moved, and where the old ledger was set aside."""

    records: int
    history: int
    kept: str


def migrate(source: StateLocation, target: StateLocation) -> Moved:
    """Copy the ledger under both locks, check the copy, then set the source aside.

    Refuses (StateError) a missing source or a target that already holds a ledger;
    the source is untouched unless the copy matched.
    """
    if str(target) == str(source):
        raise StateError(f"the state is already at {source}")
    source_state, target_state = State(source), State(target)
    if not source_state.has_ledger():
        raise StateError(f"there is no ledger at {source} to move")
    source_state.lock.acquire()
    try:
        target_state.lock.acquire()
        try:
            return _move(source_state, target_state)
        finally:
            target_state.lock.release()
    finally:
        source_state.lock.release()


def _move(source: State, target: State) -> Moved:
    old = source.open_ledger()
    new = target.open_ledger()
    try:
        records, history = old.records(), old.history()
        if new.records() or new.history():
            raise StateError(f"{target.location} already holds a ledger; nothing was moved")
        try:
            new.import_all(records, history)
        except ValueError as exc:
            raise StateError(str(exc)) from exc
        if new.records() != records or len(new.history()) != len(history):
            raise StateError(
                f"the copy at {target.location} does not match {source.location}; "
                "the old ledger is untouched"
            )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Moved(len(records), len(history), old.retire(stamp))
    finally:
        old.close()
        new.close()
