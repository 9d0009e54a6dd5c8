"""One operation applied to one object: the body of every task.

``task_function`` turns a job's operation into a function of (bucket, key,
version) that returns an ``TaskOutcome``; it never raises, so a task that fails —
missing object, object lock, archived object, a crashing command — becomes a
failed row in the report with S3's HTTP status and error code, and the job goes
on.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from runner.spec.models import Operation
from runner.stores.base import CopyOptions, ObjectStore, Retention, StoreError

SUCCESS_MESSAGE = "Successful"
INVOKE_TIMEOUT_SECONDS = 300.0
_MAX_MESSAGE = 1024


class TaskOutcome(NamedTuple):
    """A task's result as the report shows it (a tuple: one is made per task)."""

    succeeded: bool
    http: int
    code: str
    message: str


OK = TaskOutcome(True, 200, "", SUCCESS_MESSAGE)
TaskFunction = Callable[[str, str, str | None], TaskOutcome]


def _guard(run: Callable[[str, str, str | None], str | None]) -> TaskFunction:
    def task(bucket: str, key: str, version: str | None) -> TaskOutcome:
        try:
            message = run(bucket, key, version)
        except StoreError as exc:
            return TaskOutcome(False, exc.http_status, exc.code, exc.message[:_MAX_MESSAGE])
        except Exception as exc:  # a task must fail, never take the worker down
            return TaskOutcome(
                False, 500, "InternalError", f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE]
            )
        return OK if message is None else TaskOutcome(True, 200, "", message[:_MAX_MESSAGE])

    return task


def _copy_options(operation: Operation) -> CopyOptions:
    copy = operation.copy_
    assert copy is not None
    headers: dict[str, str] = {}
    user: dict[str, str] = {}
    content_type = None
    if copy.metadata is not None:
        m = copy.metadata
        user = dict(m.user)
        content_type = m.content_type
        pairs = {
            "Cache-Control": m.cache_control,
            "Content-Disposition": m.content_disposition,
            "Content-Encoding": m.content_encoding,
            "Content-Language": m.content_language,
            "Expires": m.expires.strftime("%a, %d %b %Y %H:%M:%S GMT") if m.expires else None,
        }
        headers = {k: v for k, v in pairs.items() if v is not None}
    return CopyOptions(
        metadata_directive=copy.metadata_directive,
        metadata=user,
        content_type=content_type,
        headers=headers,
        tagging_directive=copy.tagging_directive,
        tags=dict(copy.tags or {}),
        storage_class=copy.storage_class,
        canned_acl=copy.canned_acl,
        checksum_algorithm=copy.checksum_algorithm,
        encryption=copy.encryption,
        grants=tuple((g.permission, g.id) for g in copy.grants or ()),
    )


