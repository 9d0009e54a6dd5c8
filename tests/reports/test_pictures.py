"""The campaign's pictures: the dependency tree and graph, the timeline, outcome bars."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.jobs.progress import Counts
from runner.jobs.status import JobStatus
from runner.reconcile.model import Action, ActionKind, Plan
from runner.reconcile.plan import plan
from runner.reports import graph, timeline
from runner.reports.environment import render
from runner.reports.views import plan_view
from runner.state.records import LedgerRecord
from tests.reconcile.helpers import NOW, by_name, desired, job_yaml, observed, recorded

GOLDEN = Path(__file__).parent / "golden"
S = JobStatus

DIAMOND = [
    job_yaml("tag", "campaign: logs"),
    job_yaml("copy", "dependsOn: [{job: tag}]"),
    job_yaml("verify", "dependsOn: [{job: tag, condition: complete}]"),
    job_yaml("finish", "dependsOn: [{job: copy}, {job: verify}]\nconfirmation: manual"),
    job_yaml("alone"),
]


def _view() -> dict[str, object]:
    items = desired(*[d.replace("campaign: logs", "") for d in DIAMOND])
    tag = by_name(items, "tag")
    seen = [observed(tag, "job-tag", S.COMPLETE, total=10, succeeded=10)]
    result = plan(items, seen, [recorded(tag, "job-tag", S.COMPLETE)], now=NOW)
    return plan_view(result)


def _golden(name: str, text: str, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / name
    if request.config.getoption("--update-golden"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run pytest --update-golden"
    assert text == path.read_text(encoding="utf-8")


def test_the_tree_shows_each_job_under_what_it_depends_on(request: pytest.FixtureRequest) -> None:
    lines = graph.tree_lines(_view())  # type: ignore[arg-type]
    text = "\n".join(lines) + "\n"
    assert "finish" in text
    assert text.count("finish") == 2  # under copy and under verify
    assert "finish (*)" in text  # drawn once, then marked
    assert "verify  create [complete]" in text  # the condition of the edge in
    _golden("tree.txt", text, request)


def test_the_graph_has_a_node_per_job_and_an_edge_per_dependency(
    request: pytest.FixtureRequest,
) -> None:
    view = _view()
    picture = graph.svg(view)  # type: ignore[arg-type]
    assert picture.count('class="node"') == 5
    assert picture.count('class="edge"') == 4  # tag→copy, tag→verify, copy→finish, verify→finish
    assert picture.count('data-condition="complete"') == 1
    assert 'stroke-dasharray="6 4"' in picture  # the complete edge is dashed
    assert "<script" not in picture
    assert "http://" not in picture.replace("http://www.w3.org/2000/svg", "")
    # layered left to right in dependency order
    xs = {
        name: float(x)
        for x, name in re.findall(r'<rect x="([\d.]+)"[^>]*/><text[^>]*>([a-z]+)</text>', picture)
    }
    assert xs["tag"] < xs["copy"] == xs["verify"] < xs["finish"]
    assert xs["alone"] == xs["tag"]
    _golden("graph.svg", picture + "\n", request)


def _chain(count: int, done: int) -> Plan:
    actions = []
    for index in range(count):
        status = S.COMPLETE if index < done else None
        actions.append(
            Action(
                ActionKind.NOOP if status else ActionKind.WAIT,
                target="local",
                name=f"step-{index:03d}",
                reason="",
                campaign="big",
                status=status,
                counts=Counts(1, 1, 0) if status else None,
                dependencies=(("local", f"step-{index - 1:03d}", "succeeded"),) if index else (),
            )
        )
    return Plan(actions=tuple(actions))


def test_a_campaign_of_200_jobs_stays_readable() -> None:
    view = plan_view(_chain(200, 180))
    picture = graph.svg(view)  # type: ignore[arg-type]
    nodes = re.findall(r'<g class="node" data-state="([^"]*)" data-jobs="(\d+)"', picture)
    assert sum(int(jobs) for _, jobs in nodes) == 200  # every job is counted somewhere
    assert len(nodes) == 21  # the 180 complete ones folded into one node
    assert "180 complete: step-000 … step-179" in picture
    small = graph.svg(plan_view(_chain(20, 18)))  # type: ignore[arg-type]
    assert small.count('class="node"') == 20  # small campaigns are never folded


def test_layers_of_a_long_chain_do_not_recurse() -> None:
    built = graph.graph_of(plan_view(_chain(5000, 0))["actions"])  # type: ignore[arg-type]
    assert max(graph.layers(built).values()) == 4999
    assert len(graph.tree_lines(plan_view(_chain(3000, 0)))) == 3001  # type: ignore[arg-type]


def test_the_timeline_shows_pre_emption_and_a_wait_for_a_person() -> None:
    t0 = 1_800_000_000.0
    events = [
        (t0, None, "New", "job created"),
        (t0 + 1, "New", "Preparing", ""),
        (t0 + 2, "Preparing", "Ready", ""),
        (t0 + 3, "Ready", "Active", "running"),
        (t0 + 10, "Active", "Pausing", "pre-empted by job x (priority 9)"),
        (t0 + 11, "Pausing", "Paused", ""),
        (t0 + 20, "Paused", "Active", "resumed"),
        (t0 + 30, "Active", "Completing", ""),
        (t0 + 31, "Completing", "Complete", ""),
    ]
    low = timeline.from_events("low", "local", events, now=t0 + 60)
    states = [s.state for s in low.segments]
    assert states == [
        "New",
        "Preparing",
        "Ready",
        "Active",
        "Pausing",
        "Paused",
        "Active",
        "Completing",
    ]
    assert low.ended == "Complete"
    waiting = timeline.from_events(
        "finish",
        "local",
        [(t0 + 40, None, "New", ""), (t0 + 41, "New", "Suspended", "awaiting confirmation")],
        now=t0 + 60,
    )
    assert waiting.segments[-1].state == "Awaiting confirmation"
    assert (waiting.segments[-1].start, waiting.segments[-1].end) == (t0 + 41, t0 + 60)
    staged = timeline.from_events(
        "copy",
        "local",
        [(t0, None, "Suspended", "awaiting confirmation"), (t0 + 5, "Suspended", "Ready", "")],
        now=t0 + 60,
        staged=True,
    )
    assert staged.segments[0].state == "Staged"  # batchctl's wait, not a person's
    picture = timeline.svg([low, waiting, staged], now=t0 + 60)
    assert picture.count('class="job"') == 3
    assert picture.count('data-state="Paused"') == 1
    assert picture.count('data-state="Awaiting confirmation"') == 1
    assert picture.count('class="end"') == 1


def test_a_cloud_job_is_drawn_from_the_ledger() -> None:
    t0 = 1_800_000_000.0
    record = LedgerRecord(
        "aws", "copy", 1, "job-1", "h", S.COMPLETE, created=t0, terminated=t0 + 100
    )
    action = Action(
        ActionKind.NOOP, target="aws", name="copy", reason="", job_id="job-1", status=S.COMPLETE
    )
    line = timeline.from_ledger(action, record, confirmed=t0 + 40, now=t0 + 200)
    assert [(s.state, s.start, s.end) for s in line.segments] == [
        ("Awaiting confirmation", t0, t0 + 40),
        ("Active", t0 + 40, t0 + 100),
    ]
    assert (line.source, line.ended) == ("ledger", "Complete")


def test_the_status_page_carries_both_pictures(request: pytest.FixtureRequest) -> None:
    view = _view()
    t0 = 1_800_000_000.0
    line = timeline.from_events(
        "tag",
        "local",
        [(t0, None, "Active", "running"), (t0 + 9, "Active", "Complete", "")],
        t0 + 9,
    )
    page = render(
        "status.html.j2",
        {
            **view,
            "generatedAt": "2027-01-15T08:00:00Z",
            "graphSvg": graph.svg(view),  # type: ignore[arg-type]
            "timelineSvg": timeline.svg([line], t0 + 9),
            "timelineFromLedger": [],
        },
    )
    assert page.count("<svg") == 2
    assert "&lt;svg" not in page  # the pictures are markup, not escaped text
    _golden("status.pictures.html", page, request)
