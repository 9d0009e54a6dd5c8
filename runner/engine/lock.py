"""One worker per state folder: the engine's lock is ``<stateDir>/engine.lock``."""

from __future__ import annotations

from pathlib import Path

from runner.support.filelock import FileLock, held


def worker_lock(state_dir: Path) -> FileLock:
    """The lock a worker holds on its state folder."""
    return FileLock(state_dir / "engine.lock")


def worker_running(state_dir: Path) -> bool:
    """Whether a worker serves the state folder ``state_dir`` now."""
    return held(state_dir / "engine.lock")
