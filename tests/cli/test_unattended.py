"""Unattended runs (issue 13): cron and CI never hang, never jump a dependency, and say
who must act and why. Every `--until-done` here has a `--timeout`, so a regression that
would loop forever fails in seconds instead."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.cli import main
from runner.state.ledger.sqlite import SqliteLedger
from runner.stores.dirstore import DirStore
from runner.support.filelock import FileLock
from tests.reconcile.helpers import job_yaml as job

REPO = Path(__file__).resolve().parents[2]
UNTIL_DONE = ["reconcile", "--until-done", "--interval", "0.1", "--timeout", "60"]


def project(root: Path, *documents: str, objects: int = 3) -> Path:
    (root / "jobs.d").mkdir(parents=True, exist_ok=True)
    (root / "jobs.d" / "jobs.yaml").write_text("\n---\n".join(documents) + "\n")
    store = DirStore(root / ".batchctl" / "objects")
    store.create_bucket("logs")
    for i in range(objects):
        store.put("logs", f"k{i}", b"x")
    store.close()
    return root


def records(root: Path) -> dict[str, str]:
    ledger = SqliteLedger(root / ".batchctl" / "ledger.db")
    try:
        return {r.name: r.status.value for r in ledger.records()}
    finally:
        ledger.close()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


CHAIN = (
    job("restore", "priority: 30"),
    job("copy", "confirmation: manual\ndependsOn: [{job: restore}]"),
    job("finish", "dependsOn: [{job: copy}]", op="{untag: {}}"),
)


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return project(tmp_path, *CHAIN)


# -- 1. --until-done returns when only a person can move things on --------------


def test_chain_with_a_manual_step_runs_up_to_the_person_then_to_the_end(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert main(UNTIL_DONE) == 0
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out
    assert "done: 1 final, 0 need attention, 1 awaiting a person" in out
    assert "? copy: batchctl jobs confirm copy" in out
    assert "… finish: held until copy is confirmed" in out
    assert records(chain) == {"restore": "Complete", "copy": "Suspended"}

    assert main(["jobs", "confirm", "copy"]) == 0
    assert main(UNTIL_DONE) == 0
    out = capsys.readouterr().out
    assert "done: 3 final, 0 need attention, 0 awaiting a person" in out
    assert records(chain) == {"restore": "Complete", "copy": "Complete", "finish": "Complete"}
    store = DirStore(chain / ".batchctl" / "objects")
    assert store.get_tags("logs", "k0") == {}  # tagged by copy, untagged by finish
    store.close()


@pytest.mark.parametrize("policy", ["create-after", "stage"])
def test_until_done_returns_when_a_dependency_awaits_a_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    monkeypatch.chdir(tmp_path)
    project(
        tmp_path,
        job("first", "confirmation: manual"),
        job("second", f"dependsOn: [{{job: first}}]\ndependencyPolicy: {policy}"),
    )
    assert main(UNTIL_DONE) == 0
    out = capsys.readouterr().out
    assert "? first: batchctl jobs confirm first" in out
    assert "… second: held until first is confirmed" in out


def test_until_done_in_a_subprocess_comes_back_by_itself(chain: Path) -> None:
    """As cron runs it: a real process, no terminal, a hard limit from outside."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "reconcile", "--until-done", "--interval", "0.2"],
        cwd=chain,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "batchctl jobs confirm copy" in done.stdout


# -- 2. jobs confirm keeps the sequencing --------------------------------------

STAGED = (
    job("first", "confirmation: manual"),
    job("second", "dependsOn: [{job: first}]\ndependencyPolicy: stage", op="{delete: {}}"),
)


