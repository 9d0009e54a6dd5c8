"""Every planning rule, table by table."""

from __future__ import annotations

import dataclasses

import pytest

from runner.jobs.status import JobStatus
from runner.reconcile.model import ActionKind, PlanError
from runner.reconcile.plan import plan
from tests.reconcile.helpers import NOW, by_name, desired, job_yaml, observed, recorded

S = JobStatus
A = ActionKind


def _action(actions: object, name: str) -> object:
    return next(a for a in actions if a.name == name)  # type: ignore[attr-defined]


def test_new_spec_is_created() -> None:
    items = desired(job_yaml("a"))
    result = plan(items, [], [], now=NOW)
    action = result.actions[0]
    assert (action.kind, action.generation, action.reason) == (A.CREATE, 1, "new spec")
    assert len(result.changes) == 1


def test_manual_confirmation_is_said_at_creation() -> None:
    result = plan(desired(job_yaml("a", "confirmation: manual")), [], [], now=NOW)
    assert result.actions[0].kind is A.CREATE
    assert "wait for a person to confirm" in result.actions[0].reason


CHAIN = [
    job_yaml("a"),
    job_yaml("b", "dependsOn: [{job: a}]"),
    job_yaml("c", "dependsOn: [{job: b}]"),
]


@pytest.mark.parametrize(
    ("a_status", "counts", "b_kind", "b_reason"),
    [
        (None, (0, 0, 0), A.WAIT, "waiting for a: being created"),
        (S.NEW, (0, 0, 0), A.WAIT, "waiting for a: New"),
        (S.ACTIVE, (1000, 430, 0), A.WAIT, "waiting for a: Active, 43% (430 of 1,000 tasks)"),
        (S.SUSPENDED, (10, 0, 0), A.WAIT, "waiting for a: Suspended"),
        (S.COMPLETE, (10, 10, 0), A.CREATE, "new spec"),
        (S.COMPLETE, (10, 9, 1), A.BLOCKED, "blocked: a completed with 1 failed task(s)"),
        (S.FAILED, (10, 2, 8), A.BLOCKED, "blocked: a failed"),
        (S.CANCELLED, (0, 0, 0), A.BLOCKED, "blocked: a cancelled"),
    ],
)
def test_dependency_conditions(
    a_status: JobStatus | None, counts: tuple[int, int, int], b_kind: ActionKind, b_reason: str
) -> None:
    items = desired(*CHAIN)
    a = by_name(items, "a")
    seen = (
        [observed(a, "job-a", a_status, total=counts[0], succeeded=counts[1], failed=counts[2])]
        if a_status
        else []
    )
    ledger = [recorded(a, "job-a", a_status)] if a_status else []
    result = plan(items, seen, ledger, now=NOW)
    b = _action(result.actions, "b")
    assert b.kind is b_kind  # type: ignore[attr-defined]
    assert b.reason.startswith(b_reason)  # type: ignore[attr-defined]
    c = _action(result.actions, "c")
    if b_kind is A.BLOCKED:
        assert c.kind is A.BLOCKED  # type: ignore[attr-defined]
        assert c.reason == b.reason  # type: ignore[attr-defined]  # names the root cause
    else:
        assert c.kind is A.WAIT  # type: ignore[attr-defined]


def test_condition_complete_accepts_failed_tasks() -> None:
    items = desired(job_yaml("a"), job_yaml("b", "dependsOn: [{job: a, condition: complete}]"))
    a = by_name(items, "a")
    seen = [observed(a, "job-a", S.COMPLETE, total=10, succeeded=9, failed=1)]
    result = plan(items, seen, [recorded(a, "job-a")], now=NOW)
    assert _action(result.actions, "b").kind is A.CREATE  # type: ignore[attr-defined]


def test_stage_then_confirm() -> None:
    items = desired(job_yaml("a"), job_yaml("b", "dependsOn: [{job: a}]\ndependencyPolicy: stage"))
    a, b = by_name(items, "a"), by_name(items, "b")
    first = plan(items, [], [], now=NOW)
    staged = _action(first.actions, "b")
    assert staged.kind is A.STAGE  # type: ignore[attr-defined]
    assert staged.staged  # type: ignore[attr-defined]
    waiting = plan(
        items,
        [observed(a, "job-a", S.ACTIVE, total=4, succeeded=1), observed(b, "job-b", S.SUSPENDED)],
        [recorded(a, "job-a"), recorded(b, "job-b")],
        now=NOW,
    )
    assert _action(waiting.actions, "b").kind is A.WAIT  # type: ignore[attr-defined]
    assert _action(waiting.actions, "b").reason.startswith("staged; waiting for a")  # type: ignore[attr-defined]
    done = plan(
        items,
        [observed(a, "job-a", S.COMPLETE, total=4, succeeded=4), observed(b, "job-b", S.SUSPENDED)],
        [recorded(a, "job-a"), recorded(b, "job-b")],
        now=NOW,
    )
    confirm = _action(done.actions, "b")
    assert (confirm.kind, confirm.job_id) == (A.CONFIRM, "job-b")  # type: ignore[attr-defined]


