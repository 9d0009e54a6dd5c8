"""Rules across resources: names, targets, dependencies, capabilities, description budget.

Pure functions over a ``SpecSet``. Each error is placed at the field that
causes it, and names the other place where two places are involved.
"""

from __future__ import annotations

import difflib

from runner.spec.capabilities import CAPABILITIES, check_job
from runner.spec.errors import SpecError
from runner.spec.identity import description_budget
from runner.spec.loader import LoadedJob, LoadedTarget, SpecSet

JobKey = tuple[str, str]


def check_all(specs: SpecSet) -> list[SpecError]:
    """Every cross-resource error of ``specs``."""
    errors: list[SpecError] = []
    jobs = _unique_jobs(specs, errors)
    _check_local_target(specs, errors)
    for loaded in specs.jobs:
        _check_target(loaded, specs, errors)
        _check_description(loaded, errors)
    _check_dependencies(specs.jobs, jobs, errors, specs.invalid_job_names)
    _check_cycles(jobs, errors)
    return errors


def warnings_of(specs: SpecSet) -> list[SpecError]:
    """What is valid but does nothing: a priority written for a target that has none."""
    found: list[SpecError] = []
    for loaded in specs.jobs:
        target = specs.targets.get(loaded.job.spec.target)
        if target is None or CAPABILITIES[target.kind].priority:
            continue
        if "priority" in loaded.job.spec.model_fields_set:
            found.append(
                loaded.doc.error(
                    ("spec", "priority"),
                    f"has no effect: target {loaded.job.spec.target!r} is "
                    f"{CAPABILITIES[target.kind].title}, which has no priority; batchctl "
                    "orders dependent jobs itself",
                )
            )
    return found


def _where(loaded: LoadedJob) -> str:
    line, _ = loaded.doc.locate(("metadata", "name"))
    return f"{loaded.doc.file}:{line}"


def _unique_jobs(specs: SpecSet, errors: list[SpecError]) -> dict[JobKey, LoadedJob]:
    jobs: dict[JobKey, LoadedJob] = {}
    for loaded in specs.jobs:
        first = jobs.get(loaded.key)
        if first is not None:
            target, name = loaded.key
            errors.append(
                loaded.doc.error(
                    ("metadata", "name"),
                    f"job {name!r} is declared twice on target {target!r}: "
                    f"here and at {_where(first)}",
                )
            )
            continue
        jobs[loaded.key] = loaded
    return jobs


def _check_local_target(specs: SpecSet, errors: list[SpecError]) -> None:
    local = specs.targets.get("local")
    if local is not None and local.doc is not None and local.kind != "local":
        errors.append(
            local.doc.error(
                ("spec", local.kind),
                "the target named 'local' is the embedded engine: it may only hold a local block",
            )
        )


def _check_target(loaded: LoadedJob, specs: SpecSet, errors: list[SpecError]) -> None:
    name = loaded.job.spec.target
    target = specs.targets.get(name)
    if target is None:
        known = sorted(specs.targets)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; declared: {', '.join(known)}"
        errors.append(loaded.doc.error(("spec", "target"), f"unknown target {name!r}{hint}"))
        return
    for path, message in check_job(loaded.job, CAPABILITIES[target.kind]):
        errors.append(loaded.doc.error(path, message))
    _check_staging(loaded, target, errors)


def _check_staging(loaded: LoadedJob, target: LoadedTarget, errors: list[SpecError]) -> None:
    """Manifests batchctl uploads itself need a staging bucket on the service's side."""
    manifest = loaded.job.spec.manifest
    spec = target.target.spec
    staging = spec.aws.staging_bucket if spec.aws else spec.cos.staging_bucket if spec.cos else ""
    uploaded = manifest.file is not None or (spec.cos is not None and manifest.generate)
    if uploaded and staging is None:
        kind = manifest.choice
        why = "is uploaded" if kind == "file" else "is listed by batchctl and uploaded"
        errors.append(
            loaded.doc.error(
                ("spec", "manifest", kind),
                f"manifest {kind!r} {why} to the target's stagingBucket, and target "
                f"{loaded.job.spec.target!r} has none",
            )
        )


def _check_description(loaded: LoadedJob, errors: list[SpecError]) -> None:
    name = loaded.job.metadata.name
    size = len(loaded.job.spec.description.encode())
    budget = description_budget(name)
    if size > budget:
        errors.append(
            loaded.doc.error(
                ("spec", "description"),
                f"is {size} bytes; at most {budget} fit, because the service allows 256 and "
                f"batchctl appends ' [batchctl:{name}:<16-hex hash>]' "
                f"({256 - budget} bytes) to recognise the job",
            )
        )


def _dep_key(loaded: LoadedJob, index: int) -> JobKey:
    dep = loaded.job.spec.depends_on[index]
    return (dep.target or loaded.job.spec.target, dep.job)


def _check_dependencies(
    all_jobs: list[LoadedJob],
    jobs: dict[JobKey, LoadedJob],
    errors: list[SpecError],
    invalid: set[str],
) -> None:
    for loaded in all_jobs:
        seen: set[JobKey] = set()
        for index in range(len(loaded.job.spec.depends_on)):
            key = _dep_key(loaded, index)
            path = ("spec", "dependsOn", index, "job")
            if key in seen:
                errors.append(loaded.doc.error(path, f"job {key[1]!r} is listed twice"))
                continue
            seen.add(key)
            if key not in jobs and key[1] not in invalid:
                names = sorted(n for t, n in jobs if t == key[0])
                close = difflib.get_close_matches(key[1], names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(
                    loaded.doc.error(path, f"no job named {key[1]!r} on target {key[0]!r}{hint}")
                )


def _check_cycles(jobs: dict[JobKey, LoadedJob], errors: list[SpecError]) -> None:
    graph = {
        key: [
            _dep_key(loaded, i)
            for i in range(len(loaded.job.spec.depends_on))
            if _dep_key(loaded, i) in jobs
        ]
        for key, loaded in jobs.items()
    }
    done: set[JobKey] = set()
    reported: set[tuple[JobKey, ...]] = set()

    # Iterative DFS: a campaign may hold thousands of jobs in one chain.
    for start in sorted(graph):
        if start in done:
            continue
        stack: list[tuple[JobKey, int]] = [(start, 0)]
        on_path: list[JobKey] = [start]
        on_path_set = {start}
        while stack:
            node, i = stack[-1]
            children = graph[node]
            if i >= len(children):
                stack.pop()
                on_path.pop()
                on_path_set.discard(node)
                done.add(node)
                continue
            stack[-1] = (node, i + 1)
            child = children[i]
            if child in on_path_set:
                cycle = on_path[on_path.index(child) :]
                _report_cycle(cycle, jobs, reported, errors)
            elif child not in done:
                stack.append((child, 0))
                on_path.append(child)
                on_path_set.add(child)


def _report_cycle(
    cycle: list[JobKey],
    jobs: dict[JobKey, LoadedJob],
    reported: set[tuple[JobKey, ...]],
    errors: list[SpecError],
) -> None:
    pivot = cycle.index(min(cycle))
    ordered = tuple(cycle[pivot:] + cycle[:pivot])
    if ordered in reported:
        return
    reported.add(ordered)
    first = jobs[ordered[0]]
    successor = ordered[1] if len(ordered) > 1 else ordered[0]
    index = next(
        i for i in range(len(first.job.spec.depends_on)) if _dep_key(first, i) == successor
    )
    names = " → ".join(name for _, name in (*ordered, ordered[0]))
    errors.append(
        first.doc.error(("spec", "dependsOn", index, "job"), f"dependency cycle: {names}")
    )
