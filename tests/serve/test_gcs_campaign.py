"""A campaign reconciled on a gcs target, against the GCS dialect of `engine serve`.

Through Google's official client (REST transport) with a bearer token, as batchctl runs
against storagebatchoperations.googleapis.com: dependencies are sequenced by batchctl
alone (GCS has no priority and no confirmation: batchctl holds the manual step's create
until a person confirms it), and a failed object's error summary reaches `status`.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget

pytest.importorskip("google.cloud.storagebatchoperations_v1")

TOKEN = "campaign-token"


def campaign(endpoint: str) -> str:
    """Put the photos' metadata, hold them, lift the holds, then delete the drafts once a
    person says so.

    Metadata before the hold: the embedded engine puts metadata by copying an object onto
    itself, which a hold refuses on its stores (GCS itself updates a held object's metadata).
    """
    job = (
        "apiVersion: batchctl/v1\nkind: BatchJob\nmetadata: {{name: {name}, labels: "
        "{{campaign: photos}}}}\nspec:\n  target: gcs\n  priority: 20\n"
        "  manifest: {{generate: {{bucket: media, prefix: {prefix}}}}}\n"
        "  operation:\n    {operation}\n{depends}"
    )
    jobs = [
        (
            "describe-photos",
            "photos/",
            "metadata: {contentType: image/jpeg, custom: {reviewed: 'yes'}}",
            None,
        ),
        ("hold-photos", "photos/", "hold: {temporary: true}", "describe-photos"),
        ("release-photos", "photos/", "hold: {temporary: false}", "hold-photos"),
        ("delete-drafts", "drafts/", "delete: {permanent: true}", "release-photos"),
    ]
    documents = [
        job.format(
            name=name,
            prefix=prefix,
            operation=operation,
            depends=f"  dependsOn: [{{job: {after}}}]\n" if after else "",
        )
        + ("  confirmation: manual\n" if name == "delete-drafts" else "")
        for name, prefix, operation, after in jobs
    ]
    target = (
        "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: gcs}\nspec:\n  gcs:\n"
        f"    project: media-prod-1\n    endpoint: '{endpoint}'\n"
    )
    return "---\n".join([*documents, target])


def test_a_campaign_on_gcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    engine_side = LocalBackend(LocalTarget.model_validate({"stateDir": "served"}), tmp_path)
    store = engine_side.store
    store.create_bucket("media")
    for index in range(3):
        store.put("media", f"photos/{index}.jpg", b"jpeg", content_type="application/octet-stream")
    store.put("media", "drafts/a.jpg", b"draft")
    store.put("media", "drafts/b.jpg", b"draft")
    store.put_legal_hold("media", "drafts/b.jpg", None, True)  # held by someone else
    server = EngineServer(engine_side, {"AKID": "secret"}, gcs_token=TOKEN)
    server.start()
    stop = threading.Event()
    worker = threading.Thread(target=engine_side.worker().run, kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        project = tmp_path / "project"
        (project / "jobs.d").mkdir(parents=True)
        (project / "jobs.d" / "photos.yaml").write_text(campaign(server.url))
        monkeypatch.chdir(project)
        monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
        assert main(["validate"]) == 0  # valid: a priority on gcs is only a warning
        warned = capsys.readouterr().err
        assert "spec.priority: has no effect" in warned
        assert warned.count("warning: ") == 4
        assert main(["plan", "--detailed-exitcode"]) == 2  # changes pending
        plan = capsys.readouterr().out
        assert "describe-photos" in plan
        # a person cannot wave the manual step through before its dependencies hold
        assert main(["jobs", "confirm", "delete-drafts"]) == 1
        refused = capsys.readouterr().err
        assert "its dependencies do not hold: waiting for release-photos" in refused
        until_done = ["reconcile", "--until-done", "--interval", "0.3", "--timeout", "180"]
        assert main(until_done) == 0  # stops at the manual step: nothing moves without a person
        out = capsys.readouterr().out
        assert "done: 3 final, 0 need attention, 1 awaiting a person" in out
        assert [o.key for o in store.list("media", "drafts/")] == ["drafts/a.jpg", "drafts/b.jpg"]
        assert len(_jobs(engine_side)) == 3  # held by batchctl: GCS would start it at once
        assert main(["status"]) == 0
        shown = capsys.readouterr().out
        assert "Awaiting confirmation" in shown
        assert "batchctl jobs confirm delete-drafts --target gcs" in shown
        assert main(["jobs", "confirm", "delete-drafts"]) == 0
        said = capsys.readouterr().out
        assert "delete-drafts: confirmed (generation 1) by " in said
        assert main(["jobs", "confirm", "delete-drafts"]) == 1  # once is enough
        assert "delete-drafts is confirmed already" in capsys.readouterr().err
        assert main(until_done) == 4  # a job completed with a failed object
        out = capsys.readouterr().out
        assert "done: 4 final, 1 need attention, 0 awaiting a person" in out
        for index in range(3):
            info = store.head("media", f"photos/{index}.jpg")
            assert info.content_type == "image/jpeg"
            assert info.metadata == {"reviewed": "yes"}
            assert not store.get_legal_hold("media", f"photos/{index}.jpg")
        # a permanent delete leaves the held draft and nothing of the other
        assert [o.key for o in store.list("media", "drafts/")] == ["drafts/b.jpg"]
        # the ordering was batchctl's: each job was created after the one it depends on ended
        jobs = {j.description.split("[batchctl:")[1].split(":")[0]: j for j in _jobs(engine_side)}
        order = ["describe-photos", "hold-photos", "release-photos", "delete-drafts"]
        for before, after in itertools.pairwise(order):
            assert jobs[before].terminated_at <= jobs[after].created_at
        assert main(["status", "-o", "json"]) == 4
        import json

        status = json.loads(capsys.readouterr().out)
        failed = next(a for a in status["actions"] if a["name"] == "delete-drafts")
        assert "PERMISSION_DENIED" in json.dumps(failed)
        # GCS writes no completion report: `report` shows the job's error summaries
        assert main(["report", "delete-drafts", "--target", "gcs"]) == 0
        report = capsys.readouterr().out
        assert "no completion report lists them (GCS writes none)" in report
        assert "PERMISSION_DENIED" in report
        assert "gs://media/drafts/b.jpg" in report
        assert main(["jobs", "confirm", "delete-drafts"]) == 1
        assert "exists already: gcs jobs start when created" in capsys.readouterr().err
        argv = ["jobs", "history", "delete-drafts", "-o", "json"]
        events = json.loads(_run(main, capsys, argv))["events"]
        approval = next(e for e in events if e["to"] == "approve")
        assert approval["reason"].startswith("confirmed by ")
        assert events.index(approval) < events.index(next(e for e in events if e["to"] == "create"))
        # nothing more to do; no priority change is ever planned on gcs
        assert main(["plan"]) == 0
        assert "0 to create, 0 to recreate, 0 to change, 0 to cancel" in capsys.readouterr().out
        # a removed spec's finished job is deleted from GCS by --prune; the ledger keeps it
        spec = project / "jobs.d" / "photos.yaml"
        spec.write_text(campaign(server.url).replace(_document(spec, "delete-drafts"), ""))
        assert main(["plan", "--prune"]) == 0  # exit 0: the orphans alone change nothing yet
        shown = capsys.readouterr().out
        assert "-   delete-drafts (gcs) [orphan, job delete-drafts-" in shown
        assert "the finished job is deleted from the service" in shown
        assert main(["apply", "--prune", "--yes"]) == 0
        capsys.readouterr()
        listed = json.loads(_run(main, capsys, ["jobs", "list", "--target", "gcs", "-o", "json"]))
        assert sorted(j["name"] for j in listed["jobs"]) == order[:3]
        assert "4 job record(s)" in _run(main, capsys, ["state", "show"])
        assert main(["plan", "--prune"]) == 0
        assert "0 to cancel;" in capsys.readouterr().out  # deleted once, not again
    finally:
        stop.set()
        worker.join()
        server.shutdown()
        engine_side.close()


def _document(path: Path, name: str) -> str:
    """The YAML document of job ``name`` (with its separator) in ``path``."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"metadata: {{name: {name},")
    start = text.rindex("apiVersion", 0, start)
    return text[start : text.index("---\n", start) + 4]


def _run(main, capsys, argv):  # type: ignore[no-untyped-def]
    assert main(argv) == 0
    return capsys.readouterr().out


def _jobs(backend: LocalBackend) -> list:  # type: ignore[type-arg]
    return backend.list_jobs(max_results=1000).jobs
