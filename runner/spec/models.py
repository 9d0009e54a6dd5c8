"""The resources users write in ``jobs.d/``: ``BatchJob`` and ``Target`` (``batchctl/v1``).

Models are frozen pydantic v2 models with camelCase aliases; unknown keys are
errors. A choice between alternatives ("exactly one of") is a model whose fields
are the alternatives plus a check that exactly one is given: that keeps error
paths readable (``spec.operation.tag.tags``) where a pydantic union would add
branch names to them. Field docstrings become the JSON Schema descriptions.

Limits come from the reference sheets (S3 Control and COS batch APIs). Limits
that differ per backend (which operations, storage classes, restore days …)
live in ``capabilities``; this module holds what is true everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_VERSION = "batchctl/v1"
MAX_PRIORITY = 2_147_483_647
DEFAULT_TARGET = "local"


class Model(BaseModel):
    """Base of every resource model: camelCase keys, unknown keys refused, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        coerce_numbers_to_str=True,
    )


class OneOf(Model):
    """A model whose fields are alternatives: exactly one must be given."""

    # Alternatives that take no parameters may be written as `untag:` (null).
    _empty_ok: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = [f.alias or n for n, f in cls.model_fields.items()]
        given = [k for k in data if k in names and data[k] is not None]
        if not given:
            # `untag:` (null) names an operation without parameters.
            given = [k for k in data if k in cls._empty_ok and data[k] is None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"exactly one of {', '.join(names)} is required ({found})")
        key = given[0]
        if data[key] is None:
            return {**data, key: {}}
        return data

    @property
    def choice(self) -> str:
        """The alias of the alternative that was given."""
        for name, field in type(self).model_fields.items():
            if getattr(self, name) is not None:
                return field.alias or name
        raise AssertionError("validated OneOf without a choice")

    @property
    def value(self) -> Any:
        """The parameters of the alternative that was given."""
        for name in type(self).model_fields:
            found = getattr(self, name)
            if found is not None:
                return found
        raise AssertionError("validated OneOf without a choice")


def _one_of_schema(schema: dict[str, Any]) -> None:
    schema["minProperties"] = 1
    schema["maxProperties"] = 1


# ---------------------------------------------------------------------------
# Scalar types with human error messages


def _matcher(pattern: str, message: str) -> Any:
    rx = re.compile(pattern)

    def check(value: str) -> str:
        if not rx.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


_DNS = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DnsLabel = Annotated[
    str,
    _matcher(
        _DNS,
        "must be a DNS label: lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters",
    ),
    Field(json_schema_extra={"pattern": f"^{_DNS}$", "maxLength": 63}),
]

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
BucketName = Annotated[
    str,
    _matcher(
        _BUCKET,
        "must be a bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
        "starting and ending with a letter or digit",
    ),
    Field(json_schema_extra={"pattern": f"^{_BUCKET}$"}),
]

ObjectKey = Annotated[str, Field(min_length=1, max_length=1024)]
KeyPrefix = Annotated[str, Field(min_length=1, max_length=512)]

_REGION = r"[a-z]{2}(-[a-z0-9]+)+"
Region = Annotated[
    str,
    _matcher(_REGION, "must be a region name such as us-east-1 or ap-guangzhou"),
    Field(json_schema_extra={"pattern": f"^{_REGION}$"}),
]

_URL = r"https?://[^\s/?#]+(:[0-9]+)?(/[^\s]*)?"
EndpointUrl = Annotated[
    str,
    _matcher(_URL, "must be an http:// or https:// URL"),
    Field(json_schema_extra={"pattern": f"^{_URL}$"}),
]

# Integers are integers: `true`, "10" and 10.0 are refused rather than read as 1 and 10.
Priority = Annotated[int, Field(ge=0, le=MAX_PRIORITY, strict=True)]

StorageClass = Literal[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "ARCHIVE",
]
ARCHIVE_CLASSES: frozenset[str] = frozenset({"GLACIER", "DEEP_ARCHIVE", "ARCHIVE"})

