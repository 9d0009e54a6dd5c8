"""What the jobs a plan would create will cost, and how long they will take.

- **Objects**: a manifest's rows are counted, streaming (``file``, ``csv``, ``inventory``:
  exact); a ``generate`` manifest is listed when the target's store can be read here,
  up to ``listing_limit`` keys ("more than N" beyond), else it is "unknown until listed".
- **Cost**: the service's job and per-object fees, and the requests the operation makes
  (per object, priced by the class written; a restore also by tier and GB retrieved),
  from ``pricing.PriceBook``. A local target pays no service fee; its requests are
  billed only when its store is S3 on AWS. Whatever cannot be priced — no price for a
  region, an unknown count, Lambda's own charges — is listed in ``unknown``, never
  guessed: the total is then a lower bound, and says so.
- **Duration**: the objects over the measured rate (tasks per second of active time) of
  the latest Complete jobs of the same operation on the same target, kept in the ledger;
  with no such job, "no estimate yet". A campaign's duration is its critical path, since
  dependent jobs run one after another.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner import jobsdir
from runner.backends.base import JobService
from runner.backends.local import LocalBackend
from runner.engine.manifests import (
    ManifestError,
    glob_regex,
    manifest_tasks,
    matches,
    read_csv_rows,
)
from runner.jobs.errors import JobServiceError
from runner.jobs.status import JobStatus
from runner.reconcile.model import ActionKind, DesiredJob, JobKey, Plan
from runner.reconcile.pricing import PriceBook, unit
from runner.spec.loader import LoadedJob, LoadedTarget
from runner.spec.models import GenerateManifest, Operation
from runner.state.ledger import LedgerStore
from runner.state.records import LedgerRecord
from runner.stores.base import ObjectStore, StoreError

LISTING_LIMIT = 1_000_000
_CREATES = (ActionKind.CREATE, ActionKind.STAGE, ActionKind.RECREATE)
_GB = 1024**3
# Per object, the request each operation makes (charged at PUT's rate unless named).
_PUT_OPERATIONS = frozenset({"tag", "acl", "retention", "legalHold", "hold", "metadata"})
_ARCHIVES = ("GLACIER", "DEEP_ARCHIVE")


@dataclass
class Count:
    """How many objects a job will act on, as far as can be told before it runs."""

    objects: int | None = None
    exact: bool = True  # False: at least ``objects`` (a listing stopped at its limit)
    bytes: int | None = None  # known from a listing only
    classes: dict[str, int] | None = None  # storage class → objects, from a listing
    note: str = ""  # why the count is unknown or partial


@dataclass
class Fee:
    """One line of a job's cost."""

    item: str  # e.g. "job", "object", "request.put.STANDARD"
    label: str
    usd: float
    confirmed: bool


@dataclass
class JobEstimate:
    """The estimate of one job a plan would create."""

    target: str
    name: str
    operation: str
    count: Count
    fees: list[Fee] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # what could not be priced, and why
    notes: list[str] = field(default_factory=list)  # what is knowingly left out
    seconds: float | None = None
    rate: float | None = None  # tasks/s the duration is from
    duration_note: str = "no estimate yet"

    @property
    def usd(self) -> float:
        """The priced part of the cost."""
        return sum(f.usd for f in self.fees)

    @property
    def complete(self) -> bool:
        """Whether every part of the cost is priced (else ``usd`` is a lower bound)."""
        return not self.unknown


@dataclass
class CampaignDuration:
    """A campaign's critical path: the chain of dependent jobs that takes longest."""

    campaign: str | None
    seconds: float
    path: list[str]
    complete: bool  # every job on the campaign's chains has a duration


@dataclass
class Estimate:
    """Every job's estimate, the total, and each campaign's duration."""

    jobs: list[JobEstimate]
    campaigns: list[CampaignDuration]

    @property
    def usd(self) -> float:
        """The priced total."""
        return sum(j.usd for j in self.jobs)

    @property
    def complete(self) -> bool:
        """Whether the total is the whole cost (else it is a lower bound)."""
        return all(j.complete for j in self.jobs)

    @property
    def unconfirmed(self) -> list[str]:
        """Items priced from prices not confirmed against a page, once each."""
        return sorted({f.item for j in self.jobs for f in j.fees if not f.confirmed and f.usd})


# -- counting ---------------------------------------------------------------------


def _count(rows: Iterator[object]) -> int:
    return sum(1 for _ in rows)


