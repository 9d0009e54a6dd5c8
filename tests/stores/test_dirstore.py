"""What only the dir store has to prove: files on disk, symlinks, the sidecar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.stores.base import CopyOptions, StoreError
from runner.stores.dirstore import SIDECAR, DirStore


@pytest.fixture
def dir_store(tmp_path: Path) -> DirStore:
    s = DirStore(tmp_path / "root")
    s.create_bucket("b")
    return s


def test_buckets_are_folders_and_keys_are_files(dir_store: DirStore, tmp_path: Path) -> None:
    dir_store.put("b", "x/y.txt", b"content")
    assert (tmp_path / "root" / "b" / "x" / "y.txt").read_bytes() == b"content"


def test_files_put_by_hand_are_objects(dir_store: DirStore, tmp_path: Path) -> None:
    (tmp_path / "root" / "b" / "hand").mkdir()
    (tmp_path / "root" / "b" / "hand" / "made.txt").write_bytes(b"hi")
    assert dir_store.head("b", "hand/made.txt").size == 2
    dir_store.put_tags("b", "hand/made.txt", None, {"k": "v"})
    assert dir_store.get_tags("b", "hand/made.txt") == {"k": "v"}


def test_symlinked_folder_is_refused(dir_store: DirStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    os.symlink(outside, tmp_path / "root" / "b" / "link")
    for call in (
        lambda: dir_store.head("b", "link/secret"),
        lambda: dir_store.put("b", "link/new", b"x"),
        lambda: dir_store.delete("b", "link/secret"),
    ):
        with pytest.raises(StoreError) as raised:
            call()
        assert raised.value.code == "AccessDenied"
    assert (outside / "secret").read_bytes() == b"s"
    assert not (outside / "new").exists()
    assert [i.key for i in dir_store.list("b")] == []


def test_symlinked_file_is_refused(dir_store: DirStore, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"t")
    os.symlink(target, tmp_path / "root" / "b" / "f")
    with pytest.raises(StoreError) as raised:
        dir_store.open("b", "f")
    assert raised.value.code == "AccessDenied"


def test_symlinked_bucket_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    store = DirStore(tmp_path / "root")
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "evil")
    with pytest.raises(StoreError) as raised:
        store.put("evil", "k", b"x")
    assert raised.value.code == "AccessDenied"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_key_cannot_be_both_object_and_folder(dir_store: DirStore) -> None:
    dir_store.put("b", "a", b"x")
    with pytest.raises(StoreError) as raised:
        dir_store.put("b", "a/b", b"y")
    assert raised.value.http_status == 400


def test_empty_folders_are_removed_with_their_last_object(
    dir_store: DirStore, tmp_path: Path
) -> None:
    dir_store.put("b", "deep/er/k", b"x")
    dir_store.delete("b", "deep/er/k")
    assert list((tmp_path / "root" / "b").iterdir()) == []


def test_a_locked_object_cannot_be_overwritten(dir_store: DirStore) -> None:
    dir_store.put("b", "held", b"x")
    dir_store.put_legal_hold("b", "held", None, True)
    with pytest.raises(StoreError) as raised:
        dir_store.put("b", "held", b"y")
    assert raised.value.code == "AccessDenied"
    dir_store.create_bucket("c")
    dir_store.put("c", "x", b"z")
    with pytest.raises(StoreError) as copied:
        dir_store.copy("c", "x", None, "b", "held", CopyOptions())
    assert copied.value.code == "AccessDenied"


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "/etc/passwd", "a\\b", "a\0b", "a//b", "a/", "./a", ""]
)
def test_keys_cannot_leave_the_bucket(dir_store: DirStore, key: str) -> None:
    with pytest.raises(StoreError) as raised:
        dir_store.put("b", key, b"x")
    assert raised.value.http_status == 400


def test_a_store_from_before_encryption_opens(tmp_path: Path) -> None:
    import sqlite3

    from runner.stores.base import CopyOptions

    old = DirStore(tmp_path / "objects")
    old.create_bucket("b")
    old.put("b", "k", b"x")
    db = tmp_path / "objects" / SIDECAR / "meta.db"
    old.close()
    with sqlite3.connect(db) as conn:  # as a store written by an earlier batchctl
        conn.execute("ALTER TABLE objects DROP COLUMN encryption")
    reopened = DirStore(tmp_path / "objects")
    assert reopened.head("b", "k").encryption is None
    reopened.copy("b", "k", None, "b", "k2", CopyOptions(encryption="AES256"))
    assert reopened.head("b", "k2").encryption == "AES256"
    reopened.close()


def test_a_read_ahead_session_writes_to_the_versions_a_lookup_would(tmp_path: Path) -> None:
    """session(objects) looks up the latest versions at once; every answer must be the one
    a lookup per object gives: delete markers refused, missing files refused, and what a
    data write in the block changes not served from the read-ahead."""
    store = DirStore(tmp_path / "objects")
    store.create_bucket("v", versioning=True)
    store.create_bucket("b")
    store.put("v", "gone", b"x")
    store.delete("v", "gone")  # a delete marker is the latest
    first = store.put("v", "kept", b"1")
    old = store.put("v", "other", b"1")
    store.put("b", "plain", b"p")
    (tmp_path / "objects" / "b" / "by-hand").write_bytes(b"h")  # a file with no row
    objects = [("v", "gone"), ("v", "kept"), ("v", "other"), ("b", "plain"), ("b", "by-hand")]
    objects.append(("b", "none"))
    with store.session(objects):
        new = store.put("v", "other", b"2")  # a new latest before its read-ahead is used
        store.put_tags("v", "other", None, {"t": "new"})
        with pytest.raises(StoreError) as raised:
            store.put_tags("v", "gone", None, {"t": "1"})
        assert raised.value.code == "NoSuchKey"
        store.put_tags("v", "kept", None, {"t": "1"})
        store.put_tags("b", "plain", None, {"t": "1"})
        store.put_tags("b", "by-hand", None, {"t": "1"})
        with pytest.raises(StoreError) as raised:
            store.put_tags("b", "none", None, {"t": "1"})
        assert raised.value.code == "NoSuchKey"
        second = store.put("v", "kept", b"2")  # a new latest: the read-ahead is dropped
        store.put_tags("v", "kept", None, {"t": "2"})
    assert store.get_tags("v", "kept") == {"t": "2"}
    assert store.get_tags("v", "kept", first.version_id) == {"t": "1"}
    assert second.version_id != first.version_id
    assert store.get_tags("v", "other") == {"t": "new"}
    assert store.get_tags("v", "other", new.version_id) == {"t": "new"}
    assert store.get_tags("v", "other", old.version_id) == {}
    assert store.get_tags("b", "plain") == {"t": "1"}
    assert store.get_tags("b", "by-hand") == {"t": "1"}
    store.close()
