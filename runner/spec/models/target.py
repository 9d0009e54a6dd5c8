"""The Target resource: the embedded engine (dir or S3 store), AWS or COS."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from runner.spec.models.base import API_VERSION, DEFAULT_TARGET, Model, OneOf, one_of_schema
from runner.spec.models.job import BatchJob
from runner.spec.models.scalars import BucketName, DnsLabel, EndpointUrl, Region, matcher


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
    matcher(_DIR_URL, "must be dir://PATH or an s3 block"),
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


class ThreadsExecutor(Model):
    """Tasks on threads of the engine's own process (`workers` of them per Active job)."""


class ProcessesExecutor(Model):
    """Tasks in batches on a pool of processes on this machine, for more than one core."""

    count: int = Field(default=2, ge=1, le=256, strict=True)
    """Processes in the pool."""
    batch: int = Field(default=500, ge=1, le=50_000, strict=True)
    """Tasks sent to a process at once."""


_SCHEDULER = r"(tcp|tls|inproc)://[^\s/]+"


class DaskExecutor(Model):
    """Tasks in batches on a Dask distributed cluster (`pip install 'batchctl[dask]'`).

    The engine stays the coordinator: job state, priorities and results stay in its
    SQLite here; workers build their store clients from their own environment.
    """

    scheduler: Annotated[
        str,
        matcher(_SCHEDULER, "must be a Dask scheduler address such as tcp://10.0.0.5:8786"),
        Field(json_schema_extra={"pattern": f"^{_SCHEDULER}$"}),
    ]
    """The scheduler's address, e.g. tcp://10.0.0.5:8786."""
    batch: int = Field(default=1000, ge=1, le=50_000, strict=True)
    """Tasks sent to a worker at once (scheduling cost per task falls as batches grow)."""
    retries: int = Field(default=3, ge=0, le=20, strict=True)
    """Times a batch whose worker died is run again elsewhere before its tasks fail."""


class Executor(OneOf):
    """Who runs an Active job's tasks: exactly one of threads, processes, dask."""

    model_config = ConfigDict(json_schema_extra=one_of_schema)
    _empty_ok: ClassVar[frozenset[str]] = frozenset({"threads"})

    threads: ThreadsExecutor | None = None
    """Threads of the engine's process (the default)."""
    processes: ProcessesExecutor | None = None
    """A pool of processes on this machine."""
    dask: DaskExecutor | None = None
    """A Dask distributed cluster."""


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
    executor: Executor = Field(default_factory=lambda: Executor(threads=ThreadsExecutor()))
    """Who runs the tasks: {threads: {}} (default), {processes: {count: N}} or
    {dask: {scheduler: tcp://HOST:8786}}."""


_ACCOUNT = r"[0-9]{12}"
_ROLE_ARN = r"arn:[^:]+:iam::[0-9]{12}:role/.+"


_STATE_URL = r"(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|[^:]+)"
StateUrl = Annotated[
    str,
    matcher(_STATE_URL, "must be s3://BUCKET/PREFIX or a folder path"),
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
            matcher(_ACCOUNT, "must be a 12-digit AWS account ID (quote it in YAML)"),
            Field(json_schema_extra={"pattern": f"^{_ACCOUNT}$"}),
        ]
        | None
    ) = None
    """AWS account ID (from STS GetCallerIdentity when omitted)."""
    region: Region
    """Region the jobs run in (the destination region for copies)."""
    role_arn: Annotated[
        str,
        matcher(_ROLE_ARN, "must be an IAM role ARN: arn:aws:iam::ACCOUNT:role/NAME"),
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
        matcher(r"[0-9]{5,20}", "must be the account UIN: digits only (quote it in YAML)"),
        Field(json_schema_extra={"pattern": "^[0-9]{5,20}$"}),
    ]
    """Root or authorised account UIN (goes in the host name)."""
    app_id: Annotated[
        str,
        matcher(r"[0-9]{1,64}", "must be the APPID: digits only (quote it in YAML)"),
        Field(json_schema_extra={"pattern": "^[0-9]{1,64}$"}),
    ]
    """APPID (sent as x-cos-appid)."""
    region: Region
    """COS region, e.g. ap-guangzhou."""
    role_arn: (
        Annotated[
            str,
            matcher(_COS_ROLE, "must be a CAM role: qcs::cam::uin/UIN:roleName/NAME"),
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


_GCP_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"


class GcsTarget(Model):
    """Google Cloud Storage batch operations in one project and location.

    Credentials: Application Default Credentials, or an access token in
    GOOGLE_OAUTH_ACCESS_TOKEN; never in a spec.
    """

    project: Annotated[
        str,
        matcher(
            _GCP_PROJECT,
            "must be a Google Cloud project ID (6-30 lowercase letters, "
            "digits and hyphens, starting with a letter)",
        ),
        Field(json_schema_extra={"pattern": f"^{_GCP_PROJECT}$"}),
    ]
    """Project ID the jobs belong to."""
    location: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")] = "global"
    """Location of the jobs (the service runs jobs in `global`)."""
    endpoint: EndpointUrl | None = None
    """Endpoint instead of https://storagebatchoperations.googleapis.com."""
    dry_run: bool = False
    """Create jobs as dry runs: the service lists and counts, and changes no object."""
    state: StateConfig | None = None
    """Keep the ledger and lock of this target's jobs here instead of in the project's state."""


class TargetSpec(OneOf):
    """Where jobs run: exactly one of local, aws, cos, gcs."""

    model_config = ConfigDict(json_schema_extra=one_of_schema)

    local: LocalTarget | None = None
    """The embedded engine."""
    aws: AwsTarget | None = None
    """AWS S3 Batch Operations."""
    cos: CosTarget | None = None
    """Tencent COS Batch Operation."""
    gcs: GcsTarget | None = None
    """Google Cloud Storage batch operations."""


class TargetMetadata(Model):
    """Identity of a target."""

    name: DnsLabel
    """The name jobs refer to in spec.target."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels."""


class Target(Model):
    """Where jobs run: the embedded engine, AWS, COS or GCS."""

    model_config = ConfigDict(title="Target")

    api_version: Literal["batchctl/v1"]
    """Always batchctl/v1."""
    kind: Literal["Target"]
    """Always Target."""
    metadata: TargetMetadata
    """The target's name."""
    spec: TargetSpec
    """Exactly one of local, aws, cos, gcs."""


DEFAULT_LOCAL_TARGET = Target(
    api_version=API_VERSION,
    kind="Target",
    metadata=TargetMetadata(name=DEFAULT_TARGET),
    spec=TargetSpec(local=LocalTarget()),
)

KINDS: dict[str, type[BatchJob] | type[Target]] = {"BatchJob": BatchJob, "Target": Target}
