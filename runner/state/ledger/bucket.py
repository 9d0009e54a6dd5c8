"""The ledger kept in a bucket, as Terraform's S3 backend keeps its state.

``<key>`` (``ledger.json``) holds a format name and a lineage (fixed at creation). The
records live in up to 256 shard documents, ``<key>.d/<xx>.json``, one per hash prefix of
(target, name): a write rewrites one shard, so its cost stays the same however many jobs
the ledger holds (bench/state.py), and a read lists the shards and fetches only those whose
ETag changed since this process last read them. Each document has a serial, one more at
every write. The history of applied actions goes to documents by month.

Every write is conditional — ``If-Match`` on the ETag last read, or ``If-None-Match: *``
when the document does not exist yet — so two runners never overwrite each other: the one
that loses the race reads the document again and applies its change to what it finds,
never forcing its own copy. The changes are upserts and appends, which mean the same
applied to any version of the document. History entries are sharded the same way,
``<prefix>/history/YYYY-MM/<xx>.json`` (a ledger written before keeps its
``history/YYYY-MM.json``, read as before).

A ledger written before shards keeps its records in ``ledger.json`` itself. They are read
as they are and never rewritten there: a change to one of them is written to its shard
(with the other records of its job), and where a record is in both, the one updated last
wins. Nothing is migrated in bulk, so a runner of an older batchctl and this one can
share a ledger during an upgrade without losing a record.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus
from runner.state.errors import StateError
from runner.state.ledger import Observed
from runner.state.records import LedgerRecord, LedgerView, view_of
from runner.support.retry import Backoff, retry

FORMAT = "batchctl-ledger/1"
SHARD_FORMAT = "batchctl-ledger-shard/1"
# Shards are named by the first two hex digits of a hash: at most 256 documents to read,
# each 1/256 of the records to rewrite.
SHARD_DIGITS = 2
READ_THREADS = 16
MAX_ATTEMPTS = 25
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


class LostRace(Exception):
    """A conditional write found the document changed since it was read."""


def conflict(exc: ClientError) -> bool:
    """Whether a failed conditional request lost a race (412/409, or a vanished key)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _CONFLICT or status in (409, 412)


