"""The example campaign reconciled on a cos target, against the COS dialect of `engine serve`.

The campaign moves by its target alone, less what COS lacks (checksum, so the
verify step; the delete then follows the copy) and with COS's bucket names
(``name-APPID``). Objects live on a real S3 server (moto) that plays COS's
S3-compatible endpoint for manifests and reports; every job call is q-signed
and verified.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget

KEY, SECRET = "AKIDCOSCAMPAIGN", "cos-campaign-secret"
APPID = "1250000000"


def cos_campaign(repo: Path) -> str:
    """jobs.d/log-archive.yaml for a target named `cos`."""
    text = (repo / "jobs.d" / "log-archive.yaml").read_text(encoding="utf-8")
    documents = []
    for doc in text.split("\n---\n"):
        if "name: verify-archive" in doc:
            continue
        doc = doc.replace(
            "dependsOn: [{job: verify-archive}]", "dependsOn: [{job: archive-2024-logs}]"
        )
        doc = re.sub(r"bucket: (logs|archive|reports)\b", rf"bucket: \1-{APPID}", doc)
        lines = [line for line in doc.splitlines() if "  target: local" not in line]
        documents.append("\n".join(lines).replace("\nspec:\n", "\nspec:\n  target: cos\n", 1))
    return "\n---\n".join(documents)


def test_the_example_campaign_on_cos(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.cli import main
    from runner.stores.s3 import S3ObjectStore
    from tests.servers import CREDENTIALS, reset_moto

    repo = Path(__file__).resolve().parents[2]
    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COS_SECRET_ID", KEY)
    monkeypatch.setenv("COS_SECRET_KEY", SECRET)
    # the engine's own keys to its store (the S3 server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    reset_moto(moto_endpoint)
    objects = S3ObjectStore(moto_endpoint, "us-east-1", credentials=CREDENTIALS)
    for bucket in ("logs", "archive", "reports", "staging"):
        objects.create_bucket(f"{bucket}-{APPID}")
    for day in range(1, 6):
        objects.put(f"logs-{APPID}", f"2024/01/{day:02d}/app-000.log", b"line\n")
    objects.put(f"logs-{APPID}", "2024/README.txt", b"not a log\n")
    engine_side = LocalBackend(
        LocalTarget.model_validate(
            {"stateDir": "served", "store": {"s3": {"endpointUrl": moto_endpoint}}}
        ),
        tmp_path,
    )
    server = EngineServer(engine_side, {KEY: SECRET}, cos_region="ap-guangzhou")
    server.start()
    stop = threading.Event()
    worker = threading.Thread(target=engine_side.worker().run, kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        project = tmp_path / "project"
        (project / "jobs.d").mkdir(parents=True)
        (project / "jobs.d" / "targets.yaml").write_text(
            "apiVersion: batchctl/v1\nkind: Target\nmetadata: {name: cos}\nspec:\n  cos:\n"
            f"    uin: '100000000001'\n    appId: '{APPID}'\n    region: ap-guangzhou\n"
            f"    endpoint: '{server.url}'\n    stagingBucket: staging-{APPID}\n"
            f"    s3EndpointUrl: '{moto_endpoint}'\n"
        )
        (project / "jobs.d" / "log-archive.yaml").write_text(cos_campaign(repo))
        monkeypatch.chdir(project)
        assert main(["validate"]) == 0
        capsys.readouterr()
        until_done = ["reconcile", "--until-done", "--interval", "0.3", "--timeout", "180"]
        assert main(until_done) == 0
        out = capsys.readouterr().out
        assert "done: 2 final, 0 need attention, 1 awaiting a person" in out
        assert objects.get_tags(f"logs-{APPID}", "2024/01/03/app-000.log") == {
            "class": "archive",
            "year": "2024",
        }
        archived = list(objects.list(f"archive-{APPID}", "2024/"))
        assert len(archived) == 5
        assert {o.storage_class for o in archived} == {"STANDARD_IA"}
        # the delete waits for a person: confirmed through the COS API, then it runs
        assert main(["jobs", "list", "--target", "cos", "--status", "Suspended"]) == 0
        listing = capsys.readouterr().out
        waiting = re.findall(
            r"^(\S+)\s+delete-2024-originals\s+Suspended \(awaiting confirmation\)", listing, re.M
        )
        assert len(waiting) == 1, listing
        assert main(["jobs", "confirm", "delete-2024-originals"]) == 0  # by name, on its target
        capsys.readouterr()
        assert main(until_done) == 0
        assert "done: 3 final, 0 need attention, 0 awaiting a person" in (capsys.readouterr().out)
        assert [o.key for o in objects.list(f"logs-{APPID}", "2024/")] == ["2024/README.txt"]
        # the completion report, read back through COS's S3 endpoint
        assert main(["report", "archive-2024-logs", "--target", "cos", "-o", "json"]) == 0
        import json

        view = json.loads(capsys.readouterr().out)
        assert view["totals"]["tasks"] == 5
        assert view["totals"]["succeeded"] == 5
        assert view["report"]["manifest"].startswith(f"s3://reports-{APPID}/log-archive/job-")
        # nothing more to do: a second pass is a no-op
        assert main(["plan"]) == 0
        assert "0 to create, 0 to recreate, 0 to change, 0 to cancel" in capsys.readouterr().out
    finally:
        stop.set()
        worker.join()
        server.shutdown()
        engine_side.close()
        objects.close()