def test_manual_confirmation_is_never_confirmed() -> None:
    items = desired(job_yaml("a", "confirmation: manual"))
    a = items[0]
    result = plan(items, [observed(a, "job-a", S.SUSPENDED)], [recorded(a, "job-a")], now=NOW)
    action = result.actions[0]
    assert action.kind is A.NOOP
    assert action.awaiting_confirmation
    assert action.reason == "awaiting confirmation: batchctl jobs confirm a"
    assert action.command == "batchctl jobs confirm a"


def test_long_suspended_jobs_are_flagged() -> None:
    items = desired(job_yaml("a", "confirmation: manual"))
    a = items[0]
    old = NOW - 31 * 86400
    result = plan(
        items, [observed(a, "job-a", S.SUSPENDED, created=old)], [recorded(a, "job-a")], now=NOW
    )
    assert (
        "Suspended 31 days: AWS fails jobs left Suspended over 30 days" in result.actions[0].reason
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.ACTIVE, A.SET_PRIORITY),
        (S.SUSPENDED, A.SET_PRIORITY),
        (S.COMPLETE, A.NOOP),
        (S.CANCELLING, A.NOOP),
    ],
)
def test_priority_follows_the_spec_on_live_jobs(status: JobStatus, kind: ActionKind) -> None:
    items = desired(job_yaml("a", "priority: 50"))
    a = items[0]
    result = plan(
        items, [observed(a, "job-a", status, priority=10)], [recorded(a, "job-a")], now=NOW
    )
    action = result.actions[0]
    assert action.kind is kind
    if kind is A.SET_PRIORITY:
        assert action.reason == "priority 10 → 50"
        assert (action.old_priority, action.priority) == (10, 50)


def test_state_cancelled() -> None:
    items = desired(job_yaml("a", "state: cancelled"))
    a = items[0]
    assert plan(items, [], [], now=NOW).actions[0].kind is A.NOOP
    live = plan(items, [observed(a, "job-a", S.ACTIVE)], [recorded(a, "job-a")], now=NOW)
    assert (live.actions[0].kind, live.actions[0].job_id) == (A.CANCEL, "job-a")
    done = plan(items, [observed(a, "job-a", S.CANCELLED)], [recorded(a, "job-a")], now=NOW)
    assert done.actions[0].kind is A.NOOP


def _drifted(on_change: str) -> tuple[list, str]:  # type: ignore[type-arg]
    old = desired(job_yaml("a", f"onChange: {on_change}"))[0]
    new_items = desired(job_yaml("a", f"onChange: {on_change}", op="{tag: {tags: {a: c}}}"))
    return new_items, old.spec_hash


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (S.ACTIVE, A.CANCEL, "; the next generation follows once job job-a is cancelled"),
        (S.CANCELLING, A.WAIT, "; waiting for job job-a to be cancelled"),
        (S.COMPLETE, A.RECREATE, ""),
        (S.CANCELLED, A.RECREATE, ""),
    ],
)
def test_drift_recreates_once_the_old_job_is_final(
    status: JobStatus, kind: ActionKind, reason: str
) -> None:
    items, old_hash = _drifted("recreate")
    old_item = desired(job_yaml("a"))[0]
    a = items[0]
    result = plan(
        items,
        [observed(a, "job-a", status, spec_hash=old_hash)],
        [recorded(a, "job-a", spec_hash=old_hash, immutable=old_item.immutable)],
        now=NOW,
    )
    action = result.actions[0]
    assert (action.kind, action.job_id) == (kind, "job-a")
    assert action.reason == "operation.tag.tags.a changed since generation 1" + reason
    if kind is A.RECREATE:
        assert action.generation == 2


def test_drift_ignored() -> None:
    items, old_hash = _drifted("ignore")
    a = items[0]
    result = plan(
        items,
        [observed(a, "job-a", S.COMPLETE, spec_hash=old_hash)],
        [recorded(a, "job-a", spec_hash=old_hash)],
        now=NOW,
    )
    assert result.actions[0].kind is A.NOOP
    assert "spec drift ignored" in result.actions[0].reason