def missing(exc: ClientError) -> bool:
    """Whether a request failed because the key does not exist."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def record_json(record: LedgerRecord, updated: float) -> dict[str, Any]:
    """A record as the document keeps it (camelCase)."""
    return {
        "target": record.target,
        "name": record.name,
        "generation": record.generation,
        "jobId": record.job_id,
        "specHash": record.spec_hash,
        "status": record.status.value,
        "total": record.counts.total,
        "succeeded": record.counts.succeeded,
        "failed": record.counts.failed,
        "created": record.created,
        "terminated": record.terminated,
        "immutable": record.immutable,
        "staged": record.staged,
        "report": record.report,
        "slot": record.slot,
        "failure": record.failure.to_json() if record.failure else None,
        "rate": record.rate,
        "updated": updated,
    }


def record_from(data: dict[str, Any]) -> LedgerRecord:
    """A record read back from the document."""
    return LedgerRecord(
        target=str(data["target"]),
        name=str(data["name"]),
        generation=int(data["generation"]),
        job_id=str(data["jobId"]),
        spec_hash=str(data["specHash"]),
        status=JobStatus(data["status"]),
        counts=Counts(int(data["total"]), int(data["succeeded"]), int(data["failed"])),
        created=float(data["created"]),
        terminated=data.get("terminated"),
        immutable=str(data.get("immutable") or ""),
        staged=bool(data.get("staged")),
        report=data.get("report"),
        slot=data.get("slot"),
        failure=Failure.from_json(data.get("failure")),
        rate=data.get("rate"),
    )


def upsert(doc: dict[str, Any], record: LedgerRecord, now: float) -> None:
    """Add a record, or refresh the one of its generation (as the SQLite ledger does)."""
    fresh = record_json(record, now)
    for existing in doc["records"]:
        same = (existing["target"], existing["name"], existing["generation"])
        if same == (record.target, record.name, record.generation):
            for field in ("status", "total", "succeeded", "failed", "terminated", "updated"):
                existing[field] = fresh[field]
            existing["report"] = fresh["report"] or existing.get("report")
            existing["failure"] = fresh["failure"] or existing.get("failure")
            existing["rate"] = fresh["rate"] or existing.get("rate")
            return
    doc["records"].append(fresh)


HISTORY_FORMAT = "batchctl-history/1"


def _month(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m")


class S3Ledger:
    """The ledger as JSON documents in a bucket, written only conditionally."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.clock = clock
        self.base = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        self.shards = f"{key}.d/"
        self._docs: dict[str, tuple[dict[str, Any], str | None]] = {}
        self._shards_listed = False  # _docs holds every shard (as of the last listing)

    def shard_of(self, target: str, name: str) -> str:
        """The key of the shard that holds the records of job ``name`` on ``target``."""
        digest = hashlib.sha256(f"{target}\0{name}".encode()).hexdigest()[:SHARD_DIGITS]
        return f"{self.shards}{digest}.json"

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- documents ---------------------------------------------------------------

    def _format(self, key: str) -> str:
        if key == self.key:
            return FORMAT
        return SHARD_FORMAT if key.startswith(self.shards) else HISTORY_FORMAT

    def _fresh(self, key: str) -> dict[str, Any]:
        if key == self.key:
            return {"format": FORMAT, "lineage": str(uuid.uuid4()), "serial": 0, "records": []}
        if key.startswith(self.shards):
            return {"format": SHARD_FORMAT, "serial": 0, "records": []}
        return {"format": HISTORY_FORMAT, "entries": []}

    def _read(self, key: str) -> tuple[dict[str, Any], str | None]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            body = answer["Body"].read()
        except ClientError as exc:
            if missing(exc):
                return self._fresh(key), None
            raise StateError(f"cannot read {self._where(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot read {self._where(key)}: {exc}") from exc
        try:
            doc = json.loads(body)
        except ValueError:
            raise StateError(f"{self._where(key)} is not JSON: not a batchctl ledger") from None
        wanted = self._format(key)
        if not isinstance(doc, dict) or doc.get("format") != wanted:
            raise StateError(f"{self._where(key)} is not a batchctl ledger (format {wanted})")
        return doc, str(answer["ETag"])

    def _write(self, key: str, doc: dict[str, Any], etag: str | None) -> str:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(doc, separators=(",", ":")).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if conflict(exc) or (etag and missing(exc)):
                raise LostRace from exc
            raise StateError(f"cannot write {self._where(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot write {self._where(key)}: {exc}") from exc
        return str(answer["ETag"])

    def change(self, apply: Callable[[dict[str, Any]], None], key: str | None = None) -> None:
        """Apply ``apply`` to a document and write it; on a lost race, again on fresh state.

        The change is made on the document in hand (a copy of 10,000 records costs more
        than the write); any failure drops it, so the next change starts from a fresh read.
        """
        key = key or self.key
        doc_key = key

        def attempt() -> None:
            held = self._docs.pop(doc_key, None)
            doc, etag = held if held is not None else self._read(doc_key)
            apply(doc)
            if "records" in doc:  # the ledger document or a shard
                doc["serial"] = int(doc.get("serial", 0)) + 1
            self._docs[doc_key] = (doc, self._write(doc_key, doc, etag))

        try:
            retry(
                attempt,
                Backoff(attempts=MAX_ATTEMPTS, base=0.01, cap=0.5),
                retryable=lambda exc: isinstance(exc, LostRace),
            )
        except LostRace:
            raise StateError(
                f"{self._where(key)} kept changing under this run ({MAX_ATTEMPTS} attempts); "
                "nothing of this change was written, and nothing was overwritten"
            ) from None

    def document(self) -> dict[str, Any]:
        """The ledger document as it is now (read afresh)."""
        doc, etag = self._read(self.key)
        self._docs[self.key] = (doc, etag)
        return copy.deepcopy(doc)

    def _history_keys(self) -> list[str]:
        keys: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.base}history/"}
            if token:
                params["ContinuationToken"] = token
            try:
                answer = self.client.list_objects_v2(**params)
            except (ClientError, BotoCoreError) as exc:
                raise StateError(
                    f"cannot list {self._where(self.base + 'history/')}: {exc}"
                ) from exc
            keys += [str(o["Key"]) for o in answer.get("Contents", [])]
            token = answer.get("NextContinuationToken")
            if not token:
                return sorted(keys)

    # -- the ledger --------------------------------------------------------------

    def records(self) -> list[LedgerRecord]:
        """Every recorded job (read afresh, so other runners' writes are seen)."""
        found = [record_from(r) for r in self._current().values()]
        return sorted(found, key=lambda r: (r.target, r.name, r.generation))

    def view(self) -> LedgerView:
        """Each job's newest generation and every job ID (read afresh)."""
        return view_of(record_from(r) for r in self._current().values())

    def serial(self) -> int:
        """How many times the records were written (the ledger document's and every shard's)."""
        self._current()
        return sum(
            int(doc.get("serial", 0))
            for key, (doc, _) in self._docs.items()
            if key == self.key or key.startswith(self.shards)
        )

    def _current(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """Every record as the documents hold it now, by (target, name, generation)."""
        self._docs[self.key] = self._read(self.key)
        self._read_shards()
        return self._held()

    def _held(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """The records of the documents last read here, where a record is in both the
        ledger document (the old layout) and its shard, the one updated last."""
        merged: dict[tuple[str, str, int], dict[str, Any]] = {}
        docs = [d for k, (d, _) in sorted(self._docs.items()) if k.startswith(self.shards)]
        root = self._docs.get(self.key)
        for doc in [root[0], *docs] if root else docs:
            for r in doc["records"]:
                at = (str(r["target"]), str(r["name"]), int(r["generation"]))
                known = merged.get(at)
                if known is None or float(r.get("updated") or 0) >= float(
                    known.get("updated") or 0
                ):
                    merged[at] = r
        return merged

    def _read_shards(self) -> list[dict[str, Any]]:
        """Every shard; those whose ETag is the one last read here are not fetched again."""
        listed: dict[str, str] = {}
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.shards}
            if token:
                params["ContinuationToken"] = token
            try:
                answer = self.client.list_objects_v2(**params)
            except (ClientError, BotoCoreError) as exc:
                raise StateError(f"cannot list {self._where(self.shards)}: {exc}") from exc
            for item in answer.get("Contents", []):
                listed[str(item["Key"])] = str(item.get("ETag", ""))
            token = answer.get("NextContinuationToken")
            if not token:
                break
        self._shards_listed = True
        for key in [k for k in self._docs if k.startswith(self.shards) and k not in listed]:
            del self._docs[key]  # set aside by someone (retire): forget it
        stale = [k for k, etag in listed.items() if self._docs.get(k, ({}, None))[1] != etag]
        if stale:
            with ThreadPoolExecutor(min(READ_THREADS, len(stale))) as pool:
                for key, got in zip(stale, pool.map(self._read, stale), strict=True):
                    self._docs[key] = got
        return [self._docs[k][0] for k in sorted(listed) if k in self._docs]

    def record(self, record: LedgerRecord) -> None:
        """Add a job (or refresh it, if its generation is known)."""
        now = self.clock()
        job = (record.target, record.name)
        self._change_shard(self.shard_of(*job), {job}, lambda doc: upsert(doc, record, now))

    def _change_shard(
        self, key: str, jobs: set[tuple[str, str]], apply: Callable[[dict[str, Any]], None]
    ) -> None:
        """Change one shard; the records the old layout holds of ``jobs`` are copied in first."""
        if self.key not in self._docs:
            self._docs[self.key] = self._read(self.key)
        legacy = [r for r in self._docs[self.key][0]["records"] if (r["target"], r["name"]) in jobs]

        def seeded(doc: dict[str, Any]) -> None:
            have = {(r["target"], r["name"], r["generation"]) for r in doc["records"]}
            for r in legacy:
                if (r["target"], r["name"], r["generation"]) not in have:
                    doc["records"].append(copy.deepcopy(r))
            apply(doc)

        self.change(seeded, key)

    def refresh_from(self, observed: Iterable[Observed]) -> None:
        """Store the statuses and counts one ListJobs sweep showed."""
        self.refresh((o.job_id, o.status, o.counts, o.terminated) for o in observed)

    def refresh(self, updates: Iterable[tuple[str, JobStatus, Counts, float | None]]) -> None:
        """Store the status and counts just observed: one write per shard that changed
        (final records stay)."""
        by_id = {job_id: (s, c, t) for job_id, s, c, t in updates}
        if self.key not in self._docs or not self._shards_listed:
            self._current()  # a record() alone reads only its own shard
        jobs: set[tuple[str, str]] = set()
        for r in self._held().values():
            seen = by_id.get(r["jobId"])
            if seen and not JobStatus(r["status"]).final and _differs(r, *seen):
                jobs.add((r["target"], r["name"]))
        if not jobs:
            return  # nothing new: no write, no serial spent
        now = self.clock()

        def apply(doc: dict[str, Any]) -> None:
            for r in doc["records"]:
                seen = by_id.get(r["jobId"])
                if seen is None or JobStatus(r["status"]).final:
                    continue
                status, counts, terminated = seen
                r.update(
                    status=status.value,
                    total=counts.total,
                    succeeded=counts.succeeded,
                    failed=counts.failed,
                    terminated=terminated,
                    updated=now,
                )

        shards: dict[str, set[tuple[str, str]]] = {}
        for job in jobs:
            shards.setdefault(self.shard_of(*job), set()).add(job)
        for key, in_shard in sorted(shards.items()):
            self._change_shard(key, in_shard, apply)

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Remember an applied action (in its month's history document)."""
        at = self.clock()
        entry = {
            "at": at,
            "target": target,
            "name": name,
            "action": action,
            "jobId": job_id,
            "detail": detail,
        }
        self.change(lambda doc: doc["entries"].append(entry), self._history_key(at, target, name))

    def _history_key(self, at: float, target: str, name: str) -> str:
        # A month's entries are sharded as the records are: an entry rewrites 1/256 of
        # the month (one document a month was 170 ms an entry at 50,000 entries).
        digest = self.shard_of(target, name).rsplit("/", 1)[1]
        return f"{self.base}history/{_month(at)}/{digest}"

    def history(self) -> list[dict[str, object]]:
        """Every applied action, oldest first."""
        entries: list[dict[str, object]] = []
        keys = self._history_keys()
        if keys:
            with ThreadPoolExecutor(min(READ_THREADS, len(keys))) as pool:
                for doc, _ in pool.map(self._read, keys):
                    entries += doc["entries"]
        return sorted(entries, key=lambda e: float(str(e["at"])))

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Fill an empty ledger with another's records and history (``state migrate``)."""
        if self.records() or self._history_keys():
            raise StateError(f"{self.url} is not empty; nothing was moved")
        now = self.clock()
        documents: dict[str, list[dict[str, object]]] = {}
        for entry in history:
            key = self._history_key(
                float(str(entry["at"])), str(entry.get("target")), str(entry.get("name"))
            )
            documents.setdefault(key, []).append(dict(entry))
        for key, entries in sorted(documents.items()):

            def extend(doc: dict[str, Any], entries: list[dict[str, object]] = entries) -> None:
                doc["entries"].extend(entries)

            self.change(extend, key)

        self.change(lambda doc: None)  # the ledger document, with its lineage
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            by_shard.setdefault(self.shard_of(r.target, r.name), []).append(record_json(r, now))
        for key, rows in sorted(by_shard.items()):

            def fill(doc: dict[str, Any], rows: list[dict[str, Any]] = rows) -> None:
                doc["records"] = rows

            self.change(fill, key)

    def retire(self, stamp: str) -> str:
        """Move the ledger and its history under ``migrated-<stamp>/``; return where to."""
        target = f"{self.base}migrated-{stamp}/"
        self._read_shards()
        shards = [k for k in self._docs if k.startswith(self.shards)]
        for key in [self.key, *shards, *self._history_keys()]:
            kept = target + key.removeprefix(self.base)
            try:
                self.client.copy_object(
                    Bucket=self.bucket, Key=kept, CopySource={"Bucket": self.bucket, "Key": key}
                )
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError) as exc:
                raise StateError(f"cannot move {self._where(key)} aside: {exc}") from exc
        self._docs.clear()
        self._shards_listed = False
        return f"s3://{self.bucket}/{target}"

    def close(self) -> None:
        """Nothing to release (the client belongs to whoever opened it)."""


def _differs(record: dict[str, Any], status: JobStatus, counts: Counts, terminated: Any) -> bool:
    return (
        record["status"] != status.value
        or (record["total"], record["succeeded"], record["failed"])
        != (counts.total, counts.succeeded, counts.failed)
        or record.get("terminated") != terminated
    )
