"""What each kind of target can run, from the reference sheets.

A spec that asks a target for something its service lacks is refused at
validate time, naming both, instead of failing at CreateJob (or worse, being
silently reinterpreted by the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from runner.spec.models import (
    BatchJob,
    CannedAcl,
    ChecksumAlgorithm,
    GenerateManifest,
    StorageClass,
)
from runner.spec.yamlsource import Path

_ALL_CLASSES = frozenset(get_args(StorageClass))
_ALL_CHECKSUMS = frozenset(get_args(ChecksumAlgorithm))
_ALL_ACLS = frozenset(get_args(CannedAcl))
_ALL_OPERATIONS = frozenset(
    {
        "copy",
        "tag",
        "untag",
        "acl",
        "restore",
        "retention",
        "legalHold",
        "delete",
        "checksum",
        "invoke",
    }
)
# Cloud Storage's own operations (GCS reference sheet); the embedded engine runs them too.
_GCS_OPERATIONS = frozenset({"delete", "hold", "metadata", "rewrite"})
_ALL_MANIFESTS = frozenset({"csv", "inventory", "generate", "file"})
# S3's copy takes no WRITE grant on an object (its x-amz-grant-* headers of a copy)
_S3_GRANTS = frozenset({"READ", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"})


@dataclass(frozen=True)
class Capabilities:
    """The operations, manifests and limits one kind of target supports."""

    kind: str
    title: str
    operations: frozenset[str]
    manifests: frozenset[str]
    storage_classes: frozenset[str]
    checksum_algorithms: frozenset[str]
    copy_checksum: bool
    copy_acls: frozenset[str]
    restore_max_days: int
    report_prefix_max_bytes: int
    invoke_with: str | None
    copy_content_language: bool
    copy_strip_prefix: bool
    copy_grants: frozenset[str]
    delete_permanent: bool = False
    hold_kinds: frozenset[str] = frozenset()
    metadata_fields: frozenset[str] = frozenset()
    priority: bool = True
    reports: bool = True
    # The service deletes finished jobs on request (GCS's DeleteJob; how long it lists them
    # otherwise is not in our reference sheet): --prune deletes a removed spec's job
    deletes_jobs: bool = False
    confirmation: bool = True  # without it, batchctl holds a manual job's create itself
    # A csv manifest pinned to one ETag or version (GCS reads the object as it is then)
    manifest_pins: bool = True
    # `generate` as object prefixes alone: no filters, versions or saved listing (GCS)
    generate_prefix_only: bool = False


_METADATA = frozenset(
    {
        "cacheControl",
        "contentDisposition",
        "contentEncoding",
        "contentLanguage",
        "contentType",
        "customTime",
        "custom",
        "retention",
    }
)


CAPABILITIES: dict[str, Capabilities] = {
    "local": Capabilities(
        kind="local",
        title="the embedded engine (local)",
        # rewrite needs a KMS the stores do not have: not rehearsed locally
        operations=_ALL_OPERATIONS | (_GCS_OPERATIONS - {"rewrite"}),
        manifests=_ALL_MANIFESTS,
        storage_classes=_ALL_CLASSES,
        checksum_algorithms=_ALL_CHECKSUMS - {"CRC64NVME"},
        copy_checksum=True,
        copy_acls=_ALL_ACLS,
        restore_max_days=36500,
        report_prefix_max_bytes=512,
        invoke_with="command",
        copy_content_language=True,
        copy_strip_prefix=True,
        copy_grants=_S3_GRANTS,
        delete_permanent=True,
        # S3 stores have one hold, Object Lock's legal hold: it stands in for the
        # temporary hold (both block deletion until lifted, with no expiry).
        hold_kinds=frozenset({"temporary"}),
        # customTime is GCS's own; retention has S3's modes on S3 stores (retention op)
        metadata_fields=_METADATA - {"customTime", "retention"},
    ),
    # S3 Batch Operations has no delete-object operation (reference §1.4).
    "aws": Capabilities(
        kind="aws",
        title="AWS S3 Batch Operations (aws)",
        operations=_ALL_OPERATIONS - {"delete"},
        manifests=_ALL_MANIFESTS,
        storage_classes=_ALL_CLASSES - {"ARCHIVE"},
        checksum_algorithms=_ALL_CHECKSUMS,
        copy_checksum=True,
        copy_acls=_ALL_ACLS,
        restore_max_days=36500,
        report_prefix_max_bytes=512,
        invoke_with="function",
        copy_content_language=True,
        copy_strip_prefix=False,  # TargetKeyPrefix only adds
        copy_grants=_S3_GRANTS,
    ),
    # COS documents copy and restore; delete (COSDeleteObject) and tagging
    # (COSPutObjectTagging) appear in the newest API page and the Go SDK. The API
    # page lists only STANDARD and STANDARD_IA for copies while the console offers
    # archive classes too (a doc conflict): we accept only what the API documents,
    # which refuses at validate time rather than risking a job the service rejects.
    # COS has no manifest generator: batchctl lists the bucket itself at CreateJob and
    # stages the CSV (runner.backends.cos), so `generate` works there too.
    "cos": Capabilities(
        kind="cos",
        title="Tencent COS Batch Operation (cos)",
        operations=frozenset({"copy", "restore", "delete", "tag"}),
        manifests=_ALL_MANIFESTS,
        storage_classes=frozenset({"STANDARD", "STANDARD_IA"}),
        checksum_algorithms=frozenset(),
        copy_checksum=False,
        copy_acls=frozenset({"private", "public-read"}),
        restore_max_days=365,
        report_prefix_max_bytes=256,
        invoke_with=None,
        copy_content_language=False,
        copy_strip_prefix=True,  # PrefixReplace with ResourcesPrefix
        copy_grants=frozenset({"READ", "WRITE", "FULL_CONTROL"}),  # COSGrant's permissions
    ),
    # GCS: four operations, manifests as a CSV in a bucket or object prefixes, no
    # priority and no confirmation (reference sheet).
    "gcs": Capabilities(
        kind="gcs",
        title="Google Cloud Storage batch operations (gcs)",
        operations=_GCS_OPERATIONS,
        manifests=frozenset({"csv", "generate"}),
        storage_classes=frozenset(),
        checksum_algorithms=frozenset(),
        copy_checksum=False,
        copy_acls=frozenset(),
        restore_max_days=0,
        report_prefix_max_bytes=0,
        invoke_with=None,
        copy_content_language=False,
        copy_strip_prefix=False,
        copy_grants=frozenset(),
        delete_permanent=True,
        hold_kinds=frozenset({"temporary", "eventBased"}),
        metadata_fields=_METADATA,
        priority=False,
        reports=False,
        confirmation=False,
        deletes_jobs=True,
        manifest_pins=False,
        generate_prefix_only=True,
    ),
}


def _supported(items: frozenset[str]) -> str:
    return ", ".join(sorted(items)) or "none"


def check_job(job: BatchJob, caps: Capabilities) -> list[tuple[Path, str]]:
    """Every way ``job`` asks more of the target than ``caps`` allows, with the field path."""
    problems: list[tuple[Path, str]] = []
    spec = job.spec
    target = f"target {spec.target!r} is {caps.title}"
    op_name = spec.operation.choice
    op_path: Path = ("spec", "operation", op_name)
    if op_name not in caps.operations:
        problems.append(
            (
                op_path,
                f"operation {op_name!r} is not supported: {target}, which supports "
                f"{_supported(caps.operations)}",
            )
        )
    manifest_kind = spec.manifest.choice
    if manifest_kind not in caps.manifests:
        problems.append(
            (
                ("spec", "manifest", manifest_kind),
                f"manifest {manifest_kind!r} is not supported: {target}, which supports "
                f"{_supported(caps.manifests)}",
            )
        )
    op = spec.operation
    if op.copy_ is not None:
        copy = op.copy_
        if copy.storage_class and copy.storage_class not in caps.storage_classes:
            problems.append(
                (
                    (*op_path, "storageClass"),
                    f"storage class {copy.storage_class} is not supported: {target}, "
                    f"which supports {_supported(caps.storage_classes)}",
                )
            )
        if copy.canned_acl and copy.canned_acl not in caps.copy_acls:
            problems.append(
                (
                    (*op_path, "cannedAcl"),
                    f"canned ACL {copy.canned_acl} is not supported: {target}, "
                    f"which supports {_supported(caps.copy_acls)}",
                )
            )
        if copy.checksum_algorithm and not caps.copy_checksum:
            problems.append(
                ((*op_path, "checksumAlgorithm"), f"copy checksums are not supported: {target}")
            )
        for index, grant in enumerate(copy.grants or ()):
            if grant.permission not in caps.copy_grants:
                problems.append(
                    (
                        (*op_path, "grants", index, "permission"),
                        f"permission {grant.permission} is not supported: {target}, which "
                        f"supports {_supported(caps.copy_grants)}",
                    )
                )
        if copy.strip_prefix and not caps.copy_strip_prefix:
            problems.append(((*op_path, "stripPrefix"), f"stripPrefix is not supported: {target}"))
        if copy.metadata and copy.metadata.content_language and not caps.copy_content_language:
            problems.append(
                (
                    (*op_path, "metadata", "contentLanguage"),
                    f"contentLanguage is not supported: {target}",
                )
            )
    if op.checksum is not None and op.checksum.algorithm not in caps.checksum_algorithms:
        problems.append(
            (
                (*op_path, "algorithm"),
                f"checksum {op.checksum.algorithm} is not supported: {target}, which supports "
                f"{_supported(caps.checksum_algorithms)}",
            )
        )
    if op.delete is not None and op.delete.permanent and not caps.delete_permanent:
        problems.append(((*op_path, "permanent"), f"permanent deletes are not supported: {target}"))
    if op.hold is not None:
        holds = {"temporary": op.hold.temporary, "eventBased": op.hold.event_based}
        for kind, value in holds.items():
            if value is not None and kind not in caps.hold_kinds:
                problems.append(
                    (
                        (*op_path, kind),
                        f"{kind} holds are not supported: {target}, which supports "
                        f"{_supported(caps.hold_kinds)}",
                    )
                )
    if op.metadata is not None:
        for name in sorted(op.metadata.model_fields_set):
            alias = type(op.metadata).model_fields[name].alias or name
            if alias not in caps.metadata_fields:
                problems.append(
                    (
                        (*op_path, alias),
                        f"metadata {alias} is not supported: {target}, which supports "
                        f"{_supported(caps.metadata_fields)}",
                    )
                )
    if spec.manifest.generate is not None and caps.generate_prefix_only:
        problems.extend(_prefix_only(spec.manifest.generate, target))
    csv = spec.manifest.csv
    if csv is not None and not caps.manifest_pins:
        for field, pin in (("etag", csv.etag), ("versionId", csv.version_id)):
            if pin is not None:
                problems.append(
                    (
                        ("spec", "manifest", "csv", field),
                        f"a manifest cannot be pinned to one {field}: {target}, which reads the "
                        "manifest object as it is when the job runs",
                    )
                )
    if op.restore is not None and op.restore.days > caps.restore_max_days:
        problems.append(((*op_path, "days"), f"must be at most {caps.restore_max_days}: {target}"))
    if op.invoke is not None and caps.invoke_with is not None:
        given = "function" if op.invoke.function is not None else "command"
        if given != caps.invoke_with:
            problems.append(
                (
                    (*op_path, given),
                    f"invoke takes a {caps.invoke_with}, not a {given}: {target}",
                )
            )
    # Where a job starts when it is created, `confirmation: manual` still works: the planner
    # holds the create until a person confirms (reconcile.plan). Staging cannot: it means a
    # job created early that waits, and there is nothing to wait in.
    if not caps.confirmation and spec.dependency_policy == "stage":
        problems.append(
            (
                ("spec", "dependencyPolicy"),
                f"stage is not supported: {target}, which has no confirmation to stage a job "
                "behind; use wait",
            )
        )
    if spec.report and not caps.reports:
        problems.append(
            (
                ("spec", "report"),
                f"completion reports are not written: {target}; `batchctl report` shows the "
                "job's error summaries instead",
            )
        )
    elif spec.report and spec.report.prefix:
        size = len(spec.report.prefix.encode())
        if size > caps.report_prefix_max_bytes:
            problems.append(
                (
                    ("spec", "report", "prefix"),
                    f"must be at most {caps.report_prefix_max_bytes} bytes (is {size}): {target}",
                )
            )
    return problems


def _prefix_only(generate: GenerateManifest, target: str) -> list[tuple[Path, str]]:
    # GCS selects objects by prefixes only (PrefixList): no filters, no versions, no copy of
    # the listing; the service lists live objects when the job runs.
    problems: list[tuple[Path, str]] = []
    path: Path = ("spec", "manifest", "generate")
    if generate.filters.model_fields_set:
        problems.append(((*path, "filters"), f"filters are not supported: {target}"))
    if generate.versions != "current":
        problems.append(((*path, "versions"), f"only current versions: {target}"))
    if generate.save_to is not None:
        problems.append(((*path, "saveTo"), f"saveTo is not supported: {target}"))
    return problems
