"""The lean S3 client signs exactly as botocore does, and speaks to real servers."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runner.stores.s3fast import LeanS3, copy_headers


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(
    ("method", "key", "query", "headers", "body"),
    [
        (
            "PUT",
            "a b/ü+%.txt",
            {},
            {"x-amz-copy-source": "/src/a%20b", "x-amz-tagging": "k=v"},
            b"",
        ),
        (
            "PUT",
            "logs/2024/x.log",
            {"tagging": "", "versionId": "v1/2"},
            {"content-md5": "abc=", "content-type": "application/xml"},
            b"<Tagging/>",
        ),
    ],
)
def test_signature_matches_botocore(
    token: str | None,
    method: str,
    key: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> None:
    lean = LeanS3("http://127.0.0.1:9000", "us-east-1", lambda: ("AKIDEXAMPLE", "secret", token))
    path = f"/bucket/{quote(key, safe='/~')}"
    url = "http://127.0.0.1:9000" + path
    if query:
        url += "?" + "&".join(
            k if not v else f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
        )
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token), "s3", "us-east-1").add_auth(request)
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = lean._sign(method, path, query, headers, body, now=when)
    assert ours["authorization"] == request.headers["Authorization"]


def test_headers_it_cannot_send_fall_back_to_boto3() -> None:
    assert copy_headers({"MetadataDirective": "COPY", "TaggingDirective": "COPY"}) == {
        "x-amz-metadata-directive": "COPY",
        "x-amz-tagging-directive": "COPY",
    }
    assert copy_headers({"ChecksumAlgorithm": "CRC32"}) is None
    assert copy_headers({"Metadata": {"k": "non-ascii ü"}}) is None
