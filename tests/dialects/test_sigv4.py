"""SigV4 verification accepts what botocore signs and refuses every alteration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runner.dialects.sigv4 import SignatureRejected, verify

SECRETS = {"AKIDSERVE": "serve-secret"}


def _signed(
    method: str = "POST",
    url: str = "http://127.0.0.1:8000/v20180820/jobs/abc/status?requestedJobStatus=Cancelled&statusUpdateReason=no%20longer%20needed",
    body: bytes = b"",
    key: str = "AKIDSERVE",
    secret: str = "serve-secret",
) -> tuple[str, str, dict[str, str], bytes]:
    request = AWSRequest(
        method=method, url=url, data=body, headers={"x-amz-account-id": "123456789012"}
    )
    S3SigV4Auth(Credentials(key, secret), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = "127.0.0.1:8000"
    target = url.split("127.0.0.1:8000", 1)[1]
    return method, target, headers, body


def test_accepts_what_botocore_signs() -> None:
    method, target, headers, body = _signed()
    found = verify(method, target, headers, body, SECRETS)
    assert (found.access_key, found.region, found.service) == ("AKIDSERVE", "us-east-1", "s3")
    post = _signed(url="http://127.0.0.1:8000/v20180820/jobs", body=b"<CreateJobRequest/>")
    assert verify(*post[:4], SECRETS).access_key == "AKIDSERVE"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            lambda m, t, h, b: (m, t, {k: v for k, v in h.items() if k != "Authorization"}, b),
            "AccessDenied",
        ),
        (lambda m, t, h, b: (m, t.replace("Cancelled", "Ready"), h, b), "SignatureDoesNotMatch"),
        (lambda m, t, h, b: ("GET", t, h, b), "SignatureDoesNotMatch"),
        (
            lambda m, t, h, b: (m, t, {**h, "x-amz-account-id": "999999999999"}, b),
            "SignatureDoesNotMatch",
        ),
        (lambda m, t, h, b: (m, t, h, b + b"x"), "XAmzContentSHA256Mismatch"),
    ],
)
def test_refuses_alterations(change: object, code: str) -> None:
    method, target, headers, body = change(*_signed())  # type: ignore[operator]
    with pytest.raises(SignatureRejected) as raised:
        verify(method, target, headers, body, SECRETS)
    assert raised.value.code == code


def test_refuses_unknown_keys_wrong_secrets_and_old_requests() -> None:
    with pytest.raises(SignatureRejected) as unknown:
        verify(*_signed(key="AKIDOTHER"), SECRETS)
    assert unknown.value.code == "InvalidAccessKeyId"
    with pytest.raises(SignatureRejected) as wrong:
        verify(*_signed(secret="guessed"), SECRETS)
    assert wrong.value.code == "SignatureDoesNotMatch"
    with pytest.raises(SignatureRejected) as old:
        verify(*_signed(), SECRETS, now=datetime.now(UTC) + timedelta(minutes=16))
    assert old.value.code == "RequestTimeTooSkewed"
