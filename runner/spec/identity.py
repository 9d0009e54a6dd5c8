"""How a managed job is recognised: the spec hash and the Description marker.

A managed job's Description ends with ``[batchctl:<name>:<hash>]`` so one
ListJobs sweep maps every live job to its spec. The hash covers the immutable
fields (manifest, operation, report) as canonical JSON: sorted keys, defaults
left out, so it is stable across key order, YAML formatting, and fields added
to the models later with a default. A manifest kept in the repository
(``manifest.file``) is hashed by its content, not its path.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from runner.spec.models import BatchJob

HASH_LENGTH = 16
MAX_DESCRIPTION_BYTES = 256
_MARKER_RE = re.compile(r"\[batchctl:([a-z0-9-]{1,63}):([0-9a-f]{16})\]$")


def marker(name: str, spec_hash: str) -> str:
    """The identity marker appended to a managed job's Description."""
    return f"[batchctl:{name}:{spec_hash}]"


def description_budget(name: str) -> int:
    """Bytes left for the user's description once the marker and its space are added."""
    return MAX_DESCRIPTION_BYTES - len(marker(name, "0" * HASH_LENGTH).encode()) - 1


def full_description(description: str, name: str, spec_hash: str) -> str:
    """The Description sent to the service: the user's text, then the marker."""
    tail = marker(name, spec_hash)
    return f"{description} {tail}" if description else tail


@dataclass(frozen=True)
class Marker:
    """What a Description's marker says."""

    name: str
    spec_hash: str


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HASH_CHARS = frozenset("0123456789abcdef")
_OPEN = "[batchctl:"


def parse_marker(description: str) -> Marker | None:
    """The marker at the end of ``description``, or None for an unmanaged job.

    What ``_MARKER_RE`` matches, without a regex search over every description: read
    per listed job, 100,000 searches were a tenth of a large plan (bench/reconcile.py).
    """
    if not description:
        return None
    if description[-1] != "]":
        if not description.endswith("]\n"):  # `$` matches before a final newline too
            return None
        description = description[:-1]
    start = description.rfind(_OPEN)
    if start < 0:
        return None
    name, sep, digest = description[start + len(_OPEN) : -1].rpartition(":")
    if (
        not sep
        or len(digest) != HASH_LENGTH
        or not 1 <= len(name) <= 63
        or not _HASH_CHARS.issuperset(digest)
        or not _NAME_CHARS.issuperset(name)
    ):
        return None
    return Marker(name, digest)


def immutable_fields(job: BatchJob, manifest_digest: str | None = None) -> dict[str, object]:
    """The fields whose change makes a new job, as canonical JSON-ready data."""
    spec = job.spec
    manifest: object = spec.manifest.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if spec.manifest.file is not None:
        manifest = {"file": {"sha256": manifest_digest or ""}}
    return {
        "manifest": manifest,
        "operation": spec.operation.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "report": (
            spec.report.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            if spec.report
            else None
        ),
    }


def spec_hash(job: BatchJob, manifest_digest: str | None = None) -> str:
    """The job's spec hash (16 hex digits of SHA-256 over the immutable fields)."""
    canonical = json.dumps(
        immutable_fields(job, manifest_digest), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]