def test_confirming_a_staged_job_is_refused_until_its_dependencies_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, *STAGED)
    assert main(UNTIL_DONE) == 0
    capsys.readouterr()
    assert records(tmp_path) == {"first": "Suspended", "second": "Suspended"}

    assert main(["jobs", "confirm", "second"]) == 1
    err = capsys.readouterr().err
    assert "refusing to confirm second" in err
    assert "first: awaiting confirmation" in err
    assert "--force" in err
    ledger = SqliteLedger(tmp_path / ".batchctl" / "ledger.db")
    second_id = next(r.job_id for r in ledger.records() if r.name == "second")
    ledger.close()
    assert main(["jobs", "confirm", second_id]) == 1  # by ID too
    capsys.readouterr()

    # a staged job and one awaiting a person look different everywhere
    assert main(["jobs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "second  Suspended (staged)" in listed
    assert "first   Suspended (awaiting confirmation)" in listed
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "first   Awaiting confirmation" in status
    assert "second  Staged" in status
    assert main(["status", "-o", "html"]) == 0
    page = capsys.readouterr().out
    assert 'class="badge s-awaiting-confirmation">Awaiting confirmation' in page
    assert 'class="badge s-staged">Staged' in page

    assert main(["jobs", "confirm", "second", "--force"]) == 0
    captured = capsys.readouterr()
    assert "warning: confirming job" in captured.err
    assert "Ready" in captured.out


def test_confirming_the_job_that_awaits_a_person_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, *STAGED)
    assert main(UNTIL_DONE) == 0
    assert main(["jobs", "confirm", "first"]) == 0
    assert main(UNTIL_DONE) == 0
    assert records(tmp_path) == {"first": "Complete", "second": "Complete"}
    capsys.readouterr()


# -- 3 and 4. failed tasks and failure reasons reach the alert -----------------


def _missing_keys(root: Path, tolerate: str | None = None) -> None:
    (root / "jobs.d" / "missing.csv").write_text("logs,nope-1\nlogs,nope-2\nlogs,nope-3\n")
    extra = f"tolerateFailedTasks: {tolerate}" if tolerate is not None else ""
    spec = job("bad", extra).replace("{generate: {bucket: logs}}", "{file: missing.csv}")
    (root / "jobs.d" / "jobs.yaml").write_text(spec + "\n")


def test_failed_tasks_need_attention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, job("bad"))
    _missing_keys(tmp_path)
    assert main(UNTIL_DONE) == 4
    out = capsys.readouterr().out
    assert "done: 1 final, 1 need attention, 0 awaiting a person" in out
    assert (
        "✗ bad: 3 of 3 tasks failed (tolerateFailedTasks: 0); top error NoSuchKey (3 tasks)"
        " — batchctl report bad"
    ) in out
    assert main(["status"]) == 4
    assert "top error NoSuchKey (3 tasks)" in capsys.readouterr().out
    assert main(["status", "-o", "json"]) == 4
    view = json.loads(capsys.readouterr().out)
    assert view["actions"][0]["topError"] == {"code": "NoSuchKey", "count": 3}
    assert view["attention"][0]["name"] == "bad"

    _missing_keys(tmp_path, "3")  # tolerated: no drift, no new job, no alert
    assert main(["status"]) == 0
    assert "within tolerateFailedTasks (3)" in capsys.readouterr().out
    _missing_keys(tmp_path, '"50%"')
    assert main(["status"]) == 4
    _missing_keys(tmp_path, '"100%"')
    assert main(["status"]) == 0
    capsys.readouterr()


def test_a_bad_tolerance_is_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, job("bad", 'tolerateFailedTasks: "lots"'))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "jobs.yaml:7:3: spec.tolerateFailedTasks:" in out
    assert "neither a count (3) nor a percentage" in out


BROKEN = job("broken").replace(
    "{generate: {bucket: logs}}", "{csv: {bucket: logs, key: no-such-manifest.csv}}"
)


def test_failure_reasons_are_shown_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, BROKEN, job("after", "dependsOn: [{job: broken}]"))
    reason = "ManifestNotFound: cannot read manifest s3://logs/no-such-manifest.csv"
    assert main(UNTIL_DONE) == 4
    out = capsys.readouterr().out
    assert f"broken: Failed: {reason}" in out  # the line of the pass
    assert f"✗ broken: {reason}" in out  # the summary
    assert "— batchctl jobs describe broken" in out
    for output in ("text", "md", "html"):
        assert main(["status", "-o", output]) == 4
        assert reason in capsys.readouterr().out, output
    assert main(["status", "-o", "json", "-v"]) == 4
    captured = capsys.readouterr()
    broken = json.loads(captured.out)["actions"][0]
    assert broken["failureReasons"][0]["code"] == "ManifestNotFound"
    assert "DescribeJob" not in captured.err  # read once, then kept in the ledger


# -- 5. read-only use writes nothing -------------------------------------------


