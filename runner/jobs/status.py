"""The 13 job statuses of the seed and both reference sheets, and their groups."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's status, spelled as the services spell it."""

    NEW = "New"
    PREPARING = "Preparing"
    SUSPENDED = "Suspended"
    READY = "Ready"
    ACTIVE = "Active"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    COMPLETING = "Completing"
    COMPLETE = "Complete"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    FAILING = "Failing"
    FAILED = "Failed"

    @property
    def final(self) -> bool:
        """Complete, Cancelled and Failed never change again."""
        return self in FINAL


FINAL = frozenset({JobStatus.COMPLETE, JobStatus.CANCELLED, JobStatus.FAILED})
# Statuses from which a cancel request is accepted. Completing and Failing are
# refused (the tasks are done; only the report remains), as S3 refuses them.
CANCELLABLE = frozenset(
    {
        JobStatus.NEW,
        JobStatus.PREPARING,
        JobStatus.SUSPENDED,
        JobStatus.READY,
        JobStatus.ACTIVE,
        JobStatus.PAUSING,
        JobStatus.PAUSED,
        JobStatus.CANCELLING,
    }
)

# JobStatus(value) goes through Enum's lookup machinery; reading 100,000 rows, it shows.
BY_VALUE: dict[str, JobStatus] = {status.value: status for status in JobStatus}
