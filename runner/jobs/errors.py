"""Typed errors of the job API, named for what the caller should do.

::

    JobServiceError          base; ``retryable`` says whether trying again can help
    ├── NotFound             no such job (or it expired 90 days after it ended)
    ├── JobStatusError       the job's status does not allow the request
    ├── IdempotencyError     the token was used before for a different request
    ├── BadRequest           the request is invalid; fix it, do not retry
    ├── TooManyRequests      throttled or busy; retry after ``delay`` seconds
    └── ServiceUnavailable   the service failed; retry with backoff
"""

from __future__ import annotations


class JobServiceError(Exception):
    """Base of the job API's errors."""

    retryable = False
    code = "JobServiceError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(JobServiceError):
    """No such job."""

    code = "NotFoundException"


class JobStatusError(JobServiceError):
    """The job's current status does not allow the requested change."""

    code = "JobStatusException"


class IdempotencyError(JobServiceError):
    """The ClientRequestToken was used before with a different request."""

    code = "IdempotencyException"


class BadRequest(JobServiceError):
    """The request is invalid."""

    code = "BadRequestException"


class TooManyRequests(JobServiceError):
    """Throttled or busy; try again, after ``delay`` seconds when the server said so."""

    retryable = True
    code = "TooManyRequestsException"

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class ServiceUnavailable(JobServiceError):
    """The service failed; try again with backoff."""

    retryable = True
    code = "InternalServiceException"