def count_objects(
    loaded: LoadedJob,
    project: Path,
    store: ObjectStore | None,
    *,
    listing_limit: int = LISTING_LIMIT,
    why_no_store: str = "",
) -> Count:
    """The objects ``loaded``'s manifest names (see the module's docstring)."""
    manifest = loaded.job.spec.manifest
    if manifest.file is not None:
        with jobsdir.open_manifest_file(loaded, project) as stream:
            rows = read_csv_rows(stream, str(manifest.file), ["Bucket", "Key"])
            try:
                return Count(_count(rows))
            except ManifestError as exc:
                return Count(note=f"manifest.file: {exc}")
    if store is None:
        if manifest.generate is not None:
            return Count(
                note="unknown until listed" + (f" ({why_no_store})" if why_no_store else "")
            )
        return Count(note=f"the manifest cannot be read from here ({why_no_store})")
    if manifest.generate is not None:
        return _listed(store, manifest.generate, listing_limit)
    try:
        return Count(_count(manifest_tasks(store, manifest)))
    except (ManifestError, StoreError, OSError) as exc:
        return Count(note=f"the manifest cannot be read: {exc}")


def _listed(store: ObjectStore, spec: GenerateManifest, limit: int) -> Count:
    """Count a listing with the generate filters, its bytes and classes, up to ``limit``."""
    pattern = glob_regex(spec.filters.key_matches) if spec.filters.key_matches else None
    found = size = 0
    classes: dict[str, int] = {}
    try:
        for info in store.list(spec.bucket, spec.prefix or "", versions=spec.versions == "all"):
            if not matches(info, spec, pattern):
                continue
            found += 1
            size += info.size
            classes[info.storage_class or "STANDARD"] = (
                classes.get(info.storage_class or "STANDARD", 0) + 1
            )
            if found >= limit:
                return Count(
                    found,
                    exact=False,
                    bytes=size,
                    classes=classes,
                    note=f"listing stopped at {limit:,} keys",
                )
    except (StoreError, OSError) as exc:
        return Count(note=f"unknown until listed (cannot list s3://{spec.bucket}: {exc})")
    return Count(found, bytes=size, classes=classes)


# -- prices -------------------------------------------------------------------------


def operation_name(operation: Operation) -> str:
    """The operation's name as specs write it (``copy``, ``legalHold`` …)."""
    data = operation.model_dump(by_alias=True, exclude_none=True)
    return next(iter(data))


def _region(target: LoadedTarget) -> tuple[str, str | None, str]:
    """(backend priced, region, why it is not priced) of a target."""
    spec = target.target.spec
    kind = target.kind
    if kind == "aws" and spec.aws is not None:
        return "aws", spec.aws.region, ""
    if kind == "cos" and spec.cos is not None:
        return "cos", spec.cos.region, ""
    if kind == "gcs" and spec.gcs is not None:
        return "gcs", spec.gcs.location, ""
    if kind == "local" and spec.local is not None:
        store = spec.local.store
        if isinstance(store, str):
            return "", None, "folder store: no fees"
        host = urllib.parse.urlsplit(store.s3.endpoint_url).hostname or ""
        if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
            return "aws-requests", store.s3.region, ""
        return "", None, f"self-hosted S3 store {host}: no fees"
    return "", None, f"{kind} is not priced"


class _Pricer:
    def __init__(self, book: PriceBook, backend: str, region: str | None) -> None:
        self.book, self.backend, self.region = book, backend, region
        self.fees: list[Fee] = []
        self.unknown: list[str] = []

    def add(self, item: str, amount: float, label: str) -> None:
        backend = "aws" if self.backend == "aws-requests" else self.backend
        price = self.book.get(backend, self.region, item)
        if price is None:
            self.unknown.append(
                f"no price for {item} on {backend} {self.region} (batchctl.yaml pricing."
                f"{backend}.{self.region}.{item})"
            )
            return
        usd = price.usd * amount / unit(item)
        self.fees.append(Fee(item, label, usd, price.confirmed))