def test_plan_no_lock_status_and_state_show_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "jobs.yaml").write_text(job("one") + "\n")
    assert main(["plan", "--no-lock"]) == 0
    assert main(["status"]) == 0
    assert main(["state", "show"]) == 0
    assert main(["jobs", "list"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.d"]
    capsys.readouterr()


def test_reading_commands_leave_every_file_as_it_was(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(UNTIL_DONE) == 0
    # Statements the run left unfinalised close their connections when collected, and the
    # last close checkpoints the WAL: let that happen now, not during the reads below.
    gc.collect()
    before = snapshot(chain)
    for argv in (
        ["plan", "--no-lock"],
        ["status"],
        ["status", "-o", "html"],
        ["state", "show"],
        ["jobs", "list"],
        ["jobs", "history", "restore"],
    ):
        assert main(argv) == 0, argv
    assert snapshot(chain) == before
    capsys.readouterr()


def test_status_does_not_wait_for_a_running_reconcile(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = FileLock(chain / ".batchctl" / "reconcile.lock")
    lock.acquire()
    try:
        assert main(["status"]) == 0
        assert "restore" in capsys.readouterr().out
    finally:
        lock.release()


def _read_only_mount(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    script = (
        f'mount --bind "{root}" "{root}" && mount -o remount,bind,ro "{root}" && '
        f'cd "{root}" && exec "{sys.executable}" -m runner ' + " ".join(argv)
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reading_commands_work_on_a_read_only_file_system(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = _read_only_mount(chain, ["--version"])
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip(f"no read-only bind mount here (unshare -rm): {probe.stderr.strip()}")
    assert main(UNTIL_DONE) == 0
    capsys.readouterr()
    for argv in (["status"], ["plan", "--no-lock"], ["state", "show"], ["jobs", "list"]):
        done = _read_only_mount(chain, argv)
        assert done.returncode == 0, (argv, done.stderr)
        assert "internal error" not in done.stderr
    status = _read_only_mount(chain, ["status"])
    assert "Awaiting confirmation" in status.stdout
    refused = _read_only_mount(chain, ["apply", "--yes"])
    assert refused.returncode == 1
    assert "internal error" not in refused.stderr


# -- 6. the wrong folder leaves no litter; -C and --dir -------------------------


def test_a_folder_without_a_project_is_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["status"],
        ["plan"],
        ["apply", "--yes"],
        ["reconcile"],
        ["state", "show"],
        ["jobs", "list"],
        ["report", "x"],
        ["engine", "run", "--once"],
        ["demo", "init"],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"no jobs folder here: {tmp_path / 'jobs.d'} does not exist" in err, argv
    assert list(tmp_path.iterdir()) == []


def test_chdir_and_dir_name_the_project(
    chain: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chdir(elsewhere)
    assert main(["-C", str(chain), "status"]) == 0
    assert "restore" in capsys.readouterr().out
    os.chdir(elsewhere)
    assert main(["status", "--dir", str(chain / "jobs.d")]) == 0
    assert main(["jobs", "list", "--dir", str(chain / "jobs.d")]) == 0
    assert main(["validate", "--dir", str(chain / "jobs.d")]) == 0
    assert main(["status", str(chain / "jobs.d"), "--dir", str(elsewhere)]) == 64
    assert main(["-C", str(elsewhere / "nope"), "status"]) == 64
    assert list(elsewhere.iterdir()) == []
    capsys.readouterr()


# -- 7. names, not UUIDs ---------------------------------------------------------


def test_jobs_commands_take_spec_names(chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(UNTIL_DONE) == 0
    capsys.readouterr()
    assert main(["jobs", "describe", "restore"]) == 0
    assert "Name:         restore (target local)" in capsys.readouterr().out
    assert main(["jobs", "priority", "copy", "7"]) == 0
    assert "priority 7" in capsys.readouterr().out
    assert main(["jobs", "list", "--name", "copy", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["jobs"]
    assert [(j["name"], j["priority"]) for j in listed] == [("copy", 7)]
    assert main(["jobs", "list"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split()[:4] == ["JOB", "ID", "NAME", "STATUS"]
    assert main(["jobs", "cancel", "finish"]) == 1
    assert "finish has no job on target local yet" in capsys.readouterr().err

    assert main(["jobs", "history", "restore"]) == 0
    history = capsys.readouterr().out
    assert "(restore on local)" in history
    assert "engine    New → Preparing: reading the manifest" in history
    assert "Completing → Complete" in history
    assert "batchctl  create" in history
    assert main(["jobs", "history", "copy", "-o", "json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["to"] for e in events if e["source"] == "engine"][-1] == "Suspended"


# -- 8. --timeout is honoured, and says what is pending ----------------------------


def test_timeout_is_kept_within_a_second_and_exits_2(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = FileLock(chain / ".batchctl" / "engine.lock")  # a "worker" that never works
    worker.acquire()
    try:
        for extra in (["--detailed-exitcode"], []):
            started = time.monotonic()
            code = main(
                ["reconcile", "--until-done", "--interval", "5", "--timeout", "1.5", *extra]
            )
            took = time.monotonic() - started
            assert code == 2, extra
            assert took < 1.5 + 1.5, took  # the old loop slept a whole interval past it
            out = capsys.readouterr().out
            assert "--timeout: not done after 1.5 s; still pending: restore (New)" in out
    finally:
        worker.release()


# -- 9. apply never approves itself --------------------------------------------


def test_apply_without_a_terminal_needs_yes(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply"]) == 1
    assert "no terminal to confirm on; pass --yes" in capsys.readouterr().err
    assert not (chain / ".batchctl" / "ledger.db").exists() or records(chain) == {}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "apply", "jobs.d"],
        cwd=chain,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no terminal to confirm on; pass --yes" in done.stderr
    assert records(chain) == {}


# -- 10. nothing runs the engine ----------------------------------------------------


def test_status_says_when_no_engine_runs(chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "--yes"]) == 0
    assert "no engine is running for target local" in capsys.readouterr().err
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "no engine is running for target local: restore (New) will not move until" in out
    assert "`batchctl engine run`" in out
    worker = FileLock(chain / ".batchctl" / "engine.lock")
    worker.acquire()
    try:
        assert main(["status"]) == 0
        assert "no engine is running" not in capsys.readouterr().out
    finally:
        worker.release()


# -- 11. campaigns group the status and narrow a run --------------------------------

CAMPAIGNS = (
    job("alpha-one").replace(
        "metadata: {name: alpha-one}", "metadata: {name: alpha-one, campaign: alpha}"
    ),
    job("beta-one").replace(
        "metadata: {name: beta-one}", "metadata: {name: beta-one, campaign: beta}"
    ),
)


def test_campaigns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, *CAMPAIGNS)
    assert main(["apply", "--yes", "--campaign", "alpha"]) == 0
    assert set(records(tmp_path)) == {"alpha-one"}
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "campaign alpha: 1 job, 0 complete" in out
    assert "campaign beta: 1 job, 0 complete" in out
    assert main(["status", "--campaign", "beta"]) == 0
    out = capsys.readouterr().out
    assert "beta-one" in out
    assert "alpha-one" not in out
    assert main(["status", "-o", "html"]) == 0
    assert "<h2>campaign alpha</h2>" in capsys.readouterr().out
    assert main(["status", "-o", "md"]) == 0
    assert "#### campaign beta" in capsys.readouterr().out
    assert main([*UNTIL_DONE, "--campaign", "beta"]) == 0
    assert records(tmp_path)["beta-one"] == "Complete"
    assert main(["plan", "--campaign", "gamma"]) == 64
    assert "campaigns: alpha, beta" in capsys.readouterr().err


# -- 12. wording and small defects ---------------------------------------------------


def test_no_doubled_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, BROKEN, job("after", "dependsOn: [{job: broken}]"), job("gone"))
    main(UNTIL_DONE)
    project(tmp_path, BROKEN, job("after", "dependsOn: [{job: broken}]"))  # gone's spec removed
    outputs = [capsys.readouterr().out]
    for argv in (["plan"], ["status"], ["status", "-o", "md"], ["status", "-o", "html"]):
        main(argv)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    text = "\n".join(outputs)
    for doubled in ("blocked: blocked:", "orphan: orphan:", "Failed: Failed", "Waiting: waiting"):
        assert doubled not in text


def test_status_columns_line_up(chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(UNTIL_DONE) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()]
    rows = [r for r in rows if r.split()[0] in ("restore", "copy", "finish")]
    assert len(rows) == 3
    starts = {line.index(line.split()[1]) for line in rows}
    assert len(starts) == 1, rows


def test_the_plan_records_nothing_but_says_what_apply_will(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--yes"]) == 0
    (chain / ".batchctl" / "ledger.db").unlink()  # a crash between CreateJob and the record
    capsys.readouterr()
    assert main(["plan", "--no-lock"]) == 0
    out = capsys.readouterr().out
    assert "found by its marker; applying records it as generation 1" in out
    assert not (chain / ".batchctl" / "ledger.db").exists()


def test_ctrl_c_says_what_it_was_doing(
    chain: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("runner.cli.reconcile.time.sleep", interrupt)
    assert main(["reconcile", "--watch"]) == 130
    err = capsys.readouterr().err
    assert "interrupted while waiting for the next pass" in err
    assert "re-running the same command is safe" in err


def test_options_that_contradict_are_refused(
    chain: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--watch", "--until-done"]) == 64
    assert "choose one" in capsys.readouterr().err
    assert not (chain / ".batchctl" / "ledger.db").exists()


def test_version_and_exit_codes_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("batchctl 0.1.0")
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "4 ", "64 ", "130 "):
        assert f"  {code}" in text, code
    assert main(["status", "--help"]) == 0
    assert "4 a job is Failed" in capsys.readouterr().out


def test_schema_check_tells_missing_from_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["schema", "--check"]) == 1
    err = capsys.readouterr().err
    assert "schemas/batchjob.v1.json is missing" in err
    assert "stale" not in err
    assert main(["schema"]) == 0
    (tmp_path / "schemas" / "target.v1.json").write_text("{}")
    assert main(["schema", "--check"]) == 1
    assert "schemas/target.v1.json is stale" in capsys.readouterr().err


def test_tracked_files_are_not_ignored() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO,
        input=tracked,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert ignored == ""


def test_the_project_documents_its_own_architecture() -> None:
    architecture = REPO / "docs" / "architecture.md"
    assert architecture.is_file()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/architecture.md" in readme
    for path in [REPO / "README.md", *REPO.glob("tests/**/*.py"), *REPO.glob("runner/**/*.py")]:
        if path != Path(__file__):
            assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path