def test_drift_error_names_the_fields() -> None:
    items, old_hash = _drifted("error")
    old_item = desired(job_yaml("a"))[0]
    a = items[0]
    with pytest.raises(PlanError) as raised:
        plan(
            items,
            [observed(a, "job-a", S.ACTIVE, spec_hash=old_hash)],
            [recorded(a, "job-a", spec_hash=old_hash, immutable=old_item.immutable)],
            now=NOW,
        )
    assert raised.value.problems == [
        "local/a: operation.tag.tags.a changed since generation 1 (job job-a); "
        "onChange: error refuses to recreate it"
    ]


def test_replace_makes_a_new_generation() -> None:
    items = desired(job_yaml("a"))
    a = items[0]
    result = plan(
        items, [observed(a, "job-a", S.FAILED)], [recorded(a, "job-a")], now=NOW, replace=[a.key]
    )
    action = result.actions[0]
    assert (action.kind, action.generation) == (A.RECREATE, 2)
    assert action.reason == "--replace (generation 1 is Failed)"


def test_orphans_and_prune() -> None:
    items = desired(job_yaml("a"))
    gone = desired(job_yaml("old"))[0]
    seen = [observed(gone, "job-old", S.ACTIVE)]
    ledger = [recorded(gone, "job-old")]
    kept = plan(items, seen, ledger, now=NOW)
    assert [(o.name, o.kind) for o in kept.orphans] == [("old", A.NOOP)]
    pruned = plan(items, seen, ledger, now=NOW, prune=True)
    assert [(o.name, o.kind, o.job_id) for o in pruned.orphans] == [("old", A.CANCEL, "job-old")]


def test_a_job_missing_from_the_ledger_is_adopted() -> None:
    items = desired(job_yaml("a"))
    a = items[0]
    result = plan(items, [observed(a, "job-a", S.ACTIVE)], [], now=NOW)
    assert [(r.job_id, r.generation) for r in result.adoptions] == [("job-a", 1)]
    assert result.actions[0].kind is A.NOOP
    assert result.actions[0].job_id == "job-a"


def test_finished_job_gone_from_list_jobs_is_not_run_again() -> None:
    items = desired(job_yaml("a"), job_yaml("b", "dependsOn: [{job: a}]"))
    a = by_name(items, "a")
    result = plan(items, [], [recorded(a, "job-a", S.COMPLETE, total=5, succeeded=5)], now=NOW)
    action = _action(result.actions, "a")
    assert action.kind is A.NOOP  # type: ignore[attr-defined]
    assert "gone from ListJobs; known from the ledger" in action.reason  # type: ignore[attr-defined]
    assert _action(result.actions, "b").kind is A.CREATE  # type: ignore[attr-defined]


def test_a_live_job_that_vanished_blocks() -> None:
    items = desired(job_yaml("a"))
    result = plan(items, [], [recorded(items[0], "job-a", S.ACTIVE)], now=NOW)
    assert result.actions[0].kind is A.BLOCKED
    assert "no longer listed" in result.actions[0].reason


def test_actions_come_in_dependency_order() -> None:
    items = desired(
        job_yaml("z"),
        job_yaml("y", "dependsOn: [{job: z}]"),
        job_yaml("a", "dependsOn: [{job: y}]"),
    )
    assert [a.name for a in plan(items, [], [], now=NOW).actions] == ["z", "y", "a"]


def test_jobs_behind_a_person_are_held_transitively() -> None:
    """first awaits a person; second waits on it, third on second: all three rest."""
    from runner.reconcile.controller import settled

    items = desired(
        job_yaml("first", "confirmation: manual"),
        job_yaml("second", "dependsOn: [{job: first}]"),
        job_yaml("third", "dependsOn: [{job: second}]\ndependencyPolicy: stage"),
        job_yaml("free"),
    )
    first, third = by_name(items, "first"), by_name(items, "third")
    result = plan(
        items,
        [observed(first, "j1", S.SUSPENDED), observed(third, "j3", S.SUSPENDED)],
        [recorded(first, "j1"), recorded(third, "j3")],
        now=NOW,
    )
    second_action = _action(result.actions, "second")
    third_action = _action(result.actions, "third")
    assert second_action.kind is A.WAIT  # type: ignore[attr-defined]
    assert second_action.held_by == ("first",)  # type: ignore[attr-defined]
    assert third_action.kind is A.WAIT  # type: ignore[attr-defined]
    assert third_action.held_by == ("first",)  # type: ignore[attr-defined]
    assert third_action.staged  # type: ignore[attr-defined]
    assert not settled(result)  # "free" is still to be created
    free = by_name(items, "free")
    done = plan(
        items,
        [
            observed(first, "j1", S.SUSPENDED),
            observed(third, "j3", S.SUSPENDED),
            observed(free, "j4", S.COMPLETE),
        ],
        [recorded(first, "j1"), recorded(third, "j3"), recorded(free, "j4")],
        now=NOW,
    )
    assert settled(done)


