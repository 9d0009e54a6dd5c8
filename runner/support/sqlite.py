"""One SQLite connection per thread, closed together: the engine's database and the
dir store's sidecar both keep their files this way.

SQLite connections must not be shared between threads without a lock of their own,
and opening one per call costs more than the statement. Each thread therefore opens
its own on first use (WAL, ``synchronous=NORMAL``: a crash loses at most the last
commits, never the file's consistency), and ``close()`` closes them all — from any
thread, so a store or engine can be shut down by whoever owns it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path


def open_wal(path: Path, *, timeout: float) -> sqlite3.Connection:
    """A read-write connection in autocommit mode (transactions are explicit), WAL."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class ThreadConnections:
    """This thread's connection to one database, opened by ``opener`` on first use."""

    def __init__(self, opener: Callable[[], sqlite3.Connection]) -> None:
        self._opener = opener
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._opener()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection; the next ``get()`` opens a new one."""
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
