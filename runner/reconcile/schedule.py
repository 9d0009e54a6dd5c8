"""Cron schedules of recurring jobs: the latest run due, and the next one (pure).

A schedule is read in its job's time zone (UTC by default) with croniter, which
keeps cron's own rules (a day-of-month and a day-of-week both given match
either). Across a daylight-saving change a wall time that does not exist runs at
the first moment after the gap, and one that happens twice runs once.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def _zone(timezone: str | None) -> ZoneInfo:
    return ZoneInfo(timezone or "UTC")


def latest_slot(schedule: str, timezone: str | None, now: float) -> float:
    """The latest time at or before ``now`` the schedule fires (epoch seconds)."""
    # croniter's get_prev is strictly before its start: start one second after the
    # whole second of now, so that a run due exactly now counts as due.
    start = datetime.fromtimestamp(math.floor(now) + 1, _zone(timezone))
    found: datetime = croniter(schedule, start).get_prev(datetime)
    return found.timestamp()


def next_slot(schedule: str, timezone: str | None, now: float) -> float:
    """The first time after ``now`` the schedule fires (epoch seconds)."""
    start = datetime.fromtimestamp(math.floor(now), _zone(timezone))
    found: datetime = croniter(schedule, start).get_next(datetime)
    return found.timestamp()


def stamp(moment: float) -> str:
    """``2026-11-28 03:00 UTC``, as plans and status show slots."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")