def price_job(
    estimate: JobEstimate, loaded: LoadedJob, target: LoadedTarget, book: PriceBook
) -> None:
    """Fill ``estimate``'s fees and unknowns from its count and its target's prices."""
    backend, region, free = _region(target)
    if not backend:
        estimate.notes.append(free)
        return
    pricer = _Pricer(book, backend, region)
    operation = loaded.job.spec.operation
    count = estimate.count
    objects = count.objects
    if backend in ("aws", "cos", "gcs"):
        pricer.add("job", 1, "job fee")
    if objects is None:
        estimate.fees, estimate.unknown = (
            pricer.fees,
            [
                *pricer.unknown,
                f"objects: {count.note or 'unknown'}",
            ],
        )
        return
    if not count.exact:
        pricer.unknown.append(f"objects beyond the {objects:,} counted ({count.note})")
    if backend in ("aws", "cos", "gcs"):
        pricer.add("object", objects, f"{objects:,} objects")
    if backend == "aws-requests" and loaded.job.spec.manifest.generate is not None:
        # The engine lists the bucket itself: a LIST request per 1,000 keys.
        pricer.add("request.list", math.ceil(objects / 1000) or 1, "LIST requests")
    name = estimate.operation
    if name == "copy" and operation.copy_ is not None:
        cls = operation.copy_.storage_class or "STANDARD"
        if cls == "ARCHIVE":
            pricer.unknown.append("requests: no price for copies to ARCHIVE (COS)")
        else:
            pricer.add(f"request.put.{cls}", objects, f"{objects:,} COPY requests ({cls})")
    elif name in _PUT_OPERATIONS:
        pricer.add("request.put.STANDARD", objects, f"{objects:,} PUT requests")
    elif name in ("untag", "delete"):
        pricer.add("request.delete", objects, f"{objects:,} DELETE requests")
    elif name == "restore" and operation.restore is not None:
        _restore(pricer, count, operation.restore.tier, estimate)
    elif name == "checksum":
        pricer.add("request.get", objects, f"{objects:,} GET requests")
        pricer.unknown.append("checksum: the service's per-GB processing fee is not priced")
    elif name == "invoke":
        estimate.notes.append("the function's or command's own costs (Lambda) are out of scope")
    elif name == "rewrite":
        pricer.unknown.append("rewrite: no price for GCS rewrites")
    estimate.fees, estimate.unknown = pricer.fees, pricer.unknown


def _restore(pricer: _Pricer, count: Count, tier: str, estimate: JobEstimate) -> None:
    objects = count.objects or 0
    classes = count.classes
    if classes is None:
        # The class of each object is unknown without a listing: each is priced as the
        # dearer archive, so that an estimate gating spending is never low.
        dearest = max(
            _ARCHIVES,
            key=lambda c: (
                p.usd if (p := pricer.book.get("aws", pricer.region, f"restore.{c}.{tier}")) else 0
            ),
        )
        classes = {dearest: objects}
        estimate.notes.append(f"storage classes unknown: restores priced as {dearest}")
    for cls, number in sorted(classes.items()):
        if cls not in _ARCHIVES:
            continue  # not archived: the restore fails for it and costs nothing
        pricer.add(f"restore.{cls}.{tier}", number, f"{number:,} restore requests ({cls}, {tier})")
    if count.bytes is None or count.classes is None:
        pricer.unknown.append("retrieval: GB unknown without a listing (per-GB fee not priced)")
        return
    share = count.bytes / max(objects, 1)
    for cls, number in sorted(count.classes.items()):
        if cls in _ARCHIVES:
            gb = number * share / _GB
            pricer.add(f"retrieval.{cls}.{tier}", gb, f"{gb:,.1f} GB retrieved ({cls})")


# -- duration -----------------------------------------------------------------------


def _operation_of(record: LedgerRecord) -> str | None:
    try:
        data = json.loads(record.immutable) if record.immutable else {}
        op = data.get("operation")
        return next(iter(op)) if isinstance(op, dict) and op else None
    except (ValueError, TypeError):
        return None


def rates(
    records: Sequence[LedgerRecord],
    services: Mapping[str, JobService],
    ledger: LedgerStore | None,
    wanted: set[tuple[str, str]],
    *,
    sample: int = 5,
) -> dict[tuple[str, str], float]:
    """Tasks/s by (target, operation): the median of the latest Complete jobs' rates.

    A job Complete before rates were kept gets its rate now, once, from the service's
    active time (DescribeJob), or its ledger times when the service forgot it; the ledger
    keeps it (when writable), so no job is described twice.
    """
    found: dict[tuple[str, str], list[float]] = {}
    newest = sorted(
        (r for r in records if r.status is JobStatus.COMPLETE and r.counts.total),
        key=lambda r: r.terminated or r.created,
        reverse=True,
    )
    for record in newest:
        op = _operation_of(record)
        key = (record.target, op or "")
        if op is None or key not in wanted or len(found.get(key, [])) >= sample:
            continue
        rate = record.rate
        if rate is None:
            rate = _measure(record, services.get(record.target))
            if ledger is not None and rate is not None:
                # A read-only run (--no-lock) keeps it in memory only.
                with contextlib.suppress(PermissionError):
                    ledger.record(replace(record, rate=rate))
        if rate:
            found.setdefault(key, []).append(rate)
    return {key: statistics.median(values) for key, values in found.items()}


