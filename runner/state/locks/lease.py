"""The reconcile lock kept in a bucket: a lease object beside the ledger.

``<prefix>/lock.json`` names its holder (who, host, pid, start time), a lock ID
and an expiry. It is taken with ``If-None-Match: *`` (only one creator wins),
renewed while the reconcile runs (``If-Match`` on the ETag this holder wrote),
and taken over only once it has expired — again with ``If-Match`` on the expired
lease's ETag, so of two runners that find it expired only one gets it. A holder
that finds its lease gone or replaced stops renewing and says so (``lost``); the
ledger's own conditional writes keep it from overwriting anything meanwhile.
``batchctl state unlock LOCK_ID`` removes a stuck lease, as Terraform's
force-unlock does.

The expiry is compared with this machine's clock: clocks of runners that differ
by more than a lease's length can take over a live lease, which is why leases
last minutes while renewals come every third of that.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runner.state.errors import StateError
from runner.state.ledger.bucket import conflict, missing
from runner.support.filelock import Holder, LockHeld
from runner.support.log import Log


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LeaseHolder(Holder):
    """Who holds a lease, under which lock ID, until when."""

    lock_id: str = ""
    who: str = ""
    expires: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.who} (pid {self.pid} on {self.host}) since {self.started}, lock ID "
            f"{self.lock_id}, expires {_iso(self.expires)}"
        )


def holder_from(data: dict[str, Any]) -> LeaseHolder:
    """The holder a lease document names."""
    return LeaseHolder(
        pid=int(data.get("pid") or 0),
        host=str(data.get("host") or "?"),
        started=str(data.get("started") or "?"),
        lock_id=str(data.get("id") or "?"),
        who=str(data.get("holder") or "?"),
        expires=float(data.get("expires") or 0.0),
    )


class S3Lease:
    """An expiring, renewed lock object in a bucket."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        seconds: float = 120.0,
        clock: Callable[[], float] = time.time,
        log: Log | None = None,
        operation: str = "reconcile",
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.seconds = seconds
        self.clock = clock
        self.log = log
        self.operation = operation
        self.lock_id: str | None = None
        self.lost = False
        self._etag: str | None = None
        self._body: dict[str, Any] = {}
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    def read(self) -> tuple[dict[str, Any], str] | None:
        """The lease as it stands (document and ETag), or None when nobody holds it."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            data = json.loads(answer["Body"].read())
        except ClientError as exc:
            if missing(exc):
                return None
            raise StateError(f"cannot read the lock {self.url}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot read the lock {self.url}: {exc}") from exc
        except ValueError:
            data = {}
        return (data if isinstance(data, dict) else {}), str(answer["ETag"])

    def _put(self, body: dict[str, Any], condition: dict[str, str]) -> str | None:
        """Write the lease under ``condition``; its ETag, or None when the race was lost."""
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(body).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if conflict(exc) or ("IfMatch" in condition and missing(exc)):
                return None
            raise StateError(f"cannot write the lock {self.url}: {exc}") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot write the lock {self.url}: {exc}") from exc
        return str(answer["ETag"])

    def _fresh(self) -> dict[str, Any]:
        now = self.clock()
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "?"
        host = socket.gethostname()
        return {
            "id": str(uuid.uuid4()),
            "holder": f"{user}@{host}",
            "host": host,
            "pid": os.getpid(),
            "operation": self.operation,
            "started": _iso(now),
            "expires": now + self.seconds,
            "expiresAt": _iso(now + self.seconds),
        }

    def acquire(self) -> None:
        """Take the lease, or raise LockHeld naming who holds it."""
        body = self._fresh()
        found = self.read()
        if found is not None and holder_from(found[0]).expires > self.clock():
            # Look first, so that a store that ignored conditional headers could still
            # not take a live lease from its holder.
            raise LockHeld(self.url, holder_from(found[0]))
        for _ in range(5):
            etag = self._put(body, {"IfNoneMatch": "*"})
            if etag is not None:
                return self._confirm(body, etag)
            found = self.read()
            if found is None:
                continue  # released meanwhile: try again
            current, current_etag = found
            holder = holder_from(current)
            if holder.expires > self.clock():
                raise LockHeld(self.url, holder)
            etag = self._put(body, {"IfMatch": current_etag})
            if etag is not None:
                if self.log:
                    self.log(f"took over the expired lock of {holder}")
                return self._confirm(body, etag)
        found = self.read()
        raise LockHeld(self.url, holder_from(found[0]) if found else None)

    def _confirm(self, body: dict[str, Any], etag: str) -> None:
        """Read the lease back: ours, or the store does not honour conditional writes."""
        found = self.read()
        if found is None or found[0].get("id") != body["id"]:
            raise StateError(
                f"the lock {self.url} did not hold after it was written: the S3 store must "
                "honour conditional writes (If-None-Match, If-Match), as AWS S3, SeaweedFS "
                "and MinIO do"
            )
        self._held(body, etag)

    def _held(self, body: dict[str, Any], etag: str) -> None:
        self.lock_id = str(body["id"])
        self._body = body
        self._etag = etag
        self.lost = False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._renewer.start()

    def renew(self) -> bool:
        """Push the expiry out; False (and ``lost``) when the lease is no longer ours."""
        if self._etag is None or self.lost:
            return False
        body = {**self._body, "expires": self.clock() + self.seconds}
        body["expiresAt"] = _iso(body["expires"])
        try:
            etag = self._put(body, {"IfMatch": self._etag})
        except StateError as exc:
            if self.log:
                self.log(f"could not renew the lock (will retry): {exc}")
            return True
        if etag is None:
            self.lost = True
            if self.log:
                self.log(f"lost the lock {self.url}: it was taken over or unlocked")
            return False
        self._body, self._etag = body, etag
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if not self.renew():
                return

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still ours."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
            self._renewer = None
        if self._etag is not None and not self.lost:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag)
            except ClientError as exc:
                if not (conflict(exc) or missing(exc)):
                    raise StateError(f"cannot release the lock {self.url}: {exc}") from exc
        self._etag = None
        self.lock_id = None

    def unlock(self, lock_id: str) -> LeaseHolder:
        """Remove the lease ``lock_id`` whoever holds it (``state unlock``); return its holder."""
        found = self.read()
        if found is None:
            raise StateError(f"no lock is held at {self.url}")
        current, etag = found
        holder = holder_from(current)
        if holder.lock_id != lock_id:
            raise StateError(f"the lock at {self.url} has ID {holder.lock_id}, not {lock_id}")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except ClientError as exc:
            if conflict(exc):
                raise StateError(
                    f"the lock at {self.url} changed while unlocking; look again"
                ) from exc
            if not missing(exc):
                raise StateError(f"cannot remove the lock {self.url}: {exc}") from exc
        return holder
