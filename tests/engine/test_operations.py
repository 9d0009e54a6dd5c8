"""Each operation through a whole job, and what it leaves on the objects."""

from __future__ import annotations

import sys
from pathlib import Path

from runner.engine.service import Engine
from runner.engine.worker import Worker
from runner.jobs.status import JobStatus
from runner.stores.dirstore import DirStore
from tests.engine.conftest import request

GEN = {"generate": {"bucket": "logs"}}


def _run(engine: Engine, store: DirStore, operation: dict[str, object]) -> str:
    job_id = engine.create_job(request(operation, GEN, report={"bucket": "reports"}))
    Worker(engine, store).run(once=True)
    assert engine.describe_job(job_id).status is JobStatus.COMPLETE
    return job_id


def test_copy(engine: Engine, store: DirStore) -> None:
    store.put("logs", "a.txt", b"A", tags={"t": "1"})
    _run(
        engine, store, {"copy": {"bucket": "archive", "prefix": "x/", "storageClass": "GLACIER_IR"}}
    )
    assert store.head("archive", "x/a.txt").storage_class == "GLACIER_IR"
    assert store.get_tags("archive", "x/a.txt") == {"t": "1"}


def test_tag_untag_acl(engine: Engine, store: DirStore) -> None:
    store.put("logs", "a", b"A", tags={"old": "1"})
    _run(engine, store, {"tag": {"tags": {"new": "2"}}})
    assert store.get_tags("logs", "a") == {"new": "2"}
    _run(engine, store, {"untag": {}})
    assert store.get_tags("logs", "a") == {}
    _run(engine, store, {"acl": {"canned": "public-read"}})
    assert store.get_acl("logs", "a") == "public-read"


def test_restore_fails_tasks_of_objects_that_are_not_archived(
    engine: Engine, store: DirStore
) -> None:
    store.put("logs", "hot", b"x")
    store.put("logs", "cold", b"x", storage_class="DEEP_ARCHIVE")
    job_id = _run(engine, store, {"restore": {"days": 2}})
    job = engine.describe_job(job_id)
    assert (job.progress.succeeded, job.progress.failed) == (1, 1)
    assert store.head("logs", "cold").restore_until is not None


def test_locks_then_delete(engine: Engine, store: DirStore) -> None:
    store.put("logs", "keep", b"x")
    _run(engine, store, {"legalHold": {"status": "ON"}})
    job_id = _run(engine, store, {"delete": {}})
    job = engine.describe_job(job_id)
    assert job.progress.failed == 1
    assert store.head("logs", "keep").size == 1
    _run(engine, store, {"legalHold": {"status": "OFF"}})
    _run(engine, store, {"retention": {"mode": "GOVERNANCE", "until": "2099-01-01T00:00:00Z"}})
    assert engine.describe_job(_run(engine, store, {"delete": {}})).progress.failed == 1


def test_checksum_in_the_result_message(engine: Engine, store: DirStore) -> None:
    store.put("logs", "h", b"hello")
    job_id = _run(engine, store, {"checksum": {"algorithm": "CRC32C"}})
    rows = list(engine.tasks.results(engine.job_row(job_id).pk, failed_only=False))
    assert rows[0][6] == "CRC32C:mnG7TA=="


def test_invoke_runs_a_command_per_object(engine: Engine, store: DirStore, tmp_path: Path) -> None:
    store.put("logs", "ok", b"x")
    store.put("logs", "bad", b"x")
    script = tmp_path / "check.py"
    script.write_text(
        "import sys\n"
        "bucket, key, version = sys.argv[1:]\n"
        "if key == 'bad':\n"
        "    print('first line', file=sys.stderr)\n"
        "    print(f'cannot handle {bucket}/{key}', file=sys.stderr)\n"
        "    sys.exit(3)\n"
        "print(f'handled {key}')\n"
    )
    job_id = engine.create_job(request({"invoke": {"command": [sys.executable, str(script)]}}, GEN))
    Worker(engine, store).run(once=True)
    rows = {r[1]: r for r in engine.tasks.results(engine.job_row(job_id).pk, failed_only=False)}
    assert rows["ok"][3:] == (1, 200, "", "handled ok")
    assert rows["bad"][3:] == (2, 200, "PermanentFailure", "cannot handle logs/bad")


