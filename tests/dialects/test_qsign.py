"""The COS signature reproduces every vector of the reference sheet exactly (§7.3)."""

from __future__ import annotations

import pytest

from runner.dialects.qsign import authorization

V1_ID, V1_KEY = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
BATCH_HOST = "100000000001.cos-control.ap-chengdu.myqcloud.com"

VECTORS = [
    pytest.param(
        "PUT",
        "/exampleobject(腾讯云)",
        {},
        {
            "Date": "Thu, 16 May 2019 06:45:51 GMT",
            "Host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
            "Content-Type": "text/plain",
            "Content-Length": "13",
            "Content-MD5": "mQ/fVh815F3k6TAUm8m0eg==",
            "x-cos-acl": "private",
            "x-cos-grant-read": 'uin="100000000011"',
        },
        V1_ID,
        V1_KEY,
        "1557989151;1557996351",
        "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1557989151;1557996351&q-key-time=1557989151;1557996351&q-header-list=content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172",
        id="V1-put-object",
    ),
    pytest.param(
        "GET",
        "/exampleobject(腾讯云)",
        {
            "response-content-type": "application/octet-stream",
            "response-cache-control": "max-age=600",
        },
        {
            "Date": "Thu, 16 May 2019 06:55:53 GMT",
            "Host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
        },
        V1_ID,
        V1_KEY,
        "1557989753;1557996953",
        "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1557989753;1557996953&q-key-time=1557989753;1557996953&q-header-list=date;host&q-url-param-list=response-cache-control;response-content-type&q-signature=01681b8c9d798a678e43b685a9f1bba0f6c0e012",
        id="V2-get-object",
    ),
    pytest.param(
        "PUT",
        "/testfile2",
        {},
        {
            "Host": "testbucket-125000000.cos.ap-guangzhou.myqcloud.com",
            "x-cos-content-sha1": "db8ac1c259eb89d4a131b253bacfca5f319d54f2",
            "x-cos-stroage-class": "nearline",
        },
        "QmFzZTY0IGlzIGEgZ2VuZXJp",
        "AKIDZfbOA78asKUYBcXFrJD0a1ICvR98JM",
        "1480932292;1481012292",
        "q-sign-algorithm=sha1&q-ak=QmFzZTY0IGlzIGEgZ2VuZXJp&q-sign-time=1480932292;1481012292&q-key-time=1480932292;1481012292&q-header-list=host;x-cos-content-sha1;x-cos-stroage-class&q-url-param-list=&q-signature=ce4ac0ecbcdb30538b3fee0a97cc6389694ce53a",
        id="V3-go-sdk",
    ),
    pytest.param(
        "GET",
        "/jobs",
        {"maxResults": "2"},
        {"Date": "Fri, 20 Dec 2019 03:31:41 GMT", "Host": BATCH_HOST, "x-cos-appid": "1250000000"},
        V1_ID,
        V1_KEY,
        "1576812701;1576819901",
        "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1576812701;1576819901&q-key-time=1576812701;1576819901&q-header-list=date;host;x-cos-appid&q-url-param-list=maxresults&q-signature=1d56ceb33f975870eb132e099ca89a95ca31b7c6",
        id="V4-list-jobs",
    ),
    pytest.param(
        "POST",
        "/jobs/021140d8-67ca-4e89-8089-0de9a1e40943/status",
        {"requestedJobStatus": "Cancelled", "statusUpdateReason": "no longer needed"},
        {"Host": BATCH_HOST, "x-cos-appid": "1250000000"},
        V1_ID,
        V1_KEY,
        "1576812701;1576819901",
        "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1576812701;1576819901&q-key-time=1576812701;1576819901&q-header-list=host;x-cos-appid&q-url-param-list=requestedjobstatus;statusupdatereason&q-signature=d118ffac5c336f239b316483c5bf8933daf82a61",
        id="V5-update-job-status",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "secret_id", "secret_key", "key_time", "expected"),
    VECTORS,
)
def test_published_vectors(
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    secret_id: str,
    secret_key: str,
    key_time: str,
    expected: str,
) -> None:
    assert (
        authorization(
            method,
            path,
            params,
            headers,
            secret_id=secret_id,
            secret_key=secret_key,
            key_time=key_time,
        )
        == expected
    )
