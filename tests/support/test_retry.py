"""The one retry helper: backoff with jitter, a server's delay honoured, a deadline kept."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from runner.jobs.errors import BadRequest, TooManyRequests
from runner.stores.base import StoreError
from runner.support.retry import MAX_SERVER_DELAY, Backoff, retry, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def failing(*errors: Exception) -> object:
    pending = list(errors)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return "done"

    return call


def test_transient_errors_are_retried_with_growing_jittered_waits() -> None:
    clock = Clock()
    call = failing(*[StoreError(503, "SlowDown", "busy")] * 4)
    backoff = Backoff(attempts=5, base=0.1, cap=0.5)
    assert retry(call, backoff, sleep=clock.sleep, clock=lambda: clock.now) == "done"  # type: ignore[arg-type]
    assert len(clock.waits) == 4
    for number, wait in enumerate(clock.waits, start=1):
        ceiling = min(0.5, 0.1 * 2**number)
        assert ceiling / 2 <= wait <= ceiling


def test_a_server_delay_is_a_floor() -> None:
    clock = Clock()
    call = failing(TooManyRequests("slow", delay=3.0), StoreError(503, "SlowDown", "x", delay=999))
    retry(call, Backoff(attempts=3, base=0.01), sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    assert clock.waits[0] == 3.0
    assert clock.waits[1] == MAX_SERVER_DELAY


def test_lasting_errors_are_raised_at_once() -> None:
    clock = Clock()
    with pytest.raises(BadRequest):
        retry(failing(BadRequest("no")), Backoff(), sleep=clock.sleep)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="NoSuchKey"):
        retry(failing(StoreError(404, "NoSuchKey", "x")), Backoff(), sleep=clock.sleep)  # type: ignore[arg-type]
    assert clock.waits == []


def test_attempts_and_the_deadline_end_it_with_the_last_error() -> None:
    clock = Clock()
    errors = [StoreError(500, "InternalError", f"try {n}") for n in range(10)]
    with pytest.raises(StoreError, match="try 2"):
        retry(failing(*errors), Backoff(attempts=3), sleep=clock.sleep, clock=lambda: clock.now)  # type: ignore[arg-type]
    clock = Clock()
    with pytest.raises(TooManyRequests):
        retry(
            failing(*[TooManyRequests("slow", delay=4.0)] * 5),  # type: ignore[arg-type]
            Backoff(attempts=10, deadline=10.0),
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )
    assert sum(clock.waits) <= 10.0  # the wait that would end past the deadline never starts
    assert len(clock.waits) == 2


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": formatdate(1000.0 + 30, usegmt=True)}, now=1000.0) == 30.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