def test_copy_conditions_on_the_modification_time(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from runner.engine.operations import task_function
    from runner.spec.models import Operation

    now = [datetime(2024, 1, 1, tzinfo=UTC).timestamp()]
    store = DirStore(tmp_path / "objects", clock=lambda: now[0])
    store.create_bucket("logs")
    store.create_bucket("archive")
    store.put("logs", "old.txt", b"o")
    now[0] = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    store.put("logs", "new.txt", b"n")
    since = task_function(
        store,
        Operation.model_validate({"copy": {"bucket": "archive", "modifiedSince": "2024-03-01"}}),
    )
    old, new = since("logs", "old.txt", None), since("logs", "new.txt", None)
    assert (old.succeeded, old.http, old.code) == (False, 412, "PreconditionFailed")
    assert new.succeeded
    until = task_function(
        store,
        Operation.model_validate(
            {"copy": {"bucket": "archive", "prefix": "u/", "unmodifiedSince": "2024-03-01"}}
        ),
    )
    assert until("logs", "old.txt", None).succeeded
    assert until("logs", "new.txt", None).http == 412
    assert sorted(o.key for o in store.list("archive", "")) == ["new.txt", "u/old.txt"]
    store.close()


def test_copy_replaces_a_prefix(engine: Engine, store: DirStore) -> None:
    store.put("logs", "2024/a.txt", b"A")
    store.put("logs", "other/b.txt", b"B")
    _run(engine, store, {"copy": {"bucket": "archive", "stripPrefix": "2024/", "prefix": "y24/"}})
    assert sorted(o.key for o in store.list("archive", "")) == ["y24/a.txt", "y24/other/b.txt"]


def test_metadata_in_place_keeps_what_is_not_given(engine: Engine, store: DirStore) -> None:
    store.put(
        "logs",
        "a",
        b"data",
        content_type="text/plain",
        metadata={"owner": "x", "team": "y", "Cache-Control": "max-age=60"},
        storage_class="STANDARD_IA",
        tags={"t": "1"},
    )
    _run(
        engine,
        store,
        {"metadata": {"contentDisposition": "attachment", "custom": {"team": "z", "new": "1"}}},
    )
    info = store.head("logs", "a")
    assert info.metadata == {
        "owner": "x",
        "team": "z",
        "new": "1",
        "Cache-Control": "max-age=60",
        "Content-Disposition": "attachment",
    }
    assert (info.content_type, info.storage_class) == ("text/plain", "STANDARD_IA")
    assert store.get_tags("logs", "a") == {"t": "1"}
    with store.open("logs", "a") as data:
        assert data.read() == b"data"


def test_a_temporary_hold_blocks_deletes_until_lifted(engine: Engine, store: DirStore) -> None:
    store.put("logs", "keep", b"x")
    _run(engine, store, {"hold": {"temporary": True}})
    assert store.get_legal_hold("logs", "keep")
    assert engine.describe_job(_run(engine, store, {"delete": {}})).progress.failed == 1
    _run(engine, store, {"hold": {"temporary": False}})
    assert not store.get_legal_hold("logs", "keep")


def test_a_permanent_delete_leaves_no_noncurrent_version(engine: Engine, store: DirStore) -> None:
    store.create_bucket("versioned", versioning=True)
    store.put("versioned", "a", b"1")
    store.put("versioned", "b", b"1")
    gens = {"generate": {"bucket": "versioned"}}
    engine.create_job(request({"delete": {"permanent": True}}, {**gens}, report=None))
    Worker(engine, store).run(once=True)
    assert list(store.list("versioned", versions=True)) == []
    store.put("versioned", "c", b"1")
    engine.create_job(request({"delete": {}}, {**gens}, report=None))
    Worker(engine, store).run(once=True)
    assert [v.key for v in store.list("versioned", versions=True)] == ["c"]  # noncurrent
