"""The run lock: one reconcile at a time per state, wherever the state is.

A folder's lock is a ``flock`` on ``<folder>/reconcile.lock`` (``runner.support.filelock``);
a bucket's is a lease object (``lease.py``). A project whose targets keep their own
state takes every place's lock, in a fixed order, so two runners never wait on each
other in a circle (``LockSet``). Both kinds pass ``tests/state/test_lock_contract.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from runner.support.filelock import FileLock

if TYPE_CHECKING:
    from runner.state.locks.lease import S3Lease


class RunLock(Protocol):
    """What a reconcile needs of a lock."""

    def acquire(self) -> None:
        """Take it, or raise LockHeld naming the holder."""
        ...

    def release(self) -> None:
        """Let go of it (nothing when not held)."""
        ...


class LockSet:
    """Several locks taken in a fixed order, released in the reverse one."""

    def __init__(self, locks: Sequence[tuple[str, FileLock | S3Lease]]) -> None:
        self.locks = sorted(locks, key=lambda item: item[0])
        self._held: list[FileLock | S3Lease] = []

    def acquire(self) -> None:
        """Take every lock, or none (LockHeld names the one that is held)."""
        try:
            for _, lock in self.locks:
                lock.acquire()
                self._held.append(lock)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Let go of every lock held."""
        while self._held:
            self._held.pop().release()

    @property
    def lost(self) -> bool:
        """Whether any bucket lease was lost while held."""
        return any(getattr(lock, "lost", False) for _, lock in self.locks)