def _measure(record: LedgerRecord, service: JobService | None) -> float | None:
    tasks = record.counts.total
    if service is not None:
        try:
            elapsed = service.describe_job(record.job_id).progress.elapsed_seconds
        except (JobServiceError, OSError):
            elapsed = 0.0
        if elapsed > 0:
            return tasks / elapsed
    if record.terminated and record.terminated > record.created:
        return tasks / (record.terminated - record.created)
    return None


def _duration(estimate: JobEstimate, rate: float | None) -> None:
    if rate is None or rate <= 0:
        estimate.duration_note = "no estimate yet"
        return
    objects = estimate.count.objects
    if objects is None:
        estimate.duration_note = "unknown (objects unknown)"
        return
    estimate.rate = rate
    estimate.seconds = objects / rate
    estimate.duration_note = f"at {rate:,.0f} tasks/s, as measured here"
    if not estimate.count.exact:
        estimate.duration_note += " (at least: objects counted in part)"


def critical_paths(plan: Plan, jobs: Mapping[JobKey, JobEstimate]) -> list[CampaignDuration]:
    """Each campaign's longest chain of jobs to create, by estimated duration."""
    actions = {a.key: a for a in plan.actions}
    best: dict[JobKey, tuple[float, list[str], bool]] = {}
    for action in plan.actions:  # dependency order: a job's dependencies come first
        estimate = jobs.get(action.key)
        own = estimate.seconds if estimate is not None and estimate.seconds is not None else 0.0
        known = estimate is None or estimate.seconds is not None
        before: tuple[float, list[str], bool] = (0.0, [], True)
        for target, name, _ in action.dependencies:
            prior = best.get((target, name))
            if prior is not None and prior[0] >= before[0]:
                before = prior
        path = [*before[1], action.name] if estimate is not None else before[1]
        best[action.key] = (before[0] + own, path, before[2] and known)
    campaigns: dict[str | None, CampaignDuration] = {}
    for key, (seconds, path, known) in best.items():
        campaign = actions[key].campaign
        if not path:
            continue
        held = campaigns.get(campaign)
        if held is None or seconds > held.seconds:
            complete = known and (held.complete if held else True)
            campaigns[campaign] = CampaignDuration(campaign, seconds, path, complete)
        elif not known:
            held.complete = False
    return [campaigns[c] for c in sorted(campaigns, key=lambda c: (c is None, c or ""))]


def estimate_plan(
    plan: Plan,
    desired: Sequence[DesiredJob],
    loaded_jobs: Mapping[JobKey, LoadedJob],
    targets: Mapping[str, LoadedTarget],
    services: Mapping[str, JobService],
    ledger: LedgerStore,
    project: Path,
    book: PriceBook,
    *,
    listing_limit: int = LISTING_LIMIT,
) -> Estimate:
    """The estimate of every job ``plan`` would create (the ledger is read for durations
    only when there is such a job: a plan of 10,000 unchanged specs reads nothing more)."""
    items = {d.key: d for d in desired}
    # Every job the campaign will create: now, or once its dependencies or a person let
    # it (a reviewer approves the delete that waits behind three other jobs too).
    creating = [
        a
        for a in plan.actions
        if a.key in items
        and (
            a.kind in _CREATES
            or (
                a.job_id is None
                and (
                    a.kind is ActionKind.WAIT
                    or (a.kind is ActionKind.NOOP and a.awaiting_confirmation)
                )
            )
        )
    ]
    jobs: dict[JobKey, JobEstimate] = {}
    for action in creating:
        loaded = loaded_jobs[action.key]
        store, why = None, ""
        if loaded.job.spec.manifest.file is None:  # a repository file needs no store
            store, why = _store_of(services.get(action.target), targets[action.target])
        count = count_objects(loaded, project, store, listing_limit=listing_limit, why_no_store=why)
        listed_early = action.kind is ActionKind.WAIT and loaded.job.spec.manifest.generate
        if listed_early and count.objects is not None and not count.note:
            count.note = "as listed now: the jobs it waits for may change that"
        operation = operation_name(loaded.job.spec.operation)
        estimate = JobEstimate(action.target, action.name, operation, count)
        price_job(estimate, loaded, targets[action.target], book)
        jobs[action.key] = estimate
    wanted = {(e.target, e.operation) for e in jobs.values()}
    measured = rates(ledger.records(), services, ledger, wanted) if wanted else {}
    for estimate in jobs.values():
        _duration(estimate, measured.get((estimate.target, estimate.operation)))
    return Estimate(list(jobs.values()), critical_paths(plan, jobs))


