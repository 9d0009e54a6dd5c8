"""An exclusive lock file that names its holder.

The lock is an ``flock`` on a file, released by the kernel
when the process dies (kill -9 included), so a crashed holder never leaves a
stale lock. The file holds the holder's pid, host and start time so that whoever
is refused can be told who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    pid: int
    host: str
    started: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started}"


class LockHeld(Exception):
    """Another process holds the lock."""

    def __init__(self, where: Path | str, holder: Holder | None) -> None:
        who = str(holder) if holder else "another process"
        super().__init__(f"{where} is held by {who}")
        self.where = str(where)
        self.holder = holder


class LockUnavailable(Exception):
    """The lock file cannot be made or opened (a read-only folder, say)."""


class FileLock:
    """An exclusive, non-blocking lock on ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder (LockUnavailable: cannot write)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        except OSError as exc:
            raise LockUnavailable(
                f"cannot take the lock {self.path}: {exc.strerror}; commands that only read "
                "(status, plan --no-lock, state show, jobs list) need no lock"
            ) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LockHeld(self.path, read_holder(self.path)) from None
        handle.seek(0)
        handle.truncate()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now}))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Let go of the lock."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file, if it can be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` now; creates and changes nothing.

    A shared probe for an instant: a worker that starts at that very instant is refused
    once and told who holds the lock, which the reconciler retries at its next pass.
    """
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError:
        return False  # no lock file: nobody ever served this folder
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