ChecksumAlgorithm = Literal["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "SHA512", "MD5"]

CannedAcl = Literal[
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
]

MAX_OBJECT_TAGS = 10
_TAG_PUNCTUATION = set("_.:/=+-@ ")


def _tag_text_ok(text: str) -> bool:
    # S3's tag pattern: Unicode letters, separators and numbers, plus _.:/=+-@
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_OBJECT_TAGS:
        raise ValueError(f"at most {MAX_OBJECT_TAGS} tags per object (got {len(tags)})")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            raise ValueError(f"tag key {key!r} must be 1 to 128 characters")
        if len(value) > 256:
            raise ValueError(f"tag value of {key!r} must be at most 256 characters")
        for text in (key, value):
            if not _tag_text_ok(text):
                raise ValueError(
                    f"tag {key!r}: only letters, digits, spaces and _ . : / = + - @ are allowed"
                )
    return tags


Tags = Annotated[dict[str, str], AfterValidator(_check_tags)]


def _utc(value: datetime) -> datetime:
    # A time without a zone is read as UTC so that a campaign means the same on every runner.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]

LAST_RUN = "lastRun"
CREATED_AFTER_TAGS = frozenset({"time", LAST_RUN})


def _any_of(schema: dict[str, Any]) -> None:
    # "lastRun" is a string as a date-time is: oneOf would refuse it in editors that do
    # not check formats.
    for option in schema.get("anyOf", []):
        if "oneOf" in option:
            option["anyOf"] = option.pop("oneOf")


# A time, or `lastRun`: tagged so that a bad value gets the date-time message only.
CreatedAfter = Annotated[
    Annotated[Timestamp, Tag("time")] | Annotated[Literal["lastRun"], Tag(LAST_RUN)],
    Discriminator(lambda value: LAST_RUN if value == LAST_RUN else "time"),
]


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            "must be a cron expression of 5 fields: minute hour day-of-month month day-of-week"
        )
    if not croniter.is_valid(" ".join(fields)):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return " ".join(fields)


CronExpression = Annotated[
    str, AfterValidator(_cron), Field(json_schema_extra={"examples": ["0 3 * * *"]})
]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name such as Europe/Berlin") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone)]


# ---------------------------------------------------------------------------
# Manifests


CsvField = Literal["Bucket", "Key", "VersionId"]
_DEFAULT_FIELDS: tuple[CsvField, ...] = ("Bucket", "Key")


class CsvManifest(Model):
    """An existing CSV manifest: one `bucket,key[,versionId]` per line, keys URL-encoded."""

    bucket: BucketName
    """Bucket holding the manifest."""
    key: ObjectKey
    """Key of the manifest object."""
    etag: str | None = None
    """ETag the manifest must have; the job fails if the object changed. Pinned when omitted."""
    version_id: str | None = Field(default=None, min_length=1, max_length=1024)
    """Version of the manifest object to read."""
    fields: list[CsvField] = Field(default_factory=lambda: list(_DEFAULT_FIELDS))
    """Column order: [Bucket, Key] or [Bucket, Key, VersionId]."""

    @field_validator("fields")
    @classmethod
    def _fields_form(cls, value: list[str]) -> list[str]:
        if value not in (["Bucket", "Key"], ["Bucket", "Key", "VersionId"]):
            raise ValueError("must be [Bucket, Key] or [Bucket, Key, VersionId]")
        return value


class InventoryManifest(Model):
    """An inventory report: the manifest.json of an S3/COS inventory."""

    bucket: BucketName
    """Bucket holding the inventory report."""
    key: ObjectKey
    """Key of the inventory's manifest.json."""
    etag: str | None = None
    """ETag the manifest.json must have."""

    @field_validator("key")
    @classmethod
    def _manifest_json(cls, value: str) -> str:
        if not value.endswith("manifest.json"):
            raise ValueError("must be the key of the inventory's manifest.json")
        return value


