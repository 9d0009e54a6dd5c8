"""Every shipped template against its golden file (rewrite them with --update-golden)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.backends.reports import CompletionReport, FailureGroup
from runner.jobs.progress import Counts, Failure
from runner.jobs.status import JobStatus
from runner.reconcile.model import Action, ActionKind, Plan
from runner.reports.environment import render
from runner.reports.views import job_view, plan_view

GOLDEN = Path(__file__).parent / "golden"
NO_BUCKET = "ManifestGenerationFailed: cannot list s3://medai"
BEYOND = "3 of 2,003 tasks failed (tolerateFailedTasks: 0); top error NoSuchKey (3 tasks)"
IDLE = "no engine is running for target local: tag-logs (New) will not move until …"
A, S = ActionKind, JobStatus


def sample_plan() -> Plan:
    """A plan with one action of every kind, and an orphan."""

    def act(kind: ActionKind, name: str, reason: str, **kw: Any) -> Action:
        return Action(kind, target=kw.pop("target", "local"), name=name, reason=reason, **kw)

    return Plan(
        actions=(
            act(A.CREATE, "tag-logs", "new spec", generation=1, priority=20, campaign="logs"),
            act(
                A.STAGE,
                "copy-logs",
                "new spec; staged",
                generation=1,
                depends_on=("tag-logs",),
                campaign="logs",
            ),
            act(A.CONFIRM, "verify", "dependencies hold", job_id="job-3", status=S.SUSPENDED),
            act(
                A.SET_PRIORITY,
                "hold",
                "priority 10 → 50",
                job_id="job-4",
                status=S.ACTIVE,
                priority=50,
                old_priority=10,
                counts=Counts(1000, 430, 0),
            ),
            act(
                A.RECREATE,
                "retag",
                "operation.tag.tags.a changed since generation 1",
                generation=2,
                job_id="job-5",
                status=S.COMPLETE,
                target="prod",
            ),
            act(A.CANCEL, "old", "state: cancelled", job_id="job-6", status=S.ACTIVE),
            act(
                A.WAIT,
                "after",
                "waiting for tag-logs: Active, 43% (430 of 1,000 tasks)",
                depends_on=("tag-logs",),
                campaign="logs",
            ),
            act(
                A.BLOCKED,
                "blocked",
                "blocked: broken failed",
                depends_on=("broken",),
                attention="broken failed",
            ),
            act(
                A.NOOP,
                "broken",
                f"Failed: {NO_BUCKET}",
                job_id="job-9",
                status=S.FAILED,
                failed=True,
                counts=Counts(10, 1, 9),
                attention=NO_BUCKET,
                failure=Failure(reasons=(("ManifestGenerationFailed", "cannot list s3://medai"),)),
                command="batchctl report broken",
            ),
            act(
                A.NOOP,
                "done",
                f"Complete (2,000 succeeded, 3 failed): {BEYOND}",
                job_id="job-10",
                status=S.COMPLETE,
                counts=Counts(2003, 2000, 3),
                attention=BEYOND,
                failure=Failure(top_error=("NoSuchKey", 3)),
                command="batchctl report done",
            ),
            act(
                A.NOOP,
                "delete",
                "awaiting confirmation: batchctl jobs confirm delete",
                job_id="job-11",
                status=S.SUSPENDED,
                awaiting_confirmation=True,
                counts=Counts(50, 0, 0),
                command="batchctl jobs confirm delete",
            ),
            act(
                A.WAIT,
                "purge",
                "staged; waiting for delete: "
                "awaiting confirmation by a person (batchctl jobs confirm delete)",
                job_id="job-13",
                status=S.SUSPENDED,
                staged=True,
                held_by=("delete",),
                depends_on=("delete",),
            ),
        ),
        orphans=(
            act(
                A.NOOP,
                "gone",
                "its spec is gone; `--prune` cancels it",
                job_id="job-12",
                status=S.ACTIVE,
                orphan=True,
            ),
        ),
    )


def sample_job() -> dict[str, Any]:
    """A job report's context: failures of two kinds, one with more than 20 keys."""
    report = CompletionReport("reports", "r/job-1/manifest.json", "2026-11-27T00:00:00.000Z")
    report.succeeded = 1000
    report.failed = 25
    report.groups[("NoSuchKey", "404")] = FailureGroup(
        "NoSuchKey", "404", 23, [f"logs/missing-{i:02d}.log" for i in range(20)]
    )
    report.groups[("AccessDenied", "403")] = FailureGroup(
        "AccessDenied", "403", 2, ["held/a", "held/b"]
    )
    report.files = [
        {"status": "succeeded", "url": "s3://reports/r/job-1/results/aa.csv", "md5": "x"},
        {"status": "failed", "url": "s3://reports/r/job-1/results/bb.csv", "md5": "y"},
    ]
    job = {
        "jobId": "job-1",
        "status": "Complete",
        "priority": 10,
        "description": "Tag logs <b>now</b> [batchctl:tag-logs:0123456789abcdef]",
        "operation": "tag",
        "progress": {"total": 1025, "succeeded": 1000, "failed": 25, "elapsedSeconds": 2.5},
        "createdAt": "2026-11-27T00:00:00Z",
        "terminatedAt": "2026-11-27T00:00:03Z",
        "failureReasons": [],
    }
    spec = {"name": "tag-logs", "target": "local", "specHash": "0123456789abcdef", "generation": 2}
    return job_view(job, report, spec, "s3://reports/r/job-1/manifest.json")


