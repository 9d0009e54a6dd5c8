"""Noncurrent versions of a versioned bucket: files set aside under
``.batchctl-store/versions/<bucket>/<blob>``, their rows in the sidecar.

Each change moves a file and changes a row inside one sidecar transaction, the
row first: if the move fails the row is rolled back, so a row never names a blob
that is not there because of a failed move.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from sqlite3 import Connection

from runner.stores.dirstore.keys import Folders, stat_file
from runner.stores.dirstore.sidecar import NULL_VERSION, Row, Sidecar


def written_at(default: float, row: Row | None) -> float:
    """When a version was written: its row's time, else ``default`` (the file's mtime)."""
    if row and row["last_modified"]:
        return float(row["last_modified"])
    return default


class Versions:
    """The set-aside files of noncurrent versions."""

    def __init__(self, folder: Path, sidecar: Sidecar, folders: Folders) -> None:
        self._folder = folder
        self._sidecar = sidecar
        self._folders = folders

    def blob(self, bucket: str, blob: object) -> Path:
        """Where a noncurrent version's content is kept."""
        return self._folder / bucket / str(blob)

    def set_aside(
        self, conn: Connection, bucket: str, key: str, path: str, current: Row | None
    ) -> None:
        """In a transaction: make the current file of ``key`` a noncurrent version."""
        blob = uuid.uuid4().hex
        old = current["version_id"] if current else NULL_VERSION
        (self._folder / bucket).mkdir(exist_ok=True)
        conn.execute(
            "INSERT INTO objects (bucket, key, version_id, is_latest, blob, last_modified) "
            "VALUES (?,?,?,0,?,?) ON CONFLICT (bucket, key, version_id) "
            "DO UPDATE SET is_latest=0, blob=excluded.blob",
            (bucket, key, old, blob, written_at(os.lstat(path).st_mtime, current)),
        )
        os.replace(path, self.blob(bucket, blob))

    def delete(self, bucket: str, key: str, row: Row) -> None:
        """Remove one noncurrent version, row and file."""
        with self._sidecar.transaction() as conn:
            conn.execute(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, row["version_id"]),
            )
            if row["blob"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.blob(bucket, row["blob"]))

    def promote(self, bucket: str, key: str) -> None:
        """After the latest version went away, the newest remaining one becomes current."""
        found = self._sidecar.newest(bucket, key)
        if found is None:
            return
        version, marker, blob = found
        path = self._folders.path(bucket, key, create_dirs=True)
        with self._sidecar.transaction() as conn:
            conn.execute(
                "UPDATE objects SET is_latest=1, blob=NULL WHERE bucket=? AND key=? "
                "AND version_id=?",
                (bucket, key, version),
            )
            if not marker and blob:
                os.replace(self.blob(bucket, blob), path)

    def listed(self, bucket: str, prefix: str) -> Iterator[tuple[Row, os.stat_result]]:
        """Noncurrent versions under ``prefix`` whose content is there, with its status."""
        for row in self._sidecar.noncurrent_rows(bucket, prefix):
            info = stat_file(self.blob(bucket, row["blob"]))
            if info is not None:
                yield row, info