def test_a_wait_on_running_work_is_not_held() -> None:
    from runner.reconcile.controller import settled

    items = desired(
        job_yaml("first", "confirmation: manual"),
        job_yaml("busy"),
        job_yaml("second", "dependsOn: [{job: first}, {job: busy}]"),
    )
    first, busy = by_name(items, "first"), by_name(items, "busy")
    result = plan(
        items,
        [observed(first, "j1", S.SUSPENDED), observed(busy, "j2", S.ACTIVE, total=4)],
        [recorded(first, "j1"), recorded(busy, "j2")],
        now=NOW,
    )
    assert _action(result.actions, "second").held_by == ()  # type: ignore[attr-defined]
    assert not settled(result)


@pytest.mark.parametrize(
    ("tolerance", "failed", "total", "attention"),
    [
        ("0", 1, 1000, True),
        ("0", 0, 1000, False),
        ("3", 3, 1000, False),
        ("3", 4, 1000, True),
        ('"0.5%"', 5, 1000, False),
        ('"0.5%"', 6, 1000, True),
        ('"100%"', 3, 3, False),
    ],
)
def test_tolerate_failed_tasks(tolerance: str, failed: int, total: int, attention: bool) -> None:
    from runner.reconcile.controller import troubled

    items = desired(
        job_yaml("a", f"tolerateFailedTasks: {tolerance}"),
        job_yaml("b", "dependsOn: [{job: a}]"),
    )
    a = items[0]
    result = plan(
        items,
        [observed(a, "j", S.COMPLETE, total=total, succeeded=total - failed, failed=failed)],
        [recorded(a, "j")],
        now=NOW,
    )
    action = _action(result.actions, "a")
    assert (action.attention is not None) is attention  # type: ignore[attr-defined]
    assert troubled(result) is attention
    # within the tolerance, a `succeeded` dependency holds
    dependent = _action(result.actions, "b")
    assert dependent.kind is (A.BLOCKED if attention else A.CREATE)  # type: ignore[attr-defined]
    if attention:
        assert f"{failed:,} of {total:,} tasks failed" in action.attention  # type: ignore[attr-defined]
        assert action.command == "batchctl report a"  # type: ignore[attr-defined]


def test_failure_reasons_reach_the_action() -> None:
    from runner.jobs.progress import Failure

    items = desired(job_yaml("a"))
    a = items[0]
    record = recorded(a, "j", S.FAILED)
    reason = ("ManifestGenerationFailed", "cannot list s3://medai: NoSuchBucket")
    with_reason = dataclasses.replace(record, failure=Failure(reasons=(reason,)))
    result = plan(items, [observed(a, "j", S.FAILED)], [with_reason], now=NOW)
    action = result.actions[0]
    assert action.reason == (
        "Failed: ManifestGenerationFailed: cannot list s3://medai: NoSuchBucket"
    )
    assert action.attention == "ManifestGenerationFailed: cannot list s3://medai: NoSuchBucket"


def test_a_ten_thousand_job_chain_is_planned() -> None:
    """Every graph walk is iterative: a chain far past Python's recursion limit plans."""
    from runner.reconcile.model import DesiredJob
    from runner.spec.models import Dependency

    base = desired(job_yaml("j0"))[0]
    items = [base]
    for i in range(1, 10_000):
        job = base.job.model_copy(
            update={
                "metadata": base.job.metadata.model_copy(update={"name": f"j{i}"}),
                "spec": base.job.spec.model_copy(
                    update={"depends_on": [Dependency(job=f"j{i - 1}")]}
                ),
            }
        )
        items.append(DesiredJob(job, base.spec_hash, "local", base.immutable))
    result = plan(list(reversed(items)), [], [], now=NOW)
    assert [a.name for a in result.actions[:3]] == ["j0", "j1", "j2"]
    assert result.actions[0].kind is A.CREATE
    assert {a.kind for a in result.actions[1:]} == {A.WAIT}
    assert result.actions[-1].reason == "waiting for j9998: not created yet"


