"""Operations: what a job does to each object."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from runner.spec.models.base import Model, OneOf, one_of_schema
from runner.spec.models.scalars import (
    BucketName,
    CannedAcl,
    ChecksumAlgorithm,
    KeyPrefix,
    StorageClass,
    Tags,
    Timestamp,
)


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


class DeleteOperation(Model):
    """Delete each object."""

    permanent: bool = False
    """In a versioned bucket, delete the version itself instead of leaving it noncurrent
    behind a delete marker (GCS: permanentObjectDeletionEnabled)."""


class HoldOperation(Model):
    """Set or lift Cloud Storage object holds; a field left out is left as it is.

    Its own operation rather than a ``kind`` on legalHold: GCS sets its two holds
    independently in one job, while S3's legal hold is one ON/OFF flag of Object Lock;
    one job per hold kind, in words of the other service, would read worse.
    """

    temporary: bool | None = None
    """Set (true) or lift (false) the temporary hold."""
    event_based: bool | None = None
    """Set (true) or lift (false) the event-based hold."""

    @model_validator(mode="after")
    def _some(self) -> HoldOperation:
        if self.temporary is None and self.event_based is None:
            raise ValueError("give temporary, eventBased or both")
        return self


class ObjectRetentionSetting(Model):
    """A Cloud Storage object retention configuration."""

    mode: Literal["LOCKED", "UNLOCKED"]
    """LOCKED cannot be shortened or removed; UNLOCKED can, with permission."""
    until: Timestamp
    """Retain until this time."""


class MetadataOperation(Model):
    """Put metadata on each object in place, without rewriting its data."""

    cache_control: str | None = None
    """Cache-Control."""
    content_disposition: str | None = None
    """Content-Disposition."""
    content_encoding: str | None = None
    """Content-Encoding."""
    content_language: str | None = None
    """Content-Language."""
    content_type: str | None = None
    """Content-Type."""
    custom_time: Timestamp | None = None
    """Custom-Time (GCS)."""
    custom: dict[str, str] | None = None
    """Custom metadata: each key given is set, the others kept (x-amz-meta-* on S3 stores)."""
    retention: ObjectRetentionSetting | None = None
    """Object retention (GCS objectRetention)."""

    @model_validator(mode="after")
    def _some(self) -> MetadataOperation:
        if not self.model_fields_set:
            raise ValueError("give at least one field to put")
        return self


_KMS_KEY = r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+"


class RewriteOperation(Model):
    """Rewrite each object, encrypting it with a Cloud KMS key."""

    kms_key: Annotated[
        str,
        Field(
            pattern=f"^{_KMS_KEY}$",
            max_length=1024,
        ),
    ]
    """projects/P/locations/L/keyRings/R/cryptoKeys/K."""


class ChecksumOperation(Model):
    """Compute a checksum of each object; the value appears in the completion report."""

    algorithm: ChecksumAlgorithm
    """Checksum algorithm."""


class InvokeOperation(Model):
    """Run code for each object: a Lambda function (AWS) or a local command (local)."""

    model_config = ConfigDict(json_schema_extra=one_of_schema)

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

    model_config = ConfigDict(json_schema_extra=one_of_schema)
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
    delete: DeleteOperation | None = None
    """Delete objects."""
    hold: HoldOperation | None = None
    """Set or lift object holds (GCS)."""
    metadata: MetadataOperation | None = None
    """Put metadata in place."""
    rewrite: RewriteOperation | None = None
    """Rewrite objects with a KMS key (GCS)."""
    checksum: ChecksumOperation | None = None
    """Compute checksums."""
    invoke: InvokeOperation | None = None
    """Invoke a function or command per object."""
