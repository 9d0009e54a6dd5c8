"""Recurring jobs: runs when due, one catch-up for missed runs, lastRun windows, time zones."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from runner.jobs.status import JobStatus
from runner.reconcile.apply import build_request
from runner.reconcile.model import ActionKind
from runner.reconcile.plan import plan
from runner.reconcile.schedule import latest_slot, next_slot
from runner.spec.loader import SourceFile, parse_sources
from tests.reconcile.helpers import desired, job_yaml, observed, recorded

A = ActionKind
S = JobStatus


def _t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _at(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")


def test_slots_in_utc_and_in_a_time_zone() -> None:
    now = _t("2026-11-27T14:00:00")
    assert _at(latest_slot("0 3 * * *", None, now)) == "2026-11-27 03:00"
    assert _at(next_slot("0 3 * * *", None, now)) == "2026-11-28 03:00"
    exact = _t("2026-11-27T03:00:00")
    assert latest_slot("0 3 * * *", None, exact) == exact  # due exactly now counts
    assert _at(latest_slot("0 3 * * *", None, exact - 0.5)) == "2026-11-26 03:00"
    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer
    assert _at(latest_slot("0 3 * * *", "Europe/Berlin", now)) == "2026-11-27 02:00"
    assert _at(latest_slot("0 3 * * *", "Europe/Berlin", _t("2026-07-01T12:00:00"))) == (
        "2026-07-01 01:00"
    )
    # a wall time skipped by the spring change runs right after the gap
    assert _at(next_slot("30 2 * * *", "Europe/Berlin", _t("2026-03-28T12:00:00"))) == (
        "2026-03-29 01:00"
    )
    # day-of-month and day-of-week both given: either matches (cron's rule)
    assert _at(next_slot("0 0 13 * 5", None, _t("2026-11-01T00:00:00"))) == "2026-11-06 00:00"


NIGHTLY = job_yaml("nightly", 'schedule: "0 3 * * *"')


def test_a_new_scheduled_job_runs_once_at_once_then_on_schedule() -> None:
    items = desired(NIGHTLY)
    now = _t("2026-11-27T14:00:00")
    action = plan(items, [], [], now=now).actions[0]
    assert action.kind is A.CREATE
    assert action.slot == _t("2026-11-27T03:00:00")
    assert action.next_run == _t("2026-11-28T03:00:00")
    assert "the run of 2026-11-27 03:00 UTC (then on schedule)" in action.reason


def _ran(status: JobStatus, slot: str, created: str) -> tuple[list[object], list[object]]:
    item = desired(NIGHTLY)[0]
    record = dataclasses.replace(
        recorded(item, "job-1", status), slot=_t(slot), created=_t(created)
    )
    return [observed(item, "job-1", status, created=_t(created))], [record]


def test_nothing_runs_before_the_next_slot() -> None:
    seen, ledger = _ran(S.COMPLETE, "2026-11-27T03:00:00", "2026-11-27T03:00:05")
    action = plan(desired(NIGHTLY), seen, ledger, now=_t("2026-11-27T23:59:00")).actions[0]  # type: ignore[arg-type]
    assert action.kind is A.NOOP
    assert action.next_run == _t("2026-11-28T03:00:00")


def test_a_due_run_makes_the_next_generation() -> None:
    seen, ledger = _ran(S.COMPLETE, "2026-11-27T03:00:00", "2026-11-27T03:00:05")
    action = plan(desired(NIGHTLY), seen, ledger, now=_t("2026-11-28T03:01:00")).actions[0]  # type: ignore[arg-type]
    assert action.kind is A.CREATE
    assert action.generation == 2
    assert action.slot == _t("2026-11-28T03:00:00")
    assert action.window_start == _t("2026-11-27T03:00:05")
    assert action.reason == "scheduled run of 2026-11-28 03:00 UTC"


def test_missed_runs_do_not_pile_up() -> None:
    # five nights missed: one catch-up run, for the latest slot
    seen, ledger = _ran(S.FAILED, "2026-11-22T03:00:00", "2026-11-22T03:00:05")
    now = _t("2026-11-27T14:00:00")
    result = plan(desired(NIGHTLY), seen, ledger, now=now)  # type: ignore[arg-type]
    assert [a.kind for a in result.actions] == [A.CREATE]
    assert result.actions[0].slot == _t("2026-11-27T03:00:00")


def test_a_run_due_while_the_last_is_live_waits_for_it() -> None:
    seen, ledger = _ran(S.ACTIVE, "2026-11-26T03:00:00", "2026-11-26T03:00:05")
    action = plan(desired(NIGHTLY), seen, ledger, now=_t("2026-11-27T14:00:00")).actions[0]  # type: ignore[arg-type]
    assert action.kind is A.NOOP
    assert "the run of 2026-11-27 03:00 UTC follows once it is final" in action.reason


def test_last_run_windows_the_generated_manifest() -> None:
    spec = job_yaml(
        "nightly",
        'schedule: "0 3 * * *"',
    ).replace(
        "manifest: {generate: {bucket: logs}}",
        "manifest: {generate: {bucket: logs, filters: {createdAfter: lastRun}}}",
    )
    item = desired(spec)[0]
    seen, ledger = _ran(S.COMPLETE, "2026-11-27T03:00:00", "2026-11-27T03:00:05")
    ledger = [dataclasses.replace(ledger[0], spec_hash=item.spec_hash)]  # type: ignore[type-var]
    action = plan([item], seen, ledger, now=_t("2026-11-28T03:01:00")).actions[0]  # type: ignore[arg-type]
    request = build_request(item, action, None, None)  # type: ignore[arg-type]
    assert request.manifest.generate is not None
    assert request.manifest.generate.filters.created_after == datetime(
        2026, 11, 27, 3, 0, 5, tzinfo=UTC
    )
    first = plan([item], [], [], now=_t("2026-11-28T03:01:00")).actions[0]
    request = build_request(item, first, None, None)  # type: ignore[arg-type]
    assert request.manifest.generate is not None
    assert request.manifest.generate.filters.created_after is None  # the first run takes all


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('schedule: "0 3 * *"', "must be a cron expression of 5 fields"),
        ('schedule: "61 3 * * *"', "is not a valid cron expression"),
        ('schedule: "0 3 * * *"\ntimezone: Mars/Olympus', "is not a time zone name"),
        ("timezone: Europe/Berlin", "timezone is only meaningful with a schedule"),
    ],
)
def test_bad_schedules_are_refused(extra: str, message: str) -> None:
    specs = parse_sources([SourceFile("s.yaml", job_yaml("a", extra).encode())])
    assert any(message in str(e) for e in specs.errors), [str(e) for e in specs.errors]


def test_last_run_needs_a_schedule() -> None:
    text = job_yaml("a").replace(
        "{generate: {bucket: logs}}", "{generate: {bucket: logs, filters: {createdAfter: lastRun}}}"
    )
    specs = parse_sources([SourceFile("s.yaml", text.encode())])
    assert any("createdAfter: lastRun needs a schedule" in str(e) for e in specs.errors)
