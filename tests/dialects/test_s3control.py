"""CreateJob XML as botocore writes it reads back into the same JobRequest."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.backends.aws import AwsBackend
from runner.dialects.s3control import create_request_from, document, parse_body
from runner.spec.models import AwsTarget
from tests.backends.test_aws_stubbed import OPERATIONS
from tests.engine.conftest import request

TARGET = AwsTarget(
    account_id="123456789012", region="us-east-1", role_arn="arn:aws:iam::123456789012:role/r"
)


def _body(params: dict[str, Any]) -> bytes:
    client = boto3.client(
        "s3control",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    captured: dict[str, bytes] = {}

    def grab(request: Any, **_: Any) -> None:
        captured["body"] = request.body
        raise KeyboardInterrupt

    client.meta.events.register("before-send.s3-control.*", grab)
    with pytest.raises(KeyboardInterrupt):
        client.create_job(AccountId="123456789012", **params)
    return captured["body"]


MANIFESTS = [
    {
        "csv": {
            "bucket": "manifests",
            "key": "m.csv",
            "etag": "e1",
            "fields": ["Bucket", "Key", "VersionId"],
        }
    },
    {"inventory": {"bucket": "inv", "key": "a/manifest.json", "etag": "e2"}},
    {
        "generate": {
            "bucket": "logs",
            "prefix": "2024/",
            "filters": {
                "keyMatches": "**/*.log",
                "minSize": 5,
                "maxSize": 50,
                "storageClasses": ["STANDARD"],
            },
            "saveTo": {"bucket": "out", "prefix": "g"},
        }
    },
]


@pytest.mark.parametrize(
    "operation", [o for o in OPERATIONS if "invoke" not in o], ids=lambda o: next(iter(o))
)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: next(iter(m)))
def test_round_trip(operation: dict[str, Any], manifest: dict[str, Any]) -> None:
    original = request(
        operation,
        manifest,
        report={"bucket": "reports", "prefix": "x", "scope": "failed"},
        confirm=True,
        description="d [batchctl:a:0123456789abcdef]",
        token="tok",
    )
    params = AwsBackend(TARGET, client=object(), s3=object()).create_request(original)
    back, tags = create_request_from(_body(params))
    assert back.model_dump(exclude_none=True) == original.model_dump(exclude_none=True)
    assert tags == [
        {"Key": "batchctl/name", "Value": "a"},
        {"Key": "batchctl/hash", "Value": "0123456789abcdef"},
    ]


def test_documents_read_back() -> None:
    body = document(
        "ListJobsResult", {"Jobs": [{"JobId": "j1"}, {"JobId": "j2"}], "NextToken": "t"}
    )
    assert parse_body(body) == {"Jobs": [{"JobId": "j1"}, {"JobId": "j2"}], "NextToken": "t"}


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
            st.sampled_from(["tag", "copy", "untag", "mystery"]),
            st.booleans(),
        ),
        max_size=4,
    ),
    st.one_of(st.none(), st.text(max_size=5)),
)
def test_list_pages_are_written_as_the_generic_writer_writes_them(
    jobs: list[tuple[str, str, bool]], token: str | None
) -> None:
    from datetime import UTC, datetime

    from runner.dialects.s3control import list_jobs_document, list_member
    from runner.jobs.models import JobSummary, ListedJob, ListedProgress, Progress
    from runner.jobs.status import JobStatus

    summaries = [
        JobSummary(
            job_id=f"id-{i}&",
            status=JobStatus.COMPLETE if ended else JobStatus.ACTIVE,
            priority=i,
            description=description,
            operation=operation,
            progress=Progress(total=5, succeeded=3, failed=1, elapsed_seconds=2.7),
            created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            terminated_at=datetime(2026, 1, 3, tzinfo=UTC) if ended else None,
        )
        for i, (description, operation, ended) in enumerate(jobs)
    ]
    generic = document(
        "ListJobsResult", {"Jobs": [list_member(j) for j in summaries], "NextToken": token}
    )
    assert list_jobs_document(summaries, token) == generic
    listed = [
        ListedJob(
            j.job_id,
            j.status,
            j.priority,
            j.description,
            j.operation,
            ListedProgress(*j.progress.model_dump().values()),
            j.created_at,
            j.terminated_at,
        )
        for j in summaries
    ]
    assert list_jobs_document(listed, token) == generic  # the served path's plain values
    assert [j.summary() for j in listed] == summaries