def test_a_failed_job_without_reasons_says_so_once() -> None:
    from runner.backends.memory import MemoryBackend
    from runner.reconcile.failures import read_failure
    from tests.engine.conftest import request

    service = MemoryBackend()
    job_id = service.create_job(request({"untag": {}}, {"generate": {"bucket": "logs"}}))
    service.set_status(job_id, S.FAILED)
    failure = read_failure(service, job_id)
    assert failure.reasons == ()
    assert not failure.text().startswith("Failed")


def test_an_action_changed_is_what_dataclasses_replace_makes() -> None:
    import dataclasses

    from runner.reconcile.model import Action, ActionKind

    base = Action(ActionKind.NOOP, "local", "a", "r", depends_on=("b",), generation=2)
    changes = {"kind": ActionKind.WAIT, "reason": "waits on b", "held_by": ("b",)}
    made = base.changed(**changes)
    assert made == dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    assert hash(made) == hash(dataclasses.replace(base, **changes))  # type: ignore[arg-type]
    assert base.kind is ActionKind.NOOP  # the original is untouched
    with pytest.raises(TypeError, match="no field kinds"):
        base.changed(kinds=ActionKind.WAIT)


GCS_TARGET = (
    "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: g}\nspec:\n  gcs: {project: media-1}"
)


def _on_gcs(name: str, extra: str = "") -> str:
    return job_yaml(name, f"target: g\n{extra}", op="{delete: {}}").replace(
        "{generate: {bucket: logs}}", "{generate: {bucket: logs, prefix: x/}}"
    )


def test_manual_job_on_a_service_without_confirmation_is_held_until_approved() -> None:
    items = desired(
        _on_gcs("a", "confirmation: manual"), _on_gcs("b", "dependsOn: [{job: a}]"), GCS_TARGET
    )
    a = by_name(items, "a")
    held = plan(items, [], [], now=NOW)
    action = _action(held.actions, "a")
    assert (action.kind, action.awaiting_confirmation, action.generation) == (A.NOOP, True, 1)  # type: ignore[attr-defined]
    assert action.command == "batchctl jobs confirm a --target g"  # type: ignore[attr-defined]
    assert not held.changes
    b = _action(held.actions, "b")
    assert (b.kind, b.held_by) == (A.WAIT, ("a",))  # type: ignore[attr-defined]

    approved = plan(items, [], [], now=NOW, approvals=[("g", "a", 1, a.spec_hash)])
    action = _action(approved.actions, "a")
    assert action.kind is A.CREATE  # type: ignore[attr-defined]
    assert "confirmed by a person before it was created" in action.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "approval",
    [("g", "a", 2, "same"), ("g", "a", 1, "another-hash"), ("other", "a", 1, "same")],
    ids=["another-generation", "another-spec", "another-target"],
)
def test_an_approval_holds_for_one_spec_generation_and_target(
    approval: tuple[str, str, int, str],
) -> None:
    items = desired(_on_gcs("a", "confirmation: manual"), GCS_TARGET)
    a = by_name(items, "a")
    given = tuple(a.spec_hash if part == "same" else part for part in approval)
    result = plan(items, [], [], now=NOW, approvals=[given])  # type: ignore[list-item]
    assert result.actions[0].awaiting_confirmation
    assert not result.changes


def test_a_held_job_waits_for_its_dependencies_before_it_asks_a_person() -> None:
    items = desired(
        _on_gcs("a"), _on_gcs("b", "dependsOn: [{job: a}]\nconfirmation: manual"), GCS_TARGET
    )
    result = plan(items, [], [], now=NOW)
    b = _action(result.actions, "b")
    assert (b.kind, b.awaiting_confirmation) == (A.WAIT, False)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "prune", "expected"),
    [
        ("gcs", True, [("old", A.DELETE)]),
        ("gcs", False, []),
        ("aws", True, []),
        ("local", True, []),
    ],
)
def test_prune_deletes_a_finished_job_only_where_the_service_deletes_jobs(
    kind: str, prune: bool, expected: list[tuple[str, ActionKind]]
) -> None:
    items = desired(_on_gcs("a"), GCS_TARGET)
    gone = desired(_on_gcs("old"), GCS_TARGET)[0]
    seen = [observed(gone, "job-old", S.COMPLETE)]
    ledger = [recorded(gone, "job-old", S.COMPLETE)]
    result = plan(items, seen, ledger, now=NOW, prune=prune, target_kinds={"g": kind})
    assert [(o.name, o.kind) for o in result.orphans] == expected
    # once deleted it is no longer listed, and nothing more is planned for it
    after = plan(items, [], ledger, now=NOW, prune=prune, target_kinds={"g": kind})
    assert after.orphans == ()
