"""The object-store contract: S3's object model, the same for every store."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from runner.stores.base import CopyOptions, ObjectStore, Retention, StoreError
from tests.stores.conftest import deviation


def _error(call: object, *args: object, **kwargs: object) -> StoreError:
    with pytest.raises(StoreError) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value


def test_put_head_open(store: ObjectStore) -> None:
    info = store.put("src", "a/b.txt", b"hello", content_type="text/plain", metadata={"k": "v"})
    assert info.size == 5
    head = store.head("src", "a/b.txt")
    assert head.etag == hashlib.md5(b"hello").hexdigest()
    assert head.content_type == "text/plain"
    assert head.metadata == {"k": "v"}
    with store.open("src", "a/b.txt") as stream:
        assert stream.read() == b"hello"


def test_missing_objects_and_buckets(store: ObjectStore) -> None:
    assert _error(store.head, "src", "nope").code == "NoSuchKey"
    assert _error(store.head, "src", "nope").http_status == 404
    assert _error(store.put_tags, "src", "nope", None, {"a": "b"}).code == "NoSuchKey"
    assert _error(store.head, "no-bucket", "x").code == "NoSuchBucket"
    assert not store.bucket_exists("no-bucket")
    assert store.bucket_exists("src")


def test_tags(store: ObjectStore) -> None:
    store.put("src", "t", b"x", tags={"old": "1"})
    assert store.get_tags("src", "t") == {"old": "1"}
    with store.session():
        store.put_tags("src", "t", None, {"new": "2"})
    assert store.get_tags("src", "t") == {"new": "2"}
    store.delete_tags("src", "t")
    assert store.get_tags("src", "t") == {}


def test_acl(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    deviation(request, seaweedfs="refuses PutObjectAcl (AccessDenied) without IAM identities")
    store.put("src", "a", b"x")
    assert store.get_acl("src", "a") == "private"
    store.put_acl("src", "a", None, "public-read")
    assert store.get_acl("src", "a") == "public-read"


def test_copy_directives(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    store.put("src", "k", b"data", metadata={"m": "1"}, tags={"t": "1"}, content_type="a/b")
    store.copy("src", "k", None, "dst", "copy/k", CopyOptions())
    assert store.get_tags("dst", "copy/k") == {"t": "1"}
    assert store.head("dst", "copy/k").metadata == {"m": "1"}
    options = CopyOptions(
        metadata_directive="REPLACE",
        metadata={"n": "2"},
        content_type="text/plain",
        tagging_directive="REPLACE",
        tags={},
        storage_class="STANDARD_IA",
        canned_acl="public-read",
        checksum_algorithm="SHA256",
    )
    store.copy("src", "k", None, "dst", "k2", options)
    head = store.head("dst", "k2")
    assert head.metadata == {"n": "2"}
    assert head.content_type == "text/plain"
    assert head.storage_class == "STANDARD_IA"
    assert store.get_tags("dst", "k2") == {}
    with store.open("dst", "k2") as stream:
        assert stream.read() == b"data"
    deviation(request, seaweedfs="keeps no ACL from a copy (ACLs need IAM identities)")
    assert store.get_acl("dst", "k2") == "public-read"


def test_copy_with_grants(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    deviation(request, seaweedfs="refuses ACL grants (ACLs need IAM identities)")
    store.put("src", "k", b"data")
    grants = (("READ", "0123abcd"), ("FULL_CONTROL", "99ff"))
    store.copy("src", "k", None, "dst", "granted", CopyOptions(grants=grants))
    assert set(grants) <= set(store.get_grants("dst", "granted"))  # S3 may add the owner's
    deviation(request, moto="keeps only the first grantee of a header that lists several")
    two = (("READ", "0123abcd"), ("READ", "4567ef"))
    store.copy("src", "k", None, "dst", "granted-two", CopyOptions(grants=two))
    assert set(two) <= set(store.get_grants("dst", "granted-two"))


def test_copy_with_server_side_encryption(store: ObjectStore) -> None:
    store.put("src", "plain", b"data")
    assert store.head("src", "plain").encryption in (None, "AES256")  # some stores always encrypt
    store.copy("src", "plain", None, "dst", "sealed", CopyOptions(encryption="AES256"))
    assert store.head("dst", "sealed").encryption == "AES256"
    with store.open("dst", "sealed") as stream:
        assert stream.read() == b"data"


def test_restore_only_archived_objects(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    deviation(request, seaweedfs="has no RestoreObject (MethodNotAllowed)")
    store.put("src", "hot", b"x")
    error = _error(store.restore, "src", "hot", None, 1, "BULK")
    assert (error.http_status, error.code) == (403, "InvalidObjectState")
    store.put("src", "cold", b"frozen", storage_class="GLACIER")
    assert _error(store.open, "src", "cold").code == "InvalidObjectState"
    assert _error(store.checksum, "src", "cold", None, "MD5").code == "InvalidObjectState"
    store.restore("src", "cold", None, 3, "BULK")
    with store.open("src", "cold") as stream:
        assert stream.read() == b"frozen"
    assert store.head("src", "cold").restore_until is not None


def test_legal_hold_blocks_deleting_the_held_version(store: ObjectStore) -> None:
    info = store.put("locked", "held", b"x")
    version = info.version_id
    store.put_legal_hold("locked", "held", version, True)
    assert store.get_legal_hold("locked", "held", version)
    assert _error(store.delete, "locked", "held", version).code == "AccessDenied"
    store.put_legal_hold("locked", "held", version, False)
    assert not store.get_legal_hold("locked", "held", version)
    store.delete("locked", "held", version)
    assert _error(store.head, "locked", "held", version).http_status == 404


def test_retention_rules(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    info = store.put("locked", "r", b"x")
    version = info.version_id
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    store.put_retention("locked", "r", version, Retention("GOVERNANCE", later))
    assert _error(store.delete, "locked", "r", version).code == "AccessDenied"
    shorter = Retention("GOVERNANCE", later - timedelta(days=10))
    deviation(request, seaweedfs="refuses BypassGovernanceRetention without IAM identities")
    store.put_retention("locked", "r", version, shorter, bypass_governance=True)
    compliance = Retention("COMPLIANCE", later)
    store.put_retention("locked", "r", version, compliance, bypass_governance=True)
    store.put_retention("locked", "r", version, Retention("COMPLIANCE", later + timedelta(days=1)))
    deviation(request, moto="has no GetObjectRetention (it answers 500)")
    found = store.get_retention("locked", "r", version)
    assert found is not None
    assert (found.mode, found.until) == ("COMPLIANCE", later + timedelta(days=1))
    error = _error(
        store.put_retention,
        "locked",
        "r",
        version,
        Retention("COMPLIANCE", later - timedelta(days=1)),
        bypass_governance=True,
    )
    assert error.code == "AccessDenied"


def test_governance_needs_the_bypass_to_shorten(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    deviation(
        request,
        moto="shortens GOVERNANCE retention without the bypass header",
        seaweedfs="shortens GOVERNANCE retention without the bypass header",
    )
    info = store.put("locked", "g", b"x")
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    store.put_retention("locked", "g", info.version_id, Retention("GOVERNANCE", later))
    shorter = Retention("GOVERNANCE", later - timedelta(days=10))
    assert (
        _error(store.put_retention, "locked", "g", info.version_id, shorter).code == "AccessDenied"
    )


def test_delete_of_a_missing_object_succeeds(store: ObjectStore) -> None:
    store.delete("src", "never-existed")
    store.put("src", "gone", b"x")
    store.delete("src", "gone")
    store.delete("src", "gone")


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("CRC32", base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()),
        ("CRC32C", "mnG7TA=="),
        ("SHA1", base64.b64encode(hashlib.sha1(b"hello").digest()).decode()),
        ("SHA256", base64.b64encode(hashlib.sha256(b"hello").digest()).decode()),
        ("SHA512", base64.b64encode(hashlib.sha512(b"hello").digest()).decode()),
        ("MD5", base64.b64encode(hashlib.md5(b"hello").digest()).decode()),
    ],
)
def test_checksums(store: ObjectStore, algorithm: str, expected: str) -> None:
    store.put("src", "c", b"hello")
    assert store.checksum("src", "c", None, algorithm) == expected
    assert store.checksum("src", "c", None, algorithm) == expected


def test_listing(store: ObjectStore) -> None:
    for key in ("a/1", "a/2", "a/b/3", "b/4", "ab"):
        store.put("src", key, key.encode())
    assert sorted(i.key for i in store.list("src")) == ["a/1", "a/2", "a/b/3", "ab", "b/4"]
    assert sorted(i.key for i in store.list("src", "a/")) == ["a/1", "a/2", "a/b/3"]
    assert sorted(i.key for i in store.list("src", "a")) == ["a/1", "a/2", "a/b/3", "ab"]
    assert list(store.list("src", "zzz/")) == []
    assert next(iter(store.list("src", "b/"))).size == 3


def test_versions(store: ObjectStore) -> None:
    first = store.put("ver", "v", b"one")
    second = store.put("ver", "v", b"two")
    assert first.version_id
    assert second.version_id
    assert first.version_id != second.version_id
    with store.open("ver", "v", first.version_id) as stream:
        assert stream.read() == b"one"
    with store.open("ver", "v") as stream:
        assert stream.read() == b"two"
    store.put_tags("ver", "v", first.version_id, {"old": "yes"})
    assert store.get_tags("ver", "v", first.version_id) == {"old": "yes"}
    assert store.get_tags("ver", "v") == {}
    listed = list(store.list("ver", versions=True))
    assert {i.version_id for i in listed} == {first.version_id, second.version_id}
    store.delete("ver", "v")  # a delete marker
    assert _error(store.head, "ver", "v").code == "NoSuchKey"
    with store.open("ver", "v", second.version_id) as stream:
        assert stream.read() == b"two"


def test_bucket_names_cannot_escape(store: ObjectStore) -> None:
    for bucket in ("..", ".batchctl-store", "a/b"):
        with pytest.raises(StoreError):
            store.put(bucket, "k", b"x")


def test_buckets_are_listed(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    deviation(request, seaweedfs="lists no bucket without IAM identities (an empty owner)")
    assert store.list_buckets() == ["dst", "locked", "src", "ver"]
    assert store.bucket_exists("src")
