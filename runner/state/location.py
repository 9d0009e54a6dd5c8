"""Where the reconcile state lives: the ledger and the lock, on disk or in a bucket.

The default is a folder beside the jobs folder (``.batchctl``: the SQLite ledger
and an flock). A team points every runner at one bucket instead, with
``--state s3://BUCKET/PREFIX`` or a ``state:`` block in ``batchctl.yaml``; then
the ledger is ``PREFIX/ledger.json`` and the lock ``PREFIX/lock.json`` (see
``s3ledger`` and ``lease``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import jobsdir
from runner.spec.loader import SpecSet
from runner.spec.models import StateConfig
from runner.state.errors import StateError
from runner.state.ledger import LedgerStore
from runner.state.ledger.sqlite import LEDGER_FILE, SqliteLedger
from runner.support.filelock import FileLock

if TYPE_CHECKING:  # the bucket modules bring botocore: imported when a bucket is used
    from runner.state.locks.lease import S3Lease

from runner.support.log import Log

__all__ = [
    "LocalState",
    "S3State",
    "State",
    "StateError",
    "StateLocation",
    "state_location",
    "target_locations",
]


@dataclass(frozen=True)
class LocalState:
    """A state folder: ``ledger.db`` and ``reconcile.lock``."""

    folder: Path

    def __str__(self) -> str:
        return str(self.folder)


@dataclass(frozen=True)
class S3State:
    """A state prefix in a bucket: ``ledger.json`` and ``lock.json``."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    lease_seconds: float = 120.0

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, name: str) -> str:
        """The key of ``name`` under the prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name


StateLocation = LocalState | S3State


def parse_location(text: str, base: Path, config: StateConfig | None = None) -> StateLocation:
    """``s3://bucket/prefix`` or a folder (relative to ``base``); S3 options from ``config``."""
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise StateError(f"{text!r} names no bucket: use s3://BUCKET/PREFIX")
        return S3State(
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint_url=config.endpoint_url if config else None,
            region=config.region if config else None,
            profile=config.profile if config else None,
            lease_seconds=float(config.lease_seconds) if config else 120.0,
        )
    path = Path(text)
    return LocalState(path if path.is_absolute() else base / path)


def state_location(folder: Path, option: str | None) -> StateLocation:
    """The state of the jobs folder ``folder``: ``--state``, else batchctl.yaml, else .batchctl.

    Raises SpecInvalid when batchctl.yaml is invalid.
    """
    root = folder.resolve().parent
    config = jobsdir.load_project(root).state
    if option:
        return parse_location(option, Path.cwd(), config)
    if config is not None:
        return parse_location(config.url, root, config)
    return LocalState(root / ".batchctl")


def target_locations(specs: SpecSet, root: Path) -> dict[str, StateLocation]:
    """The targets that keep their own state (a ``state:`` block), and where."""
    found: dict[str, StateLocation] = {}
    for name, loaded in sorted(specs.targets.items()):
        spec = loaded.target.spec
        config = spec.aws.state if spec.aws else spec.cos.state if spec.cos else None
        if config is not None:
            found[name] = parse_location(config.url, root, config)
    return found


def s3_client(location: S3State) -> Any:
    """A boto3 S3 client for the state bucket."""
    import boto3
    from botocore.config import Config

    from runner.state.ledger.bucket import READ_THREADS
    from runner.stores.s3 import addressing_style

    session = boto3.Session(profile_name=location.profile) if location.profile else boto3.Session()
    return session.client(
        "s3",
        endpoint_url=location.endpoint_url,
        region_name=location.region,
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            s3={"addressing_style": addressing_style(location.endpoint_url)},
            connect_timeout=10,
            read_timeout=60,
            # The ledger reads its shards READ_THREADS at a time; botocore's default pool
            # of 10 would open and discard connections (and warn) on every cold read.
            max_pool_connections=READ_THREADS + 4,
        ),
    )


class State:
    """The ledger and the lock of one state location."""

    def __init__(self, location: StateLocation, *, log: Log | None = None) -> None:
        self.location = location
        self.lock: FileLock | S3Lease
        if isinstance(location, S3State):
            self._client: Any = s3_client(location)
            from runner.state.locks.lease import S3Lease

            self.lock = S3Lease(
                self._client,
                location.bucket,
                location.key("lock.json"),
                seconds=location.lease_seconds,
                log=log,
            )
        else:
            self.lock = FileLock(location.folder / "reconcile.lock")

    def open_ledger(self, *, read_only: bool = False) -> LedgerStore:
        """The ledger (take the lock first to write it); ``read_only`` creates nothing."""
        if isinstance(self.location, S3State):
            from runner.state.ledger.bucket import S3Ledger

            return S3Ledger(self._client, self.location.bucket, self.location.key("ledger.json"))
        return SqliteLedger(self.location.folder / LEDGER_FILE, read_only=read_only)

    def has_ledger(self) -> bool:
        """Whether a folder holds a ledger file (a bucket's absence reads as empty)."""
        return not isinstance(self.location, LocalState) or (
            (self.location.folder / LEDGER_FILE).exists()
        )