class GenerateFilters(Model):
    """Which listed objects go into a generated manifest (all must hold)."""

    created_after: CreatedAfter | None = Field(default=None, json_schema_extra=_any_of)
    """Only objects last modified after this time (UTC unless a zone is given); `lastRun`
    on a scheduled job: after the previous run was created (nothing on the first run)."""
    created_before: Timestamp | None = None
    """Only objects last modified before this time."""
    key_matches: str | None = Field(default=None, min_length=1, max_length=1024)
    """Only keys matching this glob (`*` within a path segment, `**` across segments)."""
    min_size: int | None = Field(default=None, ge=0, strict=True)
    """Only objects of at least this many bytes."""
    max_size: int | None = Field(default=None, ge=0, strict=True)
    """Only objects of at most this many bytes."""
    storage_classes: list[StorageClass] | None = Field(default=None, min_length=1)
    """Only objects in one of these storage classes."""

    @model_validator(mode="after")
    def _ranges(self) -> GenerateFilters:
        after = self.created_after
        if isinstance(after, datetime) and self.created_before and after >= self.created_before:
            raise ValueError("createdAfter must be earlier than createdBefore")
        if (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size > self.max_size
        ):
            raise ValueError("minSize must not be larger than maxSize")
        return self


class ManifestOutput(Model):
    """Where a generated manifest is saved."""

    bucket: BucketName
    """Bucket for the generated manifest."""
    prefix: KeyPrefix | None = None
    """Key prefix for the generated manifest."""


class GenerateManifest(Model):
    """A manifest generated by listing a bucket when the job is prepared."""

    bucket: BucketName
    """Bucket to list."""
    prefix: KeyPrefix | None = None
    """Only keys under this prefix."""
    filters: GenerateFilters = Field(default_factory=GenerateFilters)
    """Filters on the listed objects."""
    versions: Literal["current", "all"] = "current"
    """List only current versions, or every version."""
    save_to: ManifestOutput | None = None
    """Save the generated manifest here (for audit and re-runs)."""


def _relative_path(value: str) -> str:
    if not value or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError("must be a path relative to the spec file")
    if "\0" in value:
        raise ValueError("must not contain NUL")
    return value


class Manifest(OneOf):
    """The objects the job acts on: exactly one of csv, inventory, generate, file."""

    model_config = ConfigDict(json_schema_extra=_one_of_schema)

    csv: CsvManifest | None = None
    """An existing CSV manifest in a bucket."""
    inventory: InventoryManifest | None = None
    """An inventory report's manifest.json."""
    generate: GenerateManifest | None = None
    """List a bucket at prepare time."""
    file: Annotated[str, AfterValidator(_relative_path)] | None = None
    """A CSV manifest kept in the repository, relative to the spec file; uploaded and pinned."""


# ---------------------------------------------------------------------------
# Operations


