"""Trying again: exponential backoff with jitter, a server's delay honoured, a deadline.

Every loop that retries a remote call goes through ``retry``: the fast S3 path, the
COS backend, the bucket ledger's lost races. An error says itself whether trying
again can help (``retryable``) and how long the server asked to wait (``delay``,
from Retry-After or a throttling answer); the wait is the larger of that and the
backoff, so a throttled caller never comes back sooner than it was told.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

MAX_SERVER_DELAY = 60.0  # a Retry-After beyond this is read as this


@dataclass(frozen=True)
class Backoff:
    """How often and how long to try: ``attempts`` in all, waits from ``base`` doubling
    up to ``cap`` (times a jitter of 0.5–1), never past ``deadline`` seconds overall."""

    attempts: int = 6
    base: float = 0.2
    cap: float = 8.0
    deadline: float | None = None

    def pause(self, retry: int, asked: float | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first retry)."""
        wait: float = min(self.cap, self.base * 2**retry) * random.uniform(0.5, 1.0)
        return max(wait, min(asked or 0.0, MAX_SERVER_DELAY))


def transient(exc: BaseException) -> bool:
    """Whether an error says trying again can help (its ``retryable`` attribute)."""
    return bool(getattr(exc, "retryable", False))


def retry(
    call: Callable[[], T],
    backoff: Backoff,
    *,
    retryable: Callable[[Exception], bool] = transient,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()`` until it returns, fails for good, runs out of attempts or of time.

    The last error is raised as it was; a wait that would end past the deadline is
    not started.
    """
    started = clock()
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            if not retryable(exc) or attempt >= backoff.attempts:
                raise
            wait = backoff.pause(attempt, getattr(exc, "delay", None))
            if backoff.deadline is not None and clock() - started + wait > backoff.deadline:
                raise
            sleep(wait)


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), if any."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))
