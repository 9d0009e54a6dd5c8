"""The COS dialect of `engine serve` against the reference sheet's error table (issue 15).

Every error the server gives for a COS Batch Operation API must be a (Code, HTTP status)
the table of shared/reference/cos-batch-operations.md §6 lists for that API (or for
"any"). Requests are signed with Tencent's own signer (cos-python-sdk-v5), not ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.backends.local import LocalBackend
from runner.dialects.cos import create_job_body
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget
from tests.engine.conftest import put_objects, request

KEY, SECRET, APPID = "AKIDCOSCONFORM", "cos-conformance-secret", "1250000000"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cos-batch-operations.md"
_ROW = re.compile(r"^\| (\w+) \| (\d{3}) \| [^|]+ \| ([^|]+) \|$")


def error_table() -> dict[tuple[str, int], set[str]]:
    """(Code, HTTP status) → the APIs the reference sheet lists it for."""
    text = REFERENCE.read_text(encoding="utf-8")
    section = text[text.index("## 6. Errors") : text.index("## 7.")]
    table: dict[tuple[str, int], set[str]] = {}
    for line in section.splitlines():
        found = _ROW.match(line.strip())
        if found:
            apis = {a.strip() for a in re.split(r"[,/]", found[3])}
            table.setdefault((found[1], int(found[2])), set()).update(apis)
    return table


@pytest.fixture(scope="module")
def cos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("qcloud_cos")
    if not REFERENCE.exists():
        pytest.skip(f"the reference sheet is not beside the checkout ({REFERENCE})")
    import requests
    from qcloud_cos import CosConfig
    from qcloud_cos.cos_auth import CosS3Auth

    root = tmp_path_factory.mktemp("cos-conformance")
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), root)
    local.store.create_bucket("logs")
    put_objects(local.store, 3, bucket="logs")  # type: ignore[arg-type]
    local.store.put("logs", "m.csv", b"logs,data/000000.txt\n")
    server = EngineServer(local, {KEY: SECRET})
    server.start()
    config = CosConfig(Region="ap-guangzhou", SecretId=KEY, SecretKey=SECRET)

    def call(
        method: str, path: str, params: dict[str, str] | None = None, body: bytes = b""
    ) -> Any:
        params = params or {}
        return requests.request(
            method,
            f"{server.url}{path}",
            params=params,
            data=body,
            headers={"x-cos-appid": APPID, "Content-Type": "application/xml"},
            auth=CosS3Auth(config, key=path.lstrip("/"), params=params),
            timeout=30,
        )

    call.local = local  # type: ignore[attr-defined]
    yield call
    server.shutdown()
    local.close()


def _body(local: LocalBackend, token: str, role: str = "qcs::cam::uin/1:roleName/r") -> bytes:
    job = request(
        {"tag": {"tags": {"a": "b"}}},
        {"csv": {"bucket": "logs", "key": "m.csv", "etag": local.store.head("logs", "m.csv").etag}},
        token=token,
    )
    return create_job_body(job, "etag", "ap-guangzhou", APPID, role)


def test_every_error_is_one_the_reference_lists(cos: Any) -> None:
    table = error_table()
    local = cos.local
    created = cos("POST", "/jobs", body=_body(local, "t-1"))
    assert created.status_code == 200, created.text
    job = re.search(r"<JobId>([^<]+)</JobId>", created.text)[1]  # type: ignore[index]
    provocations = [
        ("CreateJob", cos("POST", "/jobs", body=b"")),
        ("CreateJob", cos("POST", "/jobs", body=b"<CreateJobRequest><Oops")),
        ("CreateJob", cos("POST", "/jobs", body=_body(local, "t-2", role=""))),
        ("CreateJob", cos("POST", "/jobs", body=_body(local, "t-1"))),  # a reused token
        ("ListJobs", cos("GET", "/jobs", {"jobStatuses": "Bogus"})),
        ("ListJobs", cos("GET", "/jobs", {"maxResults": "abc"})),
        ("ListJobs", cos("GET", "/jobs", {"nextToken": "garbage!"})),
        ("DescribeJob", cos("GET", "/jobs/no-such-job")),
        ("UpdateJobPriority", cos("POST", f"/jobs/{job}/priority")),
        ("UpdateJobPriority", cos("POST", "/jobs/no-such-job/priority", {"priority": "3"})),
        ("UpdateJobStatus", cos("POST", f"/jobs/{job}/status", {"requestedJobStatus": "Bogus"})),
        (
            "UpdateJobStatus",
            cos("POST", "/jobs/no-such-job/status", {"requestedJobStatus": "Cancelled"}),
        ),
    ]
    checked = set()
    for api, answer in provocations:
        code = re.search(r"<Code>([^<]+)</Code>", answer.text)
        assert code, (api, answer.status_code, answer.text)
        pair = (code[1], answer.status_code)
        assert pair in table, (api, pair, answer.text)
        assert api in table[pair] or "any" in table[pair], (api, pair, table[pair])
        assert "<Resource>" in answer.text
        assert "<TraceId>" in answer.text
        checked.add((api, pair))
    assert len(checked) >= 9
