"""`batchctl report` and `status` outputs, user templates in the sandbox, no credentials shown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.cli import main
from runner.stores.dirstore import DirStore

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"

JOBS = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: tag-some}
spec:
  description: Tag what exists
  manifest: {csv: {bucket: manifests, key: m.csv}}
  operation: {tag: {tags: {k: v}}}
  report: {bucket: reports, prefix: out}
"""


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose one job ran: 30 objects tagged, 25 missing."""
    root = tmp_path_factory.mktemp("report")
    (root / "jobs.d").mkdir()
    (root / "jobs.d" / "jobs.yaml").write_text(JOBS)
    store = DirStore(root / ".batchctl" / "objects")
    for bucket in ("logs", "reports", "manifests"):
        store.create_bucket(bucket)
    lines = []
    for i in range(30):
        store.put("logs", f"a/{i:02d}", b"x")
        lines.append(f"logs,a/{i:02d}")
    lines += [f"logs,gone/{i:02d}%20x" for i in range(25)]
    store.put("manifests", "m.csv", ("\n".join(lines) + "\n").encode())
    store.close()
    previous = os.getcwd()
    os.chdir(root)
    try:  # 25 failed tasks, none tolerated: the job needs attention (exit 4)
        assert main(["reconcile", "--until-done", "--interval", "0.2"]) == 4
    finally:
        os.chdir(previous)
    return root


def test_report_markdown(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(done)
    capsys.readouterr()
    assert main(["report", "tag-some"]) == 0
    out = capsys.readouterr().out
    assert "— `tag-some`" in out
    assert "| tasks | 55: 30 succeeded, 25 failed (54.55% success) |" in out
    assert "| NoSuchKey | 404 | 25 | `gone/00 x`" in out
    assert "… and 5 more |" in out
    assert "s3://reports/out/job-" in out


def test_report_json_and_by_id(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(done)
    capsys.readouterr()
    assert main(["report", "tag-some", "-o", "json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["spec"]["name"] == "tag-some"
    assert view["totals"]["failed"] == 25
    assert view["failures"][0]["more"] == 5
    job_id = view["job"]["jobId"]
    assert main(["report", job_id, "-o", "html"]) == 0
    html = capsys.readouterr().out
    assert html.startswith("<!DOCTYPE html>")
    assert "gone/24 x" not in html  # only the first 20 keys
    assert main(["report", "no-such-job"]) == 1
    assert "no job 'no-such-job'" in capsys.readouterr().err


def test_user_template_and_sandbox(
    done: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(done)
    good = tmp_path / "mine.txt.j2"
    good.write_text("{{ spec.name }}: {{ totals.succeeded }}/{{ totals.tasks }}\n")
    capsys.readouterr()
    assert main(["report", "tag-some", "--template", str(good)]) == 0
    assert capsys.readouterr().out == "tag-some: 30/55\n"
    evil = tmp_path / "evil.j2"
    evil.write_text("{{ ''.__class__.__mro__ }}")
    assert main(["report", "tag-some", "--template", str(evil)]) == 1
    err = capsys.readouterr().err
    assert "refused by the template sandbox: access to attribute '__class__'" in err
    typo = tmp_path / "typo.j2"
    typo.write_text("{{ summary.nope }}")
    assert main(["status", "--template", str(typo)]) == 1
    assert "has no attribute 'nope'" in capsys.readouterr().err
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\n{% for x in %}\n")
    assert main(["report", "tag-some", "--template", str(broken)]) == 1
    assert f"{broken}:2: template syntax error" in capsys.readouterr().err


def test_status_outputs(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(done)
    capsys.readouterr()
    for output in ("text", "md", "html", "json"):  # 25 failed tasks, none tolerated
        assert main(["status", "-o", output]) == 4
    out = capsys.readouterr().out
    assert "| `tag-some` | local | Complete | 100% (55/55, 25 failed) |" in out
    assert '<span class="badge s-complete">Complete</span>' in out


def test_no_credential_in_any_output(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLESECRET123",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-never-print-me",
        "TENCENTCLOUD_SECRET_ID": "AKIDneverprintme00000",
        "TENCENTCLOUD_SECRET_KEY": "cos-secret-never-print",
        "BATCHCTL_SERVE_SECRET_ACCESS_KEY": "serve-secret-never-print",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(done)
    for argv in (
        ["status"],
        ["status", "-o", "md"],
        ["status", "-o", "html"],
        ["status", "-o", "json"],
        ["plan"],
        ["plan", "-o", "md"],
        ["plan", "-o", "json"],
        ["report", "tag-some"],
        ["report", "tag-some", "-o", "html"],
        ["report", "tag-some", "-o", "json"],
        ["jobs", "list", "-o", "json"],
    ):
        main(argv)
    captured = capsys.readouterr()
    for value in secrets.values():
        assert value not in captured.out + captured.err


def test_status_page_in_chromium(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`)")
    monkeypatch.chdir(done)
    capsys.readouterr()
    assert main(["status", "-o", "html"]) == 4
    page = done / "status.html"
    page.write_text(capsys.readouterr().out, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={done / 'chromium-profile'}",
        "--window-size=1280,500",
        "--enable-logging=stderr",
        "--v=0",
    ]
    taken = subprocess.run(
        [browser, *flags, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    console = [line for line in taken.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "tag-some" in dom.stdout
    assert 'class="bar"' in dom.stdout
    assert 'class="graph"' in dom.stdout  # the pictures survive the browser's parser
    assert 'class="timeline"' in dom.stdout


EXHAUSTING = {
    "width.j2": ("{{ '{0:>1000000000}'.format(1) }}", ":1: template error: a format width"),
    "printf.j2": ("{{ '%.1000000000f'|format(1) }}", ":1: template error: a % format width"),
    "percent.j2": ("{{ '%.1000000000f' % 1 }}", ":1: template error: a % format width"),
    "repeat.j2": ("{{ 'a' * 1000000000 }}", ":1: template error: a repetition"),
    "power.j2": ("{{ 10 ** 100000000 }}", ":1: template error: an exponent"),
    "center.j2": ("{{ 'x'|center(1000000000) }}", ":1: template error: the center filter"),
    "lipsum.j2": ("{{ lipsum(n=1000000) }}", ":1: 'lipsum' is undefined"),
    "index.j2": ("ok\n{{ [1, 2][1] + [1][0] / 0 }}", ":2: template error: ZeroDivisionError"),
    "mutate.j2": (
        "{{ job.update({'status': 'Complete'}) }}",
        ":1: refused by the template sandbox",
    ),
    "doubling.j2": (
        "{% set ns = namespace(x='a') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
        ":1: template error: MemoryError",
    ),
}


@pytest.mark.parametrize("name", sorted(EXHAUSTING))
def test_user_templates_are_bounded(
    name: str,
    done: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exhaustion is refused fast, as the template's error (file and line), never a bug."""
    text, message = EXHAUSTING[name]
    template = tmp_path / name
    template.write_text(text)
    monkeypatch.chdir(done)
    capsys.readouterr()
    assert main(["report", "tag-some", "--template", str(template)]) == 1
    err = capsys.readouterr().err
    assert f"{template}{message}" in err
    assert "internal error" not in err
    assert "this is a bug" not in err


def test_a_slow_template_is_stopped(
    done: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    loops = tmp_path / "loops.j2"
    loops.write_text(
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    )
    monkeypatch.chdir(done)
    started = time.monotonic()
    assert main(["status", "--template", str(loops), "--template-timeout", "1"]) == 1
    assert time.monotonic() - started < 20
    assert "ran for over 1 s and was stopped" in capsys.readouterr().err


def test_a_template_cannot_change_what_later_renders_see(
    done: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.reports.environment import UserTemplateError, render_user_template

    context = {"job": {"status": "Failed", "tags": ["a"]}}
    for text in ("{{ job.update({'status': 'Complete'}) }}", "{{ job.tags.append('b') }}"):
        template = tmp_path / "t.j2"
        template.write_text(text)
        with pytest.raises(UserTemplateError):
            render_user_template(template, context)
    assert context == {"job": {"status": "Failed", "tags": ["a"]}}
    capsys.readouterr()
