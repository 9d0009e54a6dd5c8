"""`engine serve` against hostile clients (issue 14): bounded time, connections and bodies;
every answer in the dialect's XML; no internals in a body; no traceback in the log."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.backends.local import LocalBackend
from runner.dialects.qsign import authorization
from runner.serve.server import MAX_BODY_BYTES, EngineServer
from runner.spec.models import LocalTarget

KEY, SECRET = "AKIDHOSTILE", "hostile-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EngineServer]:
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), tmp_path)
    served = EngineServer(local, {KEY: SECRET}, request_seconds=1.5, max_connections=4)
    served.start()
    yield served
    served.shutdown()
    local.close()


def _exchange(server: EngineServer, raw: bytes, *, wait: float = 10) -> bytes:
    """Send ``raw`` and read until the server closes or ``wait`` seconds pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        return _read_all(sock, wait)


def _read_all(sock: socket.socket, wait: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _aws_request(server: EngineServer, body: bytes, **headers: str) -> bytes:
    url = f"{server.url}/v20180820/jobs"
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(request)
    lines = ["POST /v20180820/jobs HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _cos_request(server: EngineServer, body: bytes, *, md5: str, signed_host: str) -> bytes:
    now = int(time.time())
    key_time = f"{now - 60};{now + 600}"
    headers = {"host": signed_host, "content-md5": md5}
    auth = authorization(
        "POST", "/jobs", {}, headers, secret_id=KEY, secret_key=SECRET, key_time=key_time
    )
    raw = (
        f"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-MD5: {md5}\r\n"
        f"Authorization: {auth}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return raw.encode() + body


def test_a_half_sent_body_does_not_hold_a_thread(server: EngineServer) -> None:
    started = time.monotonic()
    answer = _hold(
        server, b"POST /v20180820/jobs HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    )
    assert time.monotonic() - started < 6
    assert _status(answer) == 400
    assert b"<Code>RequestTimeout</Code>" in answer


def test_headers_trickled_a_line_a_second_are_cut_off(server: EngineServer) -> None:
    """Header lines trickled every quarter second never end the headers; the 1.5 s
    deadline does: the server closes the connection, where it used to wait for ever."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /v20180820/jobs HTTP/1.1\r\n")
        started = time.monotonic()
        with contextlib.suppress(OSError):  # a reset once the server has closed is fine
            for i in range(12):
                sock.sendall(f"X-Slow-{i}: a\r\n".encode())
                time.sleep(0.25)
        sock.settimeout(4)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
        # recv returns (the connection closed, or an error answer) instead of timing out
        assert answer == b"" or _status(answer) >= 400
        assert time.monotonic() - started < 8


def _hold(server: EngineServer, raw: bytes) -> bytes:
    """Send ``raw`` and keep the connection open (a client that stalls), reading the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        return _read_all(sock, 8)


def test_connections_past_the_cap_get_503_slowdown(server: EngineServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            answer = _read_all(extra, 3)
        assert _status(answer) == 503
        assert b"<Code>SlowDown</Code>" in answer
    finally:
        for sock in idle:
            sock.close()


def test_a_large_body_is_refused_before_it_is_read(server: EngineServer) -> None:
    answer = _hold(
        server,
        b"POST /v20180820/jobs HTTP/1.1\r\nContent-Length: 52428800\r\n\r\n" + b"x" * 1000,
    )
    assert _status(answer) == 413
    assert b"<Code>EntityTooLarge</Code>" in answer
    cos = _hold(
        server, f"POST /jobs HTTP/1.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
    )
    assert _status(cos) == 413
    assert b"<Error><Code>EntityTooLarge</Code>" in cos


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"POST /v20180820/jobs HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, b"InvalidArgument"),
        (b"GET /v20180820/jobs\r\n", 400, b"BadRequest"),  # HTTP/0.9
        (b"BREW /v20180820/jobs HTTP/1.1\r\n\r\n", 501, b"NotImplemented"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, b"InvalidRequest"),
        (b"GET /jobs HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, b"InvalidRequest"),
        (b"GET /jobs HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n", 400, b"InvalidRequest"),
        (
            b"POST /jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
            b"NotImplemented",
        ),
    ],
    ids=[
        "bad-length",
        "http-0.9",
        "unknown-method",
        "long-url",
        "long-header",
        "dup-header",
        "chunked",
    ],
)
def test_malformed_requests_get_xml_errors(
    server: EngineServer, raw: bytes, status: int, code: bytes
) -> None:
    answer = _exchange(server, raw)
    assert _status(answer) == status, answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/xml" in head
    assert code in body
    assert b"<html" not in body.lower()


def test_internal_errors_keep_internals_out_of_the_body(
    server: EngineServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.serve import server as module

    def explode(*_: object, **__: object) -> tuple[int, bytes]:
        raise RuntimeError("the secret path /srv/state/engine.db")

    monkeypatch.setattr(module.EngineApi, "handle", explode)
    answer = _exchange(server, _aws_request(server, b""))
    assert _status(answer) == 500
    assert b"InternalServiceException" in answer
    assert b"/srv/state" not in answer


def test_a_body_that_does_not_match_its_sha256_is_a_400(server: EngineServer) -> None:
    signed = _aws_request(server, b"<a/>")
    swapped = signed[: -len(b"<a/>")] + b"<b/>"
    answer = _exchange(server, swapped)
    assert _status(answer) == 400
    assert b"XAmzContentSHA256Mismatch" in answer


def test_cos_content_md5_is_checked_and_sdk_hosts_without_port_are_accepted(
    server: EngineServer,
) -> None:
    body = b"<CreateJobRequest></CreateJobRequest>"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    # Tencent's SDK signs the host without the port
    answer = _exchange(server, _cos_request(server, body, md5=md5, signed_host="127.0.0.1"))
    assert b"SignatureDoesNotMatch" not in answer
    assert _status(answer) == 400  # an empty CreateJob: refused by the API, past the signature
    swapped = _cos_request(server, body, md5=md5, signed_host="127.0.0.1")[: -len(body)]
    answer = _exchange(server, swapped + b"<CreateJobRequest>!</CreateJobRequest>"[: len(body)])
    assert _status(answer) == 400
    assert b"<Code>BadDigest</Code>" in answer


_token = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=12)


@settings(
    max_examples=60, deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "", "G E T"]),
    path=st.sampled_from(["/jobs", "/v20180820/jobs", "/", "/jobs/x?y", "*"]) | _token,
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "", "HTTP/9", "junk"]),
    headers=st.lists(st.tuples(_token, _token), max_size=6),
    body=st.binary(max_size=200),
)
def test_random_requests_get_an_answer_and_no_traceback(
    server: EngineServer,
    capfd: pytest.CaptureFixture[str],
    method: str,
    path: str,
    version: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    line = " ".join(p for p in (method, path, version) if p)
    raw = (line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()
    started = time.monotonic()
    answer = _exchange(server, raw + body, wait=8)
    assert time.monotonic() - started < 8
    if answer:
        assert answer.startswith(b"HTTP/1."), answer[:100]
        assert b"Traceback" not in answer
        assert b"<html" not in answer.lower()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
