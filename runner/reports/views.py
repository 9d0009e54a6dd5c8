"""View models: what every rendering of a plan or a status shows, as plain data.

Templates and ``--output json`` read the same dictionaries, so the JSON and
the text can never disagree. Keys are camelCase, as everywhere in our JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.jobs.progress import Counts
from runner.jobs.status import JobStatus
from runner.reconcile.model import Action, ActionKind, Plan

MARKERS = {
    ActionKind.CREATE: "+",
    ActionKind.STAGE: "+",
    ActionKind.CONFIRM: "✓",
    ActionKind.SET_PRIORITY: "~",
    ActionKind.CANCEL: "-",
    ActionKind.DELETE: "-",
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
    ActionKind.DELETE: "delete",
    ActionKind.RECREATE: "recreate",
    ActionKind.WAIT: "wait",
    ActionKind.BLOCKED: "blocked",
    ActionKind.NOOP: "ok",
}


def state_label(action: Action) -> str:
    """What the status column says: the service's status, told apart where a person
    needs to know (a staged job is not one awaiting confirmation)."""
    if action.kind is ActionKind.BLOCKED:
        return "Blocked"
    if action.awaiting_confirmation:
        return "Awaiting confirmation"
    if action.staged and action.status is JobStatus.SUSPENDED:
        return "Staged"
    if action.status is not None:
        return action.status.value
    if action.kind is ActionKind.WAIT:
        return "Waiting"
    return VERBS[action.kind]


def detail(action: Action, state: str) -> str:
    """The reason without the status it starts with (the status has its own column)."""
    reason = action.reason
    for prefix in (state, state.lower(), action.kind.value):
        if not reason.startswith(prefix):
            continue
        rest = reason[len(prefix) :]
        if rest[:1] in (":", ";", ","):
            return rest[1:].lstrip()
        if rest.startswith(" (") and ")" in rest:  # "Complete (3 succeeded): …"
            inner, _, after = rest[2:].partition(")")
            return inner + after
    return reason


def action_view(action: Action) -> dict[str, Any]:
    """One action as data."""
    counts = action.counts
    state = state_label(action)
    failure = action.failure
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
        "dependencies": [
            {"target": target, "name": name, "condition": condition}
            for target, name, condition in action.dependencies
        ],
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
        "state": state,
        "progressText": _progress_text(counts),
        "detail": detail(action, state),
        "staged": action.staged,
        "heldBy": list(action.held_by),
        "needsAttention": action.attention is not None,
        "attention": action.attention,
        "command": action.command,
        "failureReasons": [
            {"code": code, "reason": reason}
            for code, reason in (failure.reasons if failure else ())
        ],
        "topError": (
            {"code": failure.top_error[0], "count": failure.top_error[1]}
            if failure is not None and failure.top_error
            else None
        ),
    }


def _progress_text(counts: Counts | None) -> str:
    if counts is None or not counts.total:
        return ""
    text = f"{counts.percent()}% {counts.done:,}/{counts.total:,}"
    return text + (f" ({counts.failed:,} failed)" if counts.failed else "")


def _campaigns(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The actions grouped by campaign (named ones first, by name), with totals."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for view in actions:
        groups.setdefault(view["campaign"], []).append(view)
    found = []
    for name in sorted(groups, key=lambda c: (c is None, c or "")):
        members = groups[name]
        progress = [a["progress"] for a in members if a["progress"]]
        found.append(
            {
                "name": name,
                "actions": members,
                "totals": {
                    "jobs": len(members),
                    "complete": sum(a["status"] == "Complete" for a in members),
                    "attention": sum(a["needsAttention"] for a in members),
                    "awaiting": sum(a["awaitingConfirmation"] for a in members),
                    "tasks": sum(p["total"] for p in progress),
                    "succeeded": sum(p["succeeded"] for p in progress),
                    "failed": sum(p["failed"] for p in progress),
                },
            }
        )
    return found


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_view(plan: Plan, *, notes: list[str] | None = None) -> dict[str, Any]:
    """A plan as data: actions (also grouped by campaign), orphans, the summary counts, and
    who must act: jobs that need attention, jobs awaiting a person, jobs held by those."""
    actions = [action_view(a) for a in plan.actions]
    orphans = [action_view(a) for a in plan.orphans]
    rows = [*actions, *orphans]
    everything = [*plan.actions, *plan.orphans]
    summary = {
        "create": sum(a.kind in (ActionKind.CREATE, ActionKind.STAGE) for a in everything),
        "recreate": sum(a.kind is ActionKind.RECREATE for a in everything),
        "change": sum(a.kind in (ActionKind.SET_PRIORITY, ActionKind.CONFIRM) for a in everything),
        "cancel": sum(a.kind is ActionKind.CANCEL for a in everything),
        "delete": sum(a.kind is ActionKind.DELETE for a in everything),
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
        "campaigns": _campaigns(actions),
        "attention": [a for a in actions if a["needsAttention"]],
        "awaiting": [a for a in actions if a["awaitingConfirmation"]],
        "held": [a for a in actions if a["heldBy"]],
        "notes": list(notes or ()),
        "widths": {
            "name": max([len(a["name"]) for a in rows] or [0]),
            "state": max([len(a["state"]) for a in rows] or [0]),
            "progress": max([len(a["progressText"]) for a in rows] or [0]),
        },
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