def _store_of(service: JobService | None, target: LoadedTarget) -> tuple[ObjectStore | None, str]:
    """Where a target's manifests can be read from here, or why not."""
    inner: Any = getattr(service, "inner", service)
    if isinstance(inner, LocalBackend):
        store = inner.target.store
        if isinstance(store, str) and store.startswith("dir://"):
            folder = inner.project_root / store.removeprefix("dir://")
            if not folder.exists():  # opening it would create it: `plan --no-lock` writes nothing
                return None, "no objects stored yet"
        return inner.store, ""
    if inner is None:
        return None, "the target is not open"
    try:
        return inner.report_store(), ""
    except (JobServiceError, StoreError, OSError) as exc:
        return None, f"{target.kind} gives no store to read it: {exc}"


def estimate_view(estimate: Estimate) -> dict[str, Any]:
    """The estimate as data (plan's JSON and templates)."""
    return {
        "jobs": [
            {
                "target": j.target,
                "name": j.name,
                "operation": j.operation,
                "objects": j.count.objects,
                "objectsExact": j.count.exact,
                "bytes": j.count.bytes,
                "countNote": j.count.note,
                "usd": round(j.usd, 4),
                "costComplete": j.complete,
                "fees": [
                    {
                        "item": f.item,
                        "label": f.label,
                        "usd": round(f.usd, 6),
                        "confirmed": f.confirmed,
                    }
                    for f in j.fees
                ],
                "unknown": j.unknown,
                "notes": j.notes,
                "seconds": None if j.seconds is None else round(j.seconds, 1),
                "tasksPerSecond": None if j.rate is None else round(j.rate, 1),
                "duration": j.duration_note,
                "text": job_text(j),
            }
            for j in estimate.jobs
        ],
        "usd": round(estimate.usd, 4),
        "complete": estimate.complete,
        "unconfirmedPrices": estimate.unconfirmed,
        "campaigns": [
            {
                "campaign": c.campaign,
                "seconds": round(c.seconds, 1),
                "path": c.path,
                "complete": c.complete,
                "text": duration_text(c.seconds) if c.seconds else "no estimate yet",
            }
            for c in estimate.campaigns
        ],
        "text": total_text(estimate),
    }


def money(usd: float) -> str:
    """``$0.26``, ``$1,234.56``, ``$0.0004`` for a fraction of a cent, ``<$0.0001``."""
    if usd and usd < 0.0001:
        return "<$0.0001"
    if usd and usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def duration_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def job_text(job: JobEstimate) -> str:
    """``10,080 objects · $0.26 (job fee $0.25, …) · 42 s from 240 tasks/s measured here``."""
    count = job.count
    if count.objects is None:
        objects = f"objects {count.note or 'unknown'}"
    else:
        objects = f"{'more than ' if not count.exact else ''}{count.objects:,} objects"
        objects += f" ({count.note})" if count.note and count.exact else ""
    if job.fees or job.unknown:
        cost = ("≥ " if not job.complete else "") + money(job.usd)
        parts = ", ".join(f"{f.label} {money(f.usd)}" for f in job.fees)
        cost += f" ({parts})" if parts else ""
    else:
        cost = "$0.00" + (f" ({'; '.join(job.notes)})" if job.notes else "")
    duration = (
        f"{duration_text(job.seconds)} ({job.duration_note})"
        if job.seconds is not None
        else job.duration_note
    )
    text = f"{objects} · {cost} · duration {duration}"
    if job.unknown:
        text += " · not priced: " + "; ".join(job.unknown)
    extra = [n for n in job.notes if job.fees or job.unknown]
    if extra:
        text += " · " + "; ".join(extra)
    return text


def total_text(estimate: Estimate) -> str:
    """The plan's last line: the cost of every job to create, and each campaign's time."""
    if not estimate.jobs:
        return ""
    cost = ("at least " if not estimate.complete else "") + money(estimate.usd)
    text = f"Estimate: {cost} for the {len(estimate.jobs)} job(s) still to create"
    if estimate.unconfirmed:
        text += f" ({len(estimate.unconfirmed)} price(s) not confirmed against their page)"
    for campaign in estimate.campaigns:
        name = f"campaign {campaign.campaign}" if campaign.campaign else "no campaign"
        if campaign.seconds and campaign.complete:
            text += f"; {name}: {duration_text(campaign.seconds)} ({' → '.join(campaign.path)})"
        elif campaign.seconds:
            text += (
                f"; {name}: at least {duration_text(campaign.seconds)} "
                "(some jobs have no estimate yet)"
            )
        else:
            text += f"; {name}: no estimate yet"
    return text + "."
