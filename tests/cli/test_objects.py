"""`batchctl objects …` on a folder store and on SeaweedFS, and the input it refuses."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from runner.cli import main
from tests.servers import CREDENTIALS

STORES = ["dir", "seaweedfs"]


@pytest.fixture(params=STORES)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """A project whose local target keeps objects in a folder or on SeaweedFS; a bucket
    name of its own (SeaweedFS is shared by the session)."""
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    store = "dir://.batchctl/objects"
    if request.param == "seaweedfs":
        endpoint = request.getfixturevalue("seaweedfs_endpoint")
        store = f"{{s3: {{endpointUrl: '{endpoint}'}}}}"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    (jobs / "targets.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: local}\n"
        f"spec:\n  local: {{store: {store}, workers: 4}}\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path, f"photos-{uuid.uuid4().hex[:10]}"


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    """Run batchctl; check its exit code; its stdout (stderr after a blank line if any)."""
    capsys.readouterr()
    assert main(list(argv)) == code, capsys.readouterr()
    captured = capsys.readouterr()
    return captured.out + ("\n" + captured.err if captured.err else "")


def _files(root: Path) -> None:
    (root / "pics" / "2024").mkdir(parents=True)
    (root / "pics" / "2024" / "a.jpg").write_bytes(b"a" * 10)
    (root / "pics" / "2024" / "b.jpg").write_bytes(b"b" * 20)
    (root / "pics" / "top.txt").write_text("top\n")
    (root / "one.txt").write_text("one\n")


def test_every_subcommand(project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, bucket = project
    _files(root)
    assert run(capsys, "objects", "mb", f"s3://{bucket}") == f"make_bucket: {bucket}\n"
    out = run(
        capsys,
        "objects",
        "put",
        "pics",
        f"s3://{bucket}/in/",
        "--storage-class",
        "STANDARD_IA",
        "--tag",
        "team=media",
        "--metadata",
        "camera=x1",
    )
    assert out == f"3 of 3 file(s) written to s3://{bucket}/in/\n"
    run(capsys, "objects", "put", "one.txt", f"s3://{bucket}/exact-name.txt")
    # one level, folders as PRE, as aws s3 ls shows them
    level = sorted(
        line.split() for line in run(capsys, "objects", "ls", f"s3://{bucket}/in/").splitlines()
    )
    assert level[0][2:] == ["4", "STANDARD_IA", "in/top.txt"]
    assert level[1] == ["PRE", "in/2024/"]
    every = run(capsys, "objects", "ls", f"s3://{bucket}", "--recursive", "--long")
    assert sorted(line.split()[4] for line in every.splitlines()) == [
        "exact-name.txt",
        "in/2024/a.jpg",
        "in/2024/b.jpg",
        "in/top.txt",
    ]
    assert all(
        "team=media" in line for line in every.splitlines() if "/in/" in f"/{line.split()[4]}"
    )
    found = json.loads(run(capsys, "objects", "stat", f"s3://{bucket}/in/2024/b.jpg", "-o", "json"))
    assert (found["size"], found["storageClass"], found["tags"]) == (
        20,
        "STANDARD_IA",
        {"team": "media"},
    )
    assert found["metadata"] == {"camera": "x1"}
    assert found["contentType"] == "image/jpeg"
    text = run(capsys, "objects", "stat", f"s3://{bucket}/in/2024/b.jpg")
    assert "storageClass: STANDARD_IA" in text
    # get: into the current folder, or a folder inside it
    assert run(capsys, "objects", "get", f"s3://{bucket}/in/2024/a.jpg").startswith(
        f"s3://{bucket}/in/2024/a.jpg → a.jpg (10 bytes)"
    )
    assert (root / "a.jpg").read_bytes() == b"a" * 10
    (root / "down").mkdir()
    run(capsys, "objects", "get", f"s3://{bucket}/in/2024/b.jpg", "down")
    assert (root / "down" / "b.jpg").read_bytes() == b"b" * 20
    # manifest: a listing with the generate filters, as S3 Batch Operations reads it
    listed = run(capsys, "objects", "manifest", f"s3://{bucket}/in/", "--key-matches", "**/*.jpg")
    assert listed.splitlines()[:2] == [f"{bucket},in/2024/a.jpg", f"{bucket},in/2024/b.jpg"]
    assert "2 object(s) listed" in listed
    run(capsys, "objects", "rm", f"s3://{bucket}/in/top.txt")
    left = run(capsys, "objects", "ls", f"s3://{bucket}", "-r")
    assert "in/top.txt" not in left


def test_locks_versions_and_a_refused_delete(
    project: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, bucket = project
    _files(root)
    run(capsys, "objects", "mb", f"s3://{bucket}", "--object-lock")
    run(capsys, "objects", "put", "one.txt", f"s3://{bucket}/held.txt", "--legal-hold")
    run(
        capsys,
        "objects",
        "put",
        "one.txt",
        f"s3://{bucket}/kept.txt",
        "--retention",
        "GOVERNANCE:2099-01-01",
    )
    held = json.loads(run(capsys, "objects", "stat", f"s3://{bucket}/held.txt", "-o", "json"))
    assert held["legalHold"] is True
    version = held["versionId"]
    assert held["versions"] == [
        {"versionId": version, "latest": True, "size": 4, "lastModified": held["lastModified"]}
    ]
    kept = json.loads(run(capsys, "objects", "stat", f"s3://{bucket}/kept.txt", "-o", "json"))
    assert kept["retention"]["mode"] == "GOVERNANCE"
    assert kept["retention"]["until"].startswith("2099-01-01")
    # deleting the held version is refused, as S3 refuses it; the object stays
    refused = run(
        capsys, "objects", "rm", f"s3://{bucket}/held.txt", "--version-id", version, code=1
    )
    assert "refused: the object is locked (a legal hold)" in refused
    assert "held.txt" in run(capsys, "objects", "ls", f"s3://{bucket}", "--versions")


def test_buckets_are_listed_on_a_folder_store(
    project: tuple[Path, str], capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    _root, bucket = project
    run(capsys, "objects", "mb", f"s3://{bucket}")
    listed = run(capsys, "objects", "ls")
    if "seaweedfs" in request.node.callspec.id:
        # SeaweedFS lists no bucket to a key without an IAM identity: said, not hidden
        assert "no buckets" in listed
    else:
        assert listed == f"{bucket}\n"


# -- what is refused, with nothing written ------------------------------------------------


@pytest.fixture
def folder_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "t.yaml").write_text(
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: local}\nspec:\n  local: {}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["objects", "mb", "s3://media"]) == 0
    return tmp_path


def _stored(root: Path) -> list[str]:
    bucket = root / ".batchctl" / "objects" / "media"
    return sorted(p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["objects", "put", "ok.txt", "s3://media/../escape.txt"], "'..' segments", 64),
        (["objects", "put", "ok.txt", "s3://media//double"], "cannot start or end with '/'", 64),
        (["objects", "put", "ok.txt", "s3://Media_Bucket/k"], "is not a bucket name", 64),
        (["objects", "mb", "s3://.hidden"], "is not a bucket name", 64),
        (["objects", "put", "ok.txt", "media/k"], "not an s3://BUCKET[/KEY] URL", 64),
        (["objects", "put", "/dev/null", "s3://media/k"], "a device, not a file", 1),
        (["objects", "put", "missing.txt", "s3://media/k"], "no such file or folder", 1),
        (
            ["objects", "get", "s3://media/ok.txt", "../outside.txt"],
            "outside the current folder",
            1,
        ),
        (["objects", "get", "s3://media/ok.txt", "/tmp/abs.txt"], "outside the current folder", 1),
        (
            ["objects", "put", "ok.txt", "s3://media/k", "--retention", "LOCKED:2030-01-01"],
            "GOVERNANCE:UNTIL",
            64,
        ),
        (
            ["objects", "put", "ok.txt", "s3://media/k", "--tag", "novalue"],
            "expected KEY=VALUE",
            64,
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    folder_project: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
    code: int,
) -> None:
    (folder_project / "ok.txt").write_text("ok\n")
    assert main(["objects", "put", "ok.txt", "s3://media/ok.txt"]) == 0
    before = _stored(folder_project)
    capsys.readouterr()
    assert main(argv) == code
    assert message in capsys.readouterr().err
    assert _stored(folder_project) == before
    assert not (folder_project.parent / "outside.txt").exists()


def test_a_fifo_and_a_symlink_out_of_the_folder_refuse_the_whole_put(
    folder_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = folder_project / "src"
    src.mkdir()
    (src / "fine.txt").write_text("fine\n")
    os.mkfifo(src / "pipe")
    secret = folder_project / "secret.txt"
    secret.write_text("not for the bucket\n")
    (src / "link.txt").symlink_to(secret)
    (src / "inside.txt").symlink_to(src / "fine.txt")  # a link inside SRC is fine
    capsys.readouterr()
    assert main(["objects", "put", "src", "s3://media/"]) == 1
    err = capsys.readouterr().err
    assert "pipe: a FIFO, not a file" in err
    assert "link.txt: a symlink leading out of src" in err
    assert "nothing was written" in err
    assert _stored(folder_project) == []
    (src / "pipe").unlink()
    (src / "link.txt").unlink()
    assert main(["objects", "put", "src", "s3://media/"]) == 0
    assert _stored(folder_project) == ["fine.txt", "inside.txt"]


def test_a_file_that_changes_while_read_is_refused(tmp_path: Path) -> None:
    from runner.stores.dirstore import DirStore
    from runner.stores.transfer import PutOptions, TransferError, Upload, put_one

    source = tmp_path / "growing.log"
    source.write_bytes(b"x" * 1000)

    class Racing(DirStore):
        """A store during whose write someone appends to the file."""

        def put(self, bucket, key, body, **kw):  # type: ignore[no-untyped-def,override]
            info = super().put(bucket, key, body, **kw)
            with source.open("ab") as more:
                more.write(b"appended while uploading")
            return info

    store = Racing(tmp_path / "objects")
    store.create_bucket("logs")
    with pytest.raises(TransferError, match="changed while it was read"):
        put_one(store, "logs", Upload(source, "growing.log", 1000), PutOptions())
    assert list(store.list("logs")) == []  # the upload was removed
    store.close()