class ObjectMetadata(Model):
    """System and user metadata written on copied objects (metadataDirective: REPLACE)."""

    cache_control: str | None = None
    """Cache-Control header."""
    content_disposition: str | None = None
    """Content-Disposition header."""
    content_encoding: str | None = None
    """Content-Encoding header."""
    content_language: str | None = None
    """Content-Language header."""
    content_type: str | None = None
    """Content-Type header."""
    expires: Timestamp | None = None
    """Expires header."""
    user: dict[str, str] = Field(default_factory=dict)
    """User metadata (x-amz-meta-* / x-cos-meta-*)."""

    @field_validator("user")
    @classmethod
    def _user_size(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > 2048:
            raise ValueError(f"user metadata must fit 2 KB (is {size} bytes)")
        return value


GrantPermission = Literal["READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"]


class CopyGrant(Model):
    """One grant of the copies' ACL."""

    permission: GrantPermission
    """READ, READ_ACP, WRITE_ACP or FULL_CONTROL (S3); READ, WRITE or FULL_CONTROL (COS)."""
    id: str = Field(min_length=1, max_length=1024)
    """The grantee: a canonical user ID (S3), or qcs::cam::uin/UIN:uin/UIN (COS)."""


class CopyOperation(Model):
    """Copy each object into another bucket (or the same one under a prefix)."""

    bucket: BucketName
    """Destination bucket."""
    prefix: KeyPrefix | None = None
    """Prefix put before each destination key."""
    strip_prefix: KeyPrefix | None = None
    """Prefix taken off each source key first (with `prefix`: a replacement); local and cos."""
    storage_class: StorageClass | None = None
    """Storage class of the copies (the source's when omitted)."""
    metadata_directive: Literal["COPY", "REPLACE"] = "COPY"
    """COPY keeps the source's metadata; REPLACE writes `metadata`."""
    metadata: ObjectMetadata | None = None
    """Metadata for the copies (with metadataDirective: REPLACE)."""
    tagging_directive: Literal["COPY", "REPLACE"] = "COPY"
    """COPY keeps the source's tags; REPLACE writes `tags` (none when empty)."""
    tags: Tags | None = None
    """Tags for the copies (with taggingDirective: REPLACE)."""
    canned_acl: CannedAcl | None = None
    """Canned ACL of the copies."""
    grants: list[CopyGrant] | None = Field(default=None, min_length=1, max_length=100)
    """An ACL of explicit grants for the copies, instead of a canned one."""
    checksum_algorithm: ChecksumAlgorithm | None = None
    """Checksum the service computes and stores on the copies."""
    encryption: Literal["AES256"] | None = None
    """Server-side encryption of the copies with keys the service manages (SSE-S3, SSE-COS)."""
    modified_since: Timestamp | None = None
    """Copy only objects modified after this time; the others fail with 412."""
    unmodified_since: Timestamp | None = None
    """Copy only objects not modified after this time; the others fail with 412."""

    @model_validator(mode="after")
    def _directives(self) -> CopyOperation:
        if self.metadata is not None and self.metadata_directive != "REPLACE":
            raise ValueError("metadata is only written with metadataDirective: REPLACE")
        if self.tags is not None and self.tagging_directive != "REPLACE":
            raise ValueError("tags are only written with taggingDirective: REPLACE")
        if (
            self.modified_since
            and self.unmodified_since
            and self.modified_since >= self.unmodified_since
        ):
            raise ValueError("modifiedSince must be earlier than unmodifiedSince")
        if self.grants and self.canned_acl:
            raise ValueError("give cannedAcl or grants, not both (each replaces the ACL)")
        return self


class TagOperation(Model):
    """Replace each object's tag set."""

    tags: Annotated[Tags, Field(min_length=1)]
    """The tags (at most 10; key ≤ 128, value ≤ 256 characters)."""


class EmptyOperation(Model):
    """An operation without parameters."""


class AclOperation(Model):
    """Set each object's ACL."""

    canned: CannedAcl
    """The canned ACL."""


class RestoreOperation(Model):
    """Restore archived objects for a number of days."""

    days: int = Field(ge=1, le=36500, strict=True)
    """Days the restored copy stays readable."""
    tier: Literal["BULK", "STANDARD"] = "BULK"
    """Retrieval tier."""


class RetentionOperation(Model):
    """Put object-lock retention on each object."""

    mode: Literal["COMPLIANCE", "GOVERNANCE"]
    """Retention mode."""
    until: Timestamp
    """Retain until this time."""
    bypass_governance: bool = False
    """Allow shortening GOVERNANCE retention."""


class LegalHoldOperation(Model):
    """Put or lift a legal hold on each object."""

    status: Literal["ON", "OFF"]
    """ON holds the object; OFF releases it."""


class ChecksumOperation(Model):
    """Compute a checksum of each object; the value appears in the completion report."""

    algorithm: ChecksumAlgorithm
    """Checksum algorithm."""


class InvokeOperation(Model):
    """Run code for each object: a Lambda function (AWS) or a local command (local)."""

    model_config = ConfigDict(json_schema_extra=_one_of_schema)

    function: str | None = Field(default=None, min_length=1, max_length=1024)
    """Lambda function ARN or name (AWS)."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Command run per object with bucket, key and version appended (local engine)."""

    @model_validator(mode="after")
    def _one(self) -> InvokeOperation:
        if (self.function is None) == (self.command is None):
            raise ValueError("exactly one of function, command is required")
        return self


class Operation(OneOf):
    """What the job does to each object: exactly one operation."""

    model_config = ConfigDict(json_schema_extra=_one_of_schema)
    _empty_ok: ClassVar[frozenset[str]] = frozenset({"untag", "delete"})

    # `copy` would shadow BaseModel.copy; the YAML key is still `copy`.
    copy_: CopyOperation | None = Field(default=None, alias="copy")
    """Copy objects."""
    tag: TagOperation | None = None
    """Replace object tags."""
    untag: EmptyOperation | None = None
    """Delete object tags."""
    acl: AclOperation | None = None
    """Set object ACLs."""
    restore: RestoreOperation | None = None
    """Restore archived objects."""
    retention: RetentionOperation | None = None
    """Set object-lock retention."""
    legal_hold: LegalHoldOperation | None = None
    """Set object-lock legal hold."""
    delete: EmptyOperation | None = None
    """Delete objects."""
    checksum: ChecksumOperation | None = None
    """Compute checksums."""
    invoke: InvokeOperation | None = None
    """Invoke a function or command per object."""


# ---------------------------------------------------------------------------
# BatchJob


def _report_prefix(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or "\x00" in value or ".." in parts or "." in parts:
        raise ValueError(
            "must be a plain key prefix: no leading /, no . or .. segment, no backslash "
            "(reports are written below it on every target, the embedded store included)"
        )
    return value


class Report(Model):
    """Where the completion report is written."""

    bucket: BucketName
    """Bucket for the report."""
    prefix: Annotated[KeyPrefix, AfterValidator(_report_prefix)] | None = None
    """Key prefix of the report (job-<id>/… goes below it)."""
    scope: Literal["all", "failed"] = "all"
    """Report every task, or failed tasks only."""


class Dependency(Model):
    """A job that must reach a condition before this one is created or confirmed."""

    job: DnsLabel
    """Name of the job depended on."""
    target: DnsLabel | None = None
    """Target of that job (this job's target when omitted)."""
    condition: Literal["complete", "succeeded"] = "succeeded"
    """complete: the job is Complete; succeeded: Complete with no more failed tasks than
    its tolerateFailedTasks (0 unless set)."""


class JobMetadata(Model):
    """Identity and grouping of a job."""

    name: DnsLabel
    """The job's identity, unique per target (a DNS label)."""
    campaign: DnsLabel | None = None
    """Grouping for status and reports."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels."""


_TOLERANCE_RE = re.compile(r"^(\d{1,3}(\.\d{1,4})?)%$")


def _tolerance(value: object) -> int | str:
    """A count of failed tasks (0 or more) or a share of the tasks, ``"0.5%"``."""
    if isinstance(value, bool):
        raise ValueError('must be a count such as 3 or a percentage such as "0.5%"')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be 0 or more")
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    found = _TOLERANCE_RE.match(text)
    if found is None or float(found.group(1)) > 100:
        raise ValueError(
            f'{text!r} is neither a count (3) nor a percentage from 0% to 100% ("0.5%")'
        )
    return text


FailureTolerance = Annotated[Annotated[int, Strict()] | str, AfterValidator(_tolerance)]


def failures_tolerated(tolerance: int | str, *, failed: int, total: int) -> bool:
    """Whether ``failed`` of ``total`` tasks is within ``tolerateFailedTasks``."""
    if isinstance(tolerance, int):
        return failed <= tolerance
    share = float(tolerance.rstrip("%"))
    return failed * 100 <= share * total


class JobSpec(Model):
    """The desired job."""

    target: DnsLabel = DEFAULT_TARGET
    """Name of a Target resource; `local` (the embedded engine) needs no declaration."""
    description: str = ""
    """Free text; batchctl appends its identity marker, and both must fit 256 bytes."""
    priority: Priority = 10
    """Higher runs first (0 to 2147483647); priority never guarantees order."""
    confirmation: Literal["auto", "manual"] = "auto"
    """manual: the job waits in Suspended until a person confirms it."""
    depends_on: list[Dependency] = Field(default_factory=list)
    """Jobs that must reach a condition first; batchctl sequences them."""
    dependency_policy: Literal["create-after", "stage"] = "create-after"
    """create-after: create once dependencies hold; stage: create early suspended, confirm later."""
    manifest: Manifest
    """The objects to act on."""
    operation: Operation
    """What to do to each object."""
    report: Report | None = None
    """Completion report; omitted means no report."""
    on_change: Literal["recreate", "ignore", "error"] = "recreate"
    """What to do when immutable fields (manifest, operation, report) change."""
    tolerate_failed_tasks: FailureTolerance = 0
    """Failed tasks a Complete job may have and still count as succeeded: a count (3) or a
    share of its tasks ("0.5%"); beyond it the job needs attention (exit 4)."""
    state: Literal["present", "cancelled"] = "present"
    """cancelled: cancel the job if it exists and never create it."""
    schedule: CronExpression | None = None
    """Cron schedule (5 fields): a new generation each time a run is due and the last is final."""
    timezone: TimeZoneName | None = None
    """Time zone the schedule is read in (UTC when omitted), e.g. Europe/Berlin."""

    @model_validator(mode="after")
    def _schedule_fields(self) -> JobSpec:
        if self.timezone and not self.schedule:
            raise ValueError("timezone is only meaningful with a schedule")
        generate = self.manifest.generate
        if generate and generate.filters.created_after == LAST_RUN and not self.schedule:
            raise ValueError("createdAfter: lastRun needs a schedule (a run before this one)")
        return self


class BatchJob(Model):
    """A batch operation job, reconciled by batchctl."""

    model_config = ConfigDict(title="BatchJob")

    api_version: Literal["batchctl/v1"]
    """Always batchctl/v1."""
    kind: Literal["BatchJob"]
    """Always BatchJob."""
    metadata: JobMetadata
    """Name, campaign and labels."""
    spec: JobSpec
    """What the job does, where, and when."""


# ---------------------------------------------------------------------------
# Target


class S3StoreConfig(Model):
    """An S3-compatible endpoint used as the engine's object store."""

    endpoint_url: EndpointUrl
    """The S3 endpoint, e.g. http://127.0.0.1:8333."""
    region: Region = "us-east-1"
    """Region to sign requests for."""
    profile: str | None = None
    """AWS profile with the credentials (else the standard chain)."""


class S3Store(Model):
    """An S3 object store."""

    s3: S3StoreConfig
    """The endpoint."""


_DIR_URL = r"dir://.+"
DirStoreUrl = Annotated[
    str,
    _matcher(_DIR_URL, "must be dir://PATH or an s3 block"),
    Field(json_schema_extra={"pattern": f"^{_DIR_URL}$"}),
]


def _store_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "dir"
    if isinstance(value, dict | S3Store):
        return "s3"
    return None


Store = Annotated[
    Annotated[DirStoreUrl, Tag("dir")] | Annotated[S3Store, Tag("s3")],
    Discriminator(
        _store_kind,
        custom_error_type="store_kind",
        custom_error_message="must be dir://PATH or an s3 block",
    ),
]
STORE_TAGS = frozenset({"dir", "s3"})


class LocalTarget(Model):
    """The embedded engine on this machine."""

    state_dir: str = ".batchctl"
    """Engine state and ledger, relative to the folder holding the jobs folder."""
    store: Store = "dir://.batchctl/objects"
    """Object store: dir://PATH (relative to the project) or an s3 block."""
    slots: int = Field(default=1, ge=1, le=64, strict=True)
    """Jobs that may be Active at once."""
    workers: int = Field(default=16, ge=1, le=1024, strict=True)
    """Task threads per Active job."""


_ACCOUNT = r"[0-9]{12}"
_ROLE_ARN = r"arn:[^:]+:iam::[0-9]{12}:role/.+"


_STATE_URL = r"(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|[^:]+)"
StateUrl = Annotated[
    str,
    _matcher(_STATE_URL, "must be s3://BUCKET/PREFIX or a folder path"),
    Field(json_schema_extra={"pattern": f"^{_STATE_URL}$"}),
]


class StateConfig(Model):
    """Where the ledger and the reconcile lock live."""

    url: StateUrl
    """s3://BUCKET/PREFIX (shared by a team) or a folder (relative to the project)."""
    endpoint_url: EndpointUrl | None = None
    """S3 endpoint instead of AWS's (or AWS_ENDPOINT_URL_S3 from the environment)."""
    region: Region | None = None
    """Region of the state bucket (else the environment's)."""
    profile: str | None = None
    """AWS profile with the credentials (else boto3's standard chain)."""
    lease_seconds: int = Field(default=120, ge=15, le=3600, strict=True)
    """How long the lock lasts unless renewed; a reconcile renews it while it runs."""


class AwsTarget(Model):
    """AWS S3 Batch Operations in one account and region."""

    account_id: (
        Annotated[
            str,
            _matcher(_ACCOUNT, "must be a 12-digit AWS account ID (quote it in YAML)"),
            Field(json_schema_extra={"pattern": f"^{_ACCOUNT}$"}),
        ]
        | None
    ) = None
    """AWS account ID (from STS GetCallerIdentity when omitted)."""
    region: Region
    """Region the jobs run in (the destination region for copies)."""
    role_arn: Annotated[
        str,
        _matcher(_ROLE_ARN, "must be an IAM role ARN: arn:aws:iam::ACCOUNT:role/NAME"),
        Field(json_schema_extra={"pattern": f"^{_ROLE_ARN}$"}, max_length=2048),
    ]
    """IAM role S3 Batch Operations assumes to run the tasks."""
    endpoint_url: EndpointUrl | None = None
    """An S3-Control-compatible endpoint instead of AWS's."""
    profile: str | None = None
    """AWS profile with the credentials (else boto3's standard chain)."""
    staging_bucket: BucketName | None = None
    """Bucket that receives manifests kept in the repository (manifest.file)."""
    s3_endpoint_url: EndpointUrl | None = None
    """S3 endpoint for the staging bucket instead of AWS's (with an endpointUrl of our own)."""
    state: StateConfig | None = None
    """Keep the ledger and lock of this target's jobs here instead of in the project's state."""


_COS_ROLE = r"qcs::cam::uin/[0-9]+:roleName/.+"


class CosTarget(Model):
    """Tencent COS Batch Operation in one account and region."""

    uin: Annotated[
        str,
        _matcher(r"[0-9]{5,20}", "must be the account UIN: digits only (quote it in YAML)"),
        Field(json_schema_extra={"pattern": "^[0-9]{5,20}$"}),
    ]
    """Root or authorised account UIN (goes in the host name)."""
    app_id: Annotated[
        str,
        _matcher(r"[0-9]{1,64}", "must be the APPID: digits only (quote it in YAML)"),
        Field(json_schema_extra={"pattern": "^[0-9]{1,64}$"}),
    ]
    """APPID (sent as x-cos-appid)."""
    region: Region
    """COS region, e.g. ap-guangzhou."""
    role_arn: (
        Annotated[
            str,
            _matcher(_COS_ROLE, "must be a CAM role: qcs::cam::uin/UIN:roleName/NAME"),
            Field(json_schema_extra={"pattern": f"^{_COS_ROLE}$"}, max_length=1024),
        ]
        | None
    ) = None
    """CAM role COS assumes (qcs::cam::uin/UIN:roleName/COS_Batch_QcsRole when omitted)."""
    endpoint: EndpointUrl | None = None
    """Endpoint instead of https://UIN.cos-control.REGION.myqcloud.com."""
    staging_bucket: BucketName | None = None
    """Bucket (name-APPID) that receives repository and generated manifests."""
    s3_endpoint_url: EndpointUrl | None = None
    """COS's S3-compatible endpoint (manifests, reports) instead of https://cos.REGION.myqcloud.com."""
    state: StateConfig | None = None
    """Keep the ledger and lock of this target's jobs here instead of in the project's state."""


class TargetSpec(OneOf):
    """Where jobs run: exactly one of local, aws, cos."""

    model_config = ConfigDict(json_schema_extra=_one_of_schema)

    local: LocalTarget | None = None
    """The embedded engine."""
    aws: AwsTarget | None = None
    """AWS S3 Batch Operations."""
    cos: CosTarget | None = None
    """Tencent COS Batch Operation."""


class TargetMetadata(Model):
    """Identity of a target."""

    name: DnsLabel
    """The name jobs refer to in spec.target."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels."""


class Target(Model):
    """Where jobs run: the embedded engine, AWS or COS."""

    model_config = ConfigDict(title="Target")

    api_version: Literal["batchctl/v1"]
    """Always batchctl/v1."""
    kind: Literal["Target"]
    """Always Target."""
    metadata: TargetMetadata
    """The target's name."""
    spec: TargetSpec
    """Exactly one of local, aws, cos."""


DEFAULT_LOCAL_TARGET = Target(
    api_version=API_VERSION,
    kind="Target",
    metadata=TargetMetadata(name=DEFAULT_TARGET),
    spec=TargetSpec(local=LocalTarget()),
)

KINDS: dict[str, type[BatchJob] | type[Target]] = {"BatchJob": BatchJob, "Target": Target}
