"""The server's check of COS signatures: the reference vectors pass, every alteration fails."""

from __future__ import annotations

import pytest

from runner.dialects.qsign import verify as verify_cos
from runner.dialects.sigv4 import SignatureRejected

SECRETS = {"AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q": "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"}
HOST = "100000000001.cos-control.ap-chengdu.myqcloud.com"
NOW = 1576812801.0  # inside the vectors' key time
V4 = (
    "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
    "&q-sign-time=1576812701;1576819901&q-key-time=1576812701;1576819901"
    "&q-header-list=date;host;x-cos-appid&q-url-param-list=maxresults"
    "&q-signature=1d56ceb33f975870eb132e099ca89a95ca31b7c6"
)
V4_HEADERS = {
    "Date": "Fri, 20 Dec 2019 03:31:41 GMT",
    "Host": HOST,
    "x-cos-appid": "1250000000",
    "Authorization": V4,
}
V5_PATH = (
    "/jobs/021140d8-67ca-4e89-8089-0de9a1e40943/status"
    "?requestedJobStatus=Cancelled&statusUpdateReason=no%20longer%20needed"
)
V5 = (
    "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
    "&q-sign-time=1576812701;1576819901&q-key-time=1576812701;1576819901"
    "&q-header-list=host;x-cos-appid&q-url-param-list=requestedjobstatus;statusupdatereason"
    "&q-signature=d118ffac5c336f239b316483c5bf8933daf82a61"
)


def test_the_reference_vectors_verify() -> None:
    assert verify_cos("GET", "/jobs?maxResults=2", V4_HEADERS, SECRETS, now=NOW) == (
        "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
    )
    headers = {"Host": HOST, "x-cos-appid": "1250000000", "Authorization": V5}
    verify_cos("POST", V5_PATH, headers, SECRETS, now=NOW)


@pytest.mark.parametrize(
    ("method", "path", "change", "code"),
    [
        ("GET", "/jobs?maxResults=3", {}, "SignatureDoesNotMatch"),
        ("POST", "/jobs?maxResults=2", {}, "SignatureDoesNotMatch"),
        ("GET", "/jobs?maxResults=2&nextToken=x", {}, "AccessDenied"),  # unsigned parameter
        ("GET", "/jobs?maxResults=2", {"x-cos-appid": "1250000001"}, "SignatureDoesNotMatch"),
        ("GET", "/jobs?maxResults=2", {"x-cos-security-token": "t"}, "AccessDenied"),
        ("GET", "/jobs?maxResults=2", {"Authorization": ""}, "AccessDenied"),
        (
            "GET",
            "/jobs?maxResults=2",
            {"Authorization": V4.replace("q-ak=AKIDQ", "q-ak=AKIDX")},
            "InvalidAccessKeyId",
        ),
        (
            "GET",
            "/jobs?maxResults=2",
            {"Authorization": V4.replace("sha1&", "sha256&", 1)},
            "AccessDenied",
        ),
    ],
)
def test_an_altered_request_is_refused(
    method: str, path: str, change: dict[str, str], code: str
) -> None:
    with pytest.raises(SignatureRejected) as refused:
        verify_cos(method, path, V4_HEADERS | change, SECRETS, now=NOW)
    assert refused.value.code == code


def test_an_expired_key_time_is_refused() -> None:
    with pytest.raises(SignatureRejected) as refused:
        verify_cos("GET", "/jobs?maxResults=2", V4_HEADERS, SECRETS, now=1576819902.0)
    assert refused.value.code == "RequestTimeTooSkewed"
