"""Where a key lives on disk, and the rules that keep it inside its bucket folder.

Keys are confined to their bucket folder: a key with a NUL, a backslash, an empty,
``.`` or ``..`` segment, a leading or trailing ``/`` is refused, and so is any path
that passes through a symlink already in the tree. Bucket names cannot start with a
dot, so the sidecar folder never collides with a bucket.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from runner.stores.base import StoreError, no_such_bucket


def check_bucket_name(bucket: str) -> None:
    """Refuse names that are not one plain folder below the root."""
    if not bucket or bucket.startswith(".") or "/" in bucket or "\\" in bucket:
        raise StoreError(400, "InvalidBucketName", f"The bucket name is not valid: {bucket}")


def check_key(key: str) -> list[str]:
    """Refuse keys that cannot be a file below the bucket folder; return the segments."""
    parts = key.split("/")
    problem = None
    if not key:
        problem = "empty key"
    elif len(key) > 1024 and len(key.encode()) > 1024:
        problem = "key longer than 1024 bytes"
    elif "\0" in key or "\\" in key:
        problem = "NUL and backslash are not allowed in keys of the dir store"
    elif key[0] == "/" or key[-1] == "/":
        problem = "keys of the dir store cannot start or end with '/'"
    elif "" in parts or "." in parts or ".." in parts:
        problem = "empty, '.' and '..' segments are not allowed in keys of the dir store"
    if problem:
        raise StoreError(400, "InvalidArgument", f"{problem}: {key!r}")
    return parts


def stat_file(path: str | Path) -> os.stat_result | None:
    """The status of a regular file at ``path``; None if there is none; a symlink is refused."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(info.st_mode):
        raise StoreError(403, "AccessDenied", "symlink in the store")
    if not stat.S_ISREG(info.st_mode):
        return None
    return info


def open_data(path: str | Path) -> BinaryIO:
    """Open a file for reading without following a symlink put there since it was checked."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


class Folders:
    """Bucket folders and key paths below ``root``, checked once and then remembered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_text = str(root)
        # Folders already checked to be real directories (not symlinks): a campaign
        # touches the same few folders millions of times.
        self._safe_dirs: set[str] = set()
        self._bucket_paths: dict[str, str] = {}

    def bucket_dir(self, bucket: str) -> str:
        """The bucket's folder; NoSuchBucket if it does not exist."""
        path = self._bucket_paths.get(bucket)
        if path is not None:
            return path
        check_bucket_name(bucket)
        path = os.path.join(self._root_text, bucket)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise no_such_bucket(bucket) from None
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise StoreError(403, "AccessDenied", f"bucket {bucket} is not a plain folder")
        self._bucket_paths[bucket] = path
        return path

    def path(self, bucket: str, key: str, *, create_dirs: bool = False) -> str:
        """The file of ``key``; with ``create_dirs`` its parent folders are made."""
        base = self.bucket_dir(bucket)
        parts = check_key(key)
        current = base
        for part in parts[:-1]:
            current = f"{current}/{part}"
            if current in self._safe_dirs:
                continue
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                if not create_dirs:
                    return f"{base}/{key}"
                with contextlib.suppress(FileExistsError):
                    os.mkdir(current)
                mode = os.lstat(current).st_mode
            if stat.S_ISLNK(mode):
                raise StoreError(403, "AccessDenied", f"symlink in the store: {bucket}/{key}")
            if not stat.S_ISDIR(mode):
                raise StoreError(
                    400,
                    "InvalidArgument",
                    f"the dir store cannot hold {key!r}: a parent of it is an object, not a folder",
                )
            self._safe_dirs.add(current)
        return f"{current}/{parts[-1]}"

    def prune(self, bucket: str, path: str) -> None:
        """Remove the folders a deleted key leaves empty, up to the bucket folder."""
        base = self.root / bucket
        parent = Path(path).parent
        while parent != base and base in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            self._safe_dirs.discard(str(parent))
            parent = parent.parent
