"""Every job's states over time, for the status page.

A local target's engine keeps each status change with its time, so its jobs show
every state they went through — a pre-empted job's Active → Paused → Active, a
person's wait in Suspended. A cloud service shows only the current status: those jobs
are drawn from the ledger (created, confirmed by batchctl, ended) and say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from runner.backends.base import JobService, KeepsEvents
from runner.reconcile.model import Action
from runner.reports.graph import COLOURS, DEFAULT_COLOUR
from runner.state.records import LedgerRecord

FINAL = frozenset({"Complete", "Failed", "Cancelled"})


@dataclass(frozen=True)
class Segment:
    """One state from ``start`` to ``end`` (seconds since the epoch)."""

    state: str
    start: float
    end: float
    reason: str = ""


@dataclass
class Line:
    """One job's row: its segments and where they came from."""

    name: str
    target: str
    segments: list[Segment] = field(default_factory=list)
    source: str = "engine"  # engine | ledger
    ended: str | None = None  # its final status, drawn as a mark at the end


def from_events(
    name: str,
    target: str,
    events: Iterable[tuple[float, str | None, str, str]],
    now: float,
    *,
    staged: bool = False,
) -> Line:
    """A job's line from its status changes (time, old, new, reason), oldest first.

    ``staged``: created early behind its dependencies, so its first Suspended is
    batchctl's wait (Staged), not a person's.
    """
    line = Line(name, target)
    rows = list(events)
    first_wait = True
    for index, (at, _old, new, reason) in enumerate(rows):
        if new in FINAL:
            line.ended = new
            break
        end = rows[index + 1][0] if index + 1 < len(rows) else now
        state = new
        if new == "Suspended":
            # Both read "awaiting confirmation" in the engine: who was awaited is ours.
            state = "Staged" if staged and first_wait else "Awaiting confirmation"
            first_wait = False
        line.segments.append(Segment(state, at, max(end, at), reason))
    return line


def from_ledger(
    action: Action, record: LedgerRecord | None, confirmed: float | None, now: float
) -> Line:
    """A cloud job's line from what the ledger knows: created, confirmed, ended."""
    line = Line(action.name, action.target, source="ledger")
    if record is None:
        return line
    start = record.created
    status = action.status.value if action.status else record.status.value
    end = record.terminated or (now if status not in FINAL else start)
    if confirmed is not None and start <= confirmed <= end:
        waiting = "Awaiting confirmation" if not record.staged else "Suspended"
        line.segments.append(Segment(waiting, start, confirmed))
        start = confirmed
    if status in FINAL:
        line.segments.append(Segment("Active", start, end))
        line.ended = status
    else:
        line.segments.append(Segment(status, start, end))
    return line


def gather(
    actions: Iterable[Action],
    services: Mapping[str, JobService],
    records: Iterable[LedgerRecord],
    history: Iterable[Mapping[str, object]],
    now: float,
) -> list[Line]:
    """A line for every job of the plan that exists, from its engine or the ledger."""
    by_id = {r.job_id: r for r in records}
    confirmed: dict[str, float] = {}
    for entry in history:
        if entry.get("action") == "confirm" and entry.get("jobId"):
            confirmed.setdefault(str(entry["jobId"]), float(str(entry["at"])))
    lines = []
    for action in actions:
        if not action.job_id:
            continue
        service = services.get(action.target)
        inner = getattr(service, "inner", service)
        if isinstance(inner, KeepsEvents):
            events = [
                (at.timestamp(), old, new, reason or "")
                for at, old, new, reason in inner.job_events(action.job_id)
            ]
            record = by_id.get(action.job_id)
            staged = record.staged if record is not None else action.staged
            lines.append(from_events(action.name, action.target, events, now, staged=staged))
        else:
            record = by_id.get(action.job_id)
            lines.append(from_ledger(action, record, confirmed.get(action.job_id), now))
    return [line for line in lines if line.segments or line.ended]


# -- the picture ----------------------------------------------------------------------

LABEL_W, CHART_W, ROW_H, BAR_H, AXIS_H, PAD = 190, 720, 22, 14, 26, 10
MARKS = {"Complete": "#2e7d32", "Failed": "#c62828", "Cancelled": "#616161"}


def _ticks(start: float, end: float) -> list[tuple[float, str]]:
    span = max(end - start, 1.0)
    steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400]
    step = next((s for s in steps if span / s <= 8), steps[-1])
    first = (int(start) // step + 1) * step
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%Y-%m-%d")
    return [
        (float(t), datetime.fromtimestamp(t, UTC).strftime(fmt))
        for t in range(first, int(end) + 1, step)
    ]


def svg(lines: list[Line], now: float) -> str:
    """The timeline as inline SVG: a row per job, a bar per state, a mark where it ended."""
    if not lines:
        return ""
    start = (
        min(s.start for line in lines for s in line.segments)
        if any(line.segments for line in lines)
        else now
    )
    end = max([now, *(s.end for line in lines for s in line.segments)])
    span = max(end - start, 1.0)

    def x(moment: float) -> float:
        return LABEL_W + (moment - start) / span * CHART_W

    height = AXIS_H + len(lines) * ROW_H + PAD
    width = LABEL_W + CHART_W + PAD * 2
    parts = []
    for moment, text in _ticks(start, end):
        parts.append(
            f'<line x1="{x(moment):.1f}" y1="{AXIS_H - 6}" x2="{x(moment):.1f}" '
            f'y2="{height - PAD}" stroke="#e1e4e8"/><text x="{x(moment):.1f}" y="{AXIS_H - 10}" '
            f'font-size="10" fill="#656d76" text-anchor="middle">{escape(text)}</text>'
        )
    for row, line in enumerate(lines):
        top = AXIS_H + row * ROW_H
        label = line.name if line.target == "local" else f"{line.name} ({line.target})"
        shown = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<g class="job" data-source="{line.source}"><text x="{PAD}" y="{top + 14}" '
            f'font-size="11.5" fill="#1f2328">{escape(shown)}</text>'
        )
        for seg in line.segments:
            left, right = x(seg.start), x(seg.end)
            tip = f"{seg.state}: {_clock(seg.start)} – {_clock(seg.end)}"
            tip += f" ({seg.reason})" if seg.reason else ""
            parts.append(
                f'<rect class="state" data-state="{escape(seg.state)}" x="{left:.1f}" '
                f'y="{top + (ROW_H - BAR_H) / 2:.1f}" width="{max(right - left, 1.5):.1f}" '
                f'height="{BAR_H}" fill="{COLOURS.get(seg.state, DEFAULT_COLOUR)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if line.ended:
            at = line.segments[-1].end if line.segments else start
            parts.append(
                f'<circle class="end" data-state="{line.ended}" cx="{x(at):.1f}" '
                f'cy="{top + ROW_H / 2:.1f}" r="4.5" fill="{MARKS.get(line.ended, "#555")}">'
                f"<title>{line.ended} at {_clock(at)}</title></circle>"
            )
        parts.append("</g>")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="every job\'s states over time" font-family="sans-serif">'
        + "".join(parts)
        + "</svg>"
    )


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