def task_function(
    store: ObjectStore,
    operation: Operation,
    *,
    workdir: Path | None = None,
    invoke_timeout: float = INVOKE_TIMEOUT_SECONDS,
) -> TaskFunction:
    """The per-object function of ``operation`` over ``store``."""
    op = operation
    if op.copy_ is not None:
        options = _copy_options(op)
        destination = op.copy_.bucket
        # TargetKeyPrefix is put before the key as it is, with no separator added: COS
        # documents a plain string prefix ("pic" → "abc" makes picture.jpg abcture.jpg),
        # and S3's documentation ("to copy into Folder1, set TargetKeyPrefix to Folder1")
        # does not say whether S3 adds a "/". A prefix that ends with "/" means a folder on
        # every target; which S3 does without one is unverified here (no AWS account).
        prefix = op.copy_.prefix or ""
        strip = op.copy_.strip_prefix or ""

        since, until = op.copy_.modified_since, op.copy_.unmodified_since

        def copy(bucket: str, key: str, version: str | None) -> str | None:
            if since or until:
                # One HEAD per object, only with a condition: every store answers it, where
                # S3's copy-source conditions would need each store to honour them.
                changed = store.head(bucket, key, version).last_modified
                if since and changed <= since:
                    raise StoreError(412, "PreconditionFailed", f"not modified since {since}")
                if until and changed > until:
                    raise StoreError(412, "PreconditionFailed", f"modified since {until}")
            # A plain string replace at the start, as COS's PrefixReplace does; a key without
            # the prefix keeps its name (what COS does then is not documented).
            name = key.removeprefix(strip) if strip else key
            store.copy(bucket, key, version, destination, prefix + name, options)
            return None

        return _guard(copy)
    if op.tag is not None:
        tags = dict(op.tag.tags)
        return _guard(lambda b, k, v: store.put_tags(b, k, v, tags))
    if op.untag is not None:
        return _guard(lambda b, k, v: store.delete_tags(b, k, v))
    if op.acl is not None:
        canned = op.acl.canned
        return _guard(lambda b, k, v: store.put_acl(b, k, v, canned))
    if op.restore is not None:
        days, tier = op.restore.days, op.restore.tier
        return _guard(lambda b, k, v: store.restore(b, k, v, days, tier))
    if op.retention is not None:
        retention = Retention(op.retention.mode, op.retention.until)
        bypass = op.retention.bypass_governance
        return _guard(
            lambda b, k, v: store.put_retention(b, k, v, retention, bypass_governance=bypass)
        )
    if op.legal_hold is not None:
        on = op.legal_hold.status == "ON"
        return _guard(lambda b, k, v: store.put_legal_hold(b, k, v, on))
    if op.delete is not None:
        if not op.delete.permanent:
            return _guard(lambda b, k, v: store.delete(b, k, v))

        def delete_version(bucket: str, key: str, version: str | None) -> None:
            # The version itself, not a delete marker above it (GCS's permanent deletion).
            store.delete(bucket, key, version or store.head(bucket, key).version_id)

        return _guard(delete_version)
    if op.hold is not None:
        # S3 stores have one hold, Object Lock's legal hold: it stands in for GCS's
        # temporary hold; event-based holds are refused for local targets at validate.
        temporary = op.hold.temporary
        if temporary is None:
            raise ValueError("the embedded engine holds only temporarily (hold.temporary)")
        return _guard(lambda b, k, v: store.put_legal_hold(b, k, v, temporary))
    if op.metadata is not None:
        return _guard(_put_metadata(store, op))
    if op.checksum is not None:
        algorithm = op.checksum.algorithm

        def checksum(bucket: str, key: str, version: str | None) -> str:
            return f"{algorithm}:{store.checksum(bucket, key, version, algorithm)}"

        return _guard(checksum)
    if op.invoke is not None and op.invoke.command is not None:
        return _invoke(list(op.invoke.command), workdir, invoke_timeout)
    raise ValueError(f"the embedded engine cannot run operation {op.choice!r}")


_SYSTEM_HEADERS = {
    "cache_control": "Cache-Control",
    "content_disposition": "Content-Disposition",
    "content_encoding": "Content-Encoding",
    "content_language": "Content-Language",
}


def _put_metadata(store: ObjectStore, operation: Operation) -> Callable[..., str | None]:
    """Metadata in place: S3's copy of an object onto itself with REPLACE.

    What is not given is kept: the stores report system headers with the user metadata
    (under their header names), so both are read first and written back with the change;
    the storage class and encryption are carried over too. GCS merges custom metadata
    keys the same way (a key given replaces that key only).
    """
    put = operation.metadata
    assert put is not None
    given_headers = {
        header: getattr(put, name)
        for name, header in _SYSTEM_HEADERS.items()
        if getattr(put, name) is not None
    }
    custom = dict(put.custom or {})

    def metadata(bucket: str, key: str, version: str | None) -> str | None:
        info = store.head(bucket, key, version)
        headers = {k: v for k, v in info.metadata.items() if k in _HEADER_NAMES}
        user = {k: v for k, v in info.metadata.items() if k not in _HEADER_NAMES}
        options = CopyOptions(
            metadata_directive="REPLACE",
            metadata={**user, **custom},
            content_type=put.content_type or info.content_type,
            headers={**headers, **given_headers},
            storage_class=info.storage_class,
            encryption=info.encryption,
        )
        store.copy(bucket, key, version, bucket, key, options)
        return None

    return metadata


_HEADER_NAMES = frozenset(_SYSTEM_HEADERS.values())


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _invoke(command: list[str], workdir: Path | None, timeout: float) -> TaskFunction:
    def invoke(bucket: str, key: str, version: str | None) -> TaskOutcome:
        argv = [*command, bucket, key, version or ""]
        try:
            done = subprocess.run(
                argv,
                cwd=workdir,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env=os.environ.copy(),
            )
        except FileNotFoundError:
            return TaskOutcome(False, 200, "PermanentFailure", f"command not found: {command[0]}")
        except PermissionError:
            return TaskOutcome(
                False, 200, "PermanentFailure", f"command not executable: {command[0]}"
            )
        except subprocess.TimeoutExpired:
            return TaskOutcome(
                False, 200, "PermanentFailure", f"command timed out after {timeout:g} s"
            )
        if done.returncode != 0:
            message = _last_line(done.stderr) or f"command exited with status {done.returncode}"
            return TaskOutcome(False, 200, "PermanentFailure", message[:_MAX_MESSAGE])
        return TaskOutcome(
            True, 200, "", (_last_line(done.stdout) or SUCCESS_MESSAGE)[:_MAX_MESSAGE]
        )

    return invoke
