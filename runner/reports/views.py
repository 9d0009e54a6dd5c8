"""View models: what every rendering of a plan or a status shows, as plain data.

Templates and ``--output json`` read the same dictionaries, so the JSON and
the text can never disagree. Keys are camelCase, as everywhere in our JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.reconcile.model import Action, ActionKind, Plan

MARKERS = {
    ActionKind.CREATE: "+",
    ActionKind.STAGE: "+",
    ActionKind.CONFIRM: "✓",
    ActionKind.SET_PRIORITY: "~",
    ActionKind.CANCEL: "-",
    ActionKind.RECREATE: "-/+",
    ActionKind.WAIT: "…",
    ActionKind.BLOCKED: "✗",
    ActionKind.NOOP: " ",
}

VERBS = {
    ActionKind.CREATE: "create",
    ActionKind.STAGE: "stage",
    ActionKind.CONFIRM: "confirm",
    ActionKind.SET_PRIORITY: "priority",
    ActionKind.CANCEL: "cancel",
    ActionKind.RECREATE: "recreate",
    ActionKind.WAIT: "wait",
    ActionKind.BLOCKED: "blocked",
    ActionKind.NOOP: "ok",
}


def action_view(action: Action) -> dict[str, Any]:
    """One action as data."""
    counts = action.counts
    return {
        "action": action.kind.value,
        "marker": MARKERS[action.kind],
        "verb": VERBS[action.kind],
        "target": action.target,
        "name": action.name,
        "campaign": action.campaign,
        "reason": action.reason,
        "jobId": action.job_id,
        "status": action.status.value if action.status else None,
        "priority": action.priority,
        "oldPriority": action.old_priority,
        "generation": action.generation,
        "dependsOn": list(action.depends_on),
        "progress": (
            {
                "total": counts.total,
                "succeeded": counts.succeeded,
                "failed": counts.failed,
                "percent": counts.percent(),
            }
            if counts
            else None
        ),
        "awaitingConfirmation": action.awaiting_confirmation,
        "failed": action.failed,
        "orphan": action.orphan,
        "changes": action.kind.changes,
        "nextRun": _iso(action.next_run),
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_view(plan: Plan) -> dict[str, Any]:
    """A plan as data: actions, orphans and the summary counts."""
    actions = [action_view(a) for a in plan.actions]
    orphans = [action_view(a) for a in plan.orphans]
    everything = [*plan.actions, *plan.orphans]
    summary = {
        "create": sum(a.kind in (ActionKind.CREATE, ActionKind.STAGE) for a in everything),
        "recreate": sum(a.kind is ActionKind.RECREATE for a in everything),
        "change": sum(a.kind in (ActionKind.SET_PRIORITY, ActionKind.CONFIRM) for a in everything),
        "cancel": sum(a.kind is ActionKind.CANCEL for a in everything),
        "wait": sum(a.kind is ActionKind.WAIT for a in everything),
        "blocked": sum(a.kind is ActionKind.BLOCKED for a in everything),
        "unchanged": sum(a.kind is ActionKind.NOOP for a in everything),
    }
    return {
        "formatVersion": "1",
        "actions": actions,
        "orphans": orphans,
        "adopted": [
            {"target": r.target, "name": r.name, "jobId": r.job_id, "generation": r.generation}
            for r in plan.adoptions
        ],
        "summary": summary,
        "changes": len(plan.changes),
        "summaryOnly": False,
        "generatedAt": None,
    }


def job_view(
    job: dict[str, Any],
    report: Any | None,
    spec: dict[str, Any] | None,
    report_url: str | None,
) -> dict[str, Any]:
    """The context of a job's report: the job, its spec, totals, failures, the raw files.

    ``job`` is a JobDetail as camelCase JSON; ``report`` a CompletionReport (or None
    when no report was written).
    """
    progress = job["progress"]
    elapsed = float(progress.get("elapsedSeconds") or 0.0)
    tasks = report.tasks if report is not None else progress["succeeded"] + progress["failed"]
    succeeded = report.succeeded if report is not None else progress["succeeded"]
    failed = report.failed if report is not None else progress["failed"]
    groups = sorted(report.groups.values(), key=lambda g: -g.count) if report else []
    return {
        "formatVersion": "1",
        "job": job,
        "spec": spec,
        "totals": {
            "tasks": tasks,
            "succeeded": succeeded,
            "failed": failed,
            "successRate": round(100.0 * succeeded / tasks, 2) if tasks else None,
            "elapsedSeconds": round(elapsed, 3),
            "tasksPerSecond": round(tasks / elapsed, 1) if elapsed else None,
        },
        "failures": [
            {
                "errorCode": g.code,
                "httpStatus": g.http,
                "count": g.count,
                "firstKeys": list(g.keys),
                "more": g.count - len(g.keys),
            }
            for g in groups
        ],
        "report": {
            "manifest": report_url,
            "created": report.created if report else None,
            "files": report.files if report else [],
        },
    }
