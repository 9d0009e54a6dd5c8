"""The ledger kept in a bucket, as Terraform's S3 backend keeps its state.

One JSON document, ``<prefix>/ledger.json``: a format name, a lineage (fixed at
creation), a serial (one more at every write), the records and the history.
Every write is conditional — ``If-Match`` on the ETag last read, or
``If-None-Match: *`` when the document does not exist yet — so two runners
never overwrite each other: the one that loses the race reads the document
again and applies its change to what it finds, never forcing its own copy.
The changes are upserts and appends, which mean the same applied to any
version of the document.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runner.jobs.status import JobStatus
from runner.reconcile.model import Counts, LedgerRecord, ObservedJob

FORMAT = "batchctl-ledger/1"
MAX_ATTEMPTS = 25
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


class StateError(Exception):
    """The state cannot be read or written; the message says where and why."""


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
            return
    doc["records"].append(fresh)


class S3Ledger:
    """The ledger as one JSON document in a bucket, written only conditionally."""

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
        self._doc: dict[str, Any] | None = None
        self._etag: str | None = None

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    # -- the document ------------------------------------------------------------

    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            body = answer["Body"].read()
        except ClientError as exc:
            if missing(exc):
                return {
                    "format": FORMAT,
                    "lineage": str(uuid.uuid4()),
                    "serial": 0,
                    "records": [],
                    "history": [],
                }, None
            raise StateError(f"cannot read {self.url}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot read {self.url}: {exc}") from exc
        try:
            doc = json.loads(body)
        except ValueError:
            raise StateError(f"{self.url} is not JSON: not a batchctl ledger") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StateError(f"{self.url} is not a batchctl ledger (format {FORMAT})")
        return doc, str(answer["ETag"])

    def _write(self, doc: dict[str, Any], etag: str | None) -> str:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(doc, separators=(",", ":")).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if conflict(exc) or (etag and missing(exc)):
                raise LostRace from exc
            raise StateError(f"cannot write {self.url}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot write {self.url}: {exc}") from exc
        return str(answer["ETag"])

    def change(self, apply: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``apply`` to the document and write it; on a lost race, again on fresh state."""
        if self._doc is None:
            self._doc, self._etag = self._read()
        for attempt in range(MAX_ATTEMPTS):
            doc = copy.deepcopy(self._doc)
            apply(doc)
            doc["serial"] = int(self._doc.get("serial", 0)) + 1
            try:
                self._etag = self._write(doc, self._etag)
            except LostRace:
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                self._doc, self._etag = self._read()
                continue
            self._doc = doc
            return
        raise StateError(
            f"{self.url} kept changing under this run ({MAX_ATTEMPTS} attempts); nothing of "
            "this change was written, and nothing was overwritten"
        )

    def document(self) -> dict[str, Any]:
        """The document as it is now (read afresh)."""
        self._doc, self._etag = self._read()
        return copy.deepcopy(self._doc)

    # -- the ledger --------------------------------------------------------------

    def records(self) -> list[LedgerRecord]:
        """Every recorded job (read afresh, so other runners' writes are seen)."""
        doc = self.document()
        found = [record_from(r) for r in doc["records"]]
        return sorted(found, key=lambda r: (r.target, r.name, r.generation))

    def record(self, record: LedgerRecord) -> None:
        """Add a job (or refresh it, if its generation is known)."""
        now = self.clock()
        self.change(lambda doc: upsert(doc, record, now))

    def refresh_from(self, observed: Iterable[ObservedJob]) -> None:
        """Store the statuses and counts one ListJobs sweep showed."""
        self.refresh((o.job_id, o.status, o.counts, o.terminated) for o in observed)

    def refresh(self, updates: Iterable[tuple[str, JobStatus, Counts, float | None]]) -> None:
        """Store the status and counts just observed, in one write (final records stay)."""
        by_id = {job_id: (s, c, t) for job_id, s, c, t in updates}
        if self._doc is None:
            self._doc, self._etag = self._read()
        if not any(
            r["jobId"] in by_id
            and not JobStatus(r["status"]).final
            and _differs(r, *by_id[r["jobId"]])
            for r in self._doc["records"]
        ):
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

        self.change(apply)

    def note(self, target: str, name: str, action: str, job_id: str | None, detail: str) -> None:
        """Remember an applied action."""
        entry = {
            "at": self.clock(),
            "target": target,
            "name": name,
            "action": action,
            "jobId": job_id,
            "detail": detail,
        }
        self.change(lambda doc: doc["history"].append(entry))

    def history(self) -> list[dict[str, object]]:
        """Every applied action, oldest first."""
        return list(self.document()["history"])

    def import_all(self, records: list[LedgerRecord], history: list[dict[str, object]]) -> None:
        """Fill an empty ledger with another's records and history (``state migrate``)."""
        now = self.clock()

        def apply(doc: dict[str, Any]) -> None:
            if doc["records"] or doc["history"]:
                raise StateError(f"{self.url} is not empty; nothing was moved")
            doc["records"] = [record_json(r, now) for r in records]
            doc["history"] = [dict(h) for h in history]

        self.change(apply)

    def close(self) -> None:
        """Nothing to release (the client belongs to whoever opened it)."""


def _differs(record: dict[str, Any], status: JobStatus, counts: Counts, terminated: Any) -> bool:
    return (
        record["status"] != status.value
        or (record["total"], record["succeeded"], record["failed"])
        != (counts.total, counts.succeeded, counts.failed)
        or record.get("terminated") != terminated
    )