CASES = {
    "plan.txt": ("plan.txt.j2", lambda: plan_view(sample_plan(), notes=[IDLE])),
    "plan.md": (
        "plan.md.j2",
        lambda: {**plan_view(sample_plan(), notes=[IDLE]), "generatedAt": "2026-11-27T00:00:00Z"},
    ),
    "status.txt": ("status.txt.j2", lambda: plan_view(sample_plan(), notes=[IDLE])),
    "status.md": (
        "status.md.j2",
        lambda: {**plan_view(sample_plan(), notes=[IDLE]), "generatedAt": "2026-11-27T00:00:00Z"},
    ),
    "status.summary.md": (
        "status.md.j2",
        lambda: {
            **plan_view(sample_plan(), notes=[IDLE]),
            "generatedAt": "2026-11-27T00:00:00Z",
            "summaryOnly": True,
        },
    ),
    "status.html": (
        "status.html.j2",
        lambda: {**plan_view(sample_plan(), notes=[IDLE]), "generatedAt": "2026-11-27T00:00:00Z"},
    ),
    "summary.txt": ("summary.txt.j2", lambda: plan_view(sample_plan(), notes=[IDLE])),
    "job.md": ("job.md.j2", sample_job),
    "job.html": ("job.html.j2", sample_job),
}


def test_every_shipped_template_has_a_golden_file() -> None:
    shipped = {
        p.name for p in (Path(__file__).parents[2] / "runner" / "reports" / "templates").iterdir()
    }
    assert shipped == {template for template, _ in CASES.values()}


@pytest.mark.parametrize("golden", sorted(CASES))
def test_template_matches_golden(golden: str, request: pytest.FixtureRequest) -> None:
    template, context = CASES[golden]
    rendered = render(template, context())
    path = GOLDEN / golden
    if request.config.getoption("--update-golden"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run pytest --update-golden"
    assert rendered == path.read_text(encoding="utf-8")


def test_html_is_escaped() -> None:
    job = sample_job()
    job["failures"][0]["firstKeys"] = ["<img src=x onerror=alert(1)>"]
    page = render("job.html.j2", job)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    plan = plan_view(sample_plan(), notes=[IDLE])
    plan["actions"][0]["detail"] = "<script>alert(1)</script>"
    plan["campaigns"][0]["actions"][0]["detail"] = "<script>alert(1)</script>"
    status = render("status.html.j2", {**plan, "generatedAt": None})
    assert "<script>" not in status
    assert "&lt;script&gt;" in status


def test_markdown_fits_a_pull_request_comment() -> None:
    from runner.cli.reconcile import MARKDOWN_LIMIT, markdown

    many = Plan(
        actions=(
            *(
                Action(
                    A.NOOP,
                    target="local",
                    name=f"job-{i:05d}",
                    reason="Complete (1,000 succeeded)",
                    job_id=f"00000000-0000-0000-0000-{i:012d}",
                    status=S.COMPLETE,
                    counts=Counts(1000, 1000, 0),
                )
                for i in range(3000)
            ),
            Action(A.BLOCKED, target="local", name="stuck", reason="blocked: x failed"),
        )
    )
    view = {**plan_view(many), "generatedAt": None}
    full = render("status.md.j2", view)
    assert len(full) > MARKDOWN_LIMIT
    text = markdown("status.md.j2", view)
    assert len(text) < MARKDOWN_LIMIT
    assert "`stuck`" in text
    assert "the 3000 unchanged ones that need nothing are left out" in text
    plan_text = markdown("plan.md.j2", view)
    assert len(plan_text) < MARKDOWN_LIMIT
