"""The fast S3 path at the wire: signatures as botocore's, and every way an answer can go wrong.

A scripted HTTP server on 127.0.0.1 plays each answer byte for byte (chunked bodies,
answers cut short, connection resets, errors inside a 200, redirects), so what the
fast path does with each is seen on a real socket.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from runner.dialects import sigv4
from runner.stores.base import StoreError
from runner.stores.s3 import S3ObjectStore
from runner.stores.s3fast import Answer, Fallback, FastS3, copy_headers, usable

KEYS = ("AKIDEXAMPLE", "secret", None)
COPIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>"e"</ETag>'
    b"<LastModified>2024-01-01T00:00:00.000Z</LastModified></CopyObjectResult>"
)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    if not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def error(status: int, code: str, headers: dict[str, str] | None = None) -> bytes:
    body = f"<Error><Code>{code}</Code><Message>{code} here</Message></Error>".encode()
    return answer(status, body, headers)


def chunked(*parts: bytes, sizes: list[int] | None = None) -> bytes:
    out = b""
    for index, part in enumerate(parts):
        size = sizes[index] if sizes else len(part)
        out += f"{size:x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


Step = bytes | Callable[[socket.socket], None]


class Scripted:
    """Answers each request it reads with the next step: bytes to send, or an action."""

    def __init__(self, steps: list[Step], context: ssl.SSLContext | None = None) -> None:
        self.steps = list(steps)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = context
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            while self.steps:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                size = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        size = int(line.split(b":")[1])
                self.requests.append(head + reader.read(size))
                step = self.steps.pop(0)
                if callable(step):
                    step(conn)
                    return
                conn.sendall(step)
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self._stop = True
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*steps: Step, context: ssl.SSLContext | None = None) -> Scripted:
        server = Scripted(list(steps), context)
        made.append(server)
        return server

    yield make
    while _clients:
        _clients.pop().close()
    for server in made:
        server.stop()


def reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed or overloaded server does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def cut_short(conn: socket.socket) -> None:
    conn.sendall(answer(200, COPIED)[:-20])
    conn.close()


_clients: list[FastS3] = []  # closed by the ``scripted`` fixture


def fast(url: str, attempts: int = 4, **kwargs: object) -> FastS3:
    client = FastS3(url, "us-east-1", lambda: KEYS, max_attempts=attempts, **kwargs)  # type: ignore[arg-type]
    _clients.append(client)
    return client


# -- signing -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(
    ("key", "query", "headers", "body"),
    [
        ("a b/ü+%.txt", {}, {"x-amz-copy-source": "/src/a%20b", "x-amz-tagging": "k=v"}, b""),
        (
            "logs/2024/x.log",
            {"tagging": "", "versionId": "v1/2"},
            {"content-md5": "abc=", "content-type": "application/xml"},
            b"<Tagging/>",
        ),
        ("k", {}, {"x-amz-meta-note": "  two   spaces\tand a tab  "}, b""),
    ],
)
def test_signature_matches_botocore(
    token: str | None, key: str, query: dict[str, str], headers: dict[str, str], body: bytes
) -> None:
    path = f"/bucket/{quote(key, safe='/~')}"
    url = "http://127.0.0.1:9000" + path
    if query:
        url += "?" + "&".join(
            k if not v else f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
        )
    request = AWSRequest(method="PUT", url=url, data=body, headers=dict(headers))
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token), "s3", "us-east-1").add_auth(request)
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = sigv4.sign(
        "PUT",
        path,
        query,
        headers,
        body,
        host="127.0.0.1:9000",
        credentials=("AKIDEXAMPLE", "secret", token),
        region="us-east-1",
        now=when,
    )
    assert ours["authorization"] == request.headers["Authorization"]


def test_a_line_break_in_a_header_is_never_sent(scripted: Callable[..., Scripted]) -> None:
    server = scripted(answer(200, COPIED))
    with pytest.raises(StoreError) as caught:
        fast(server.url).copy("a", "k", None, "b", "k", {"x-amz-meta-x": "v\r\nx-amz-acl: public"})
    assert caught.value.code == "InvalidArgument"
    assert not caught.value.retryable
    assert server.requests == []
    with pytest.raises(Fallback):  # a name that is not a token: boto3 refuses it its own way
        fast(server.url).copy("a", "k", None, "b", "k", {"x-amz-meta-a b": "v"})


def test_headers_it_cannot_send_fall_back_to_boto3() -> None:
    assert copy_headers({"MetadataDirective": "COPY", "TaggingDirective": "COPY"}) == {
        "x-amz-metadata-directive": "COPY",
        "x-amz-tagging-directive": "COPY",
    }
    assert copy_headers({"ChecksumAlgorithm": "CRC32"}) is None
    assert copy_headers({"Metadata": {"k": "non-ascii ü"}}) is None


# -- the wire --------------------------------------------------------------------------


def test_a_chunked_answer_is_read_whole(scripted: Callable[..., Scripted]) -> None:
    body = chunked(COPIED[:40], COPIED[40:])
    server = scripted(answer(200, body, {"Transfer-Encoding": "chunked", "x-amz-version-id": "v9"}))
    assert fast(server.url).copy("a", "k", None, "b", "k", {}) == "v9"


@pytest.mark.parametrize(
    "broken",
    [
        chunked(COPIED, sizes=[len(COPIED) + 5]),  # the chunk is shorter than its size
        chunked(COPIED, sizes=[len(COPIED) - 5]),  # … or longer
        chunked(COPIED)[:-5],  # the last chunk never comes
        b"zz\r\n" + COPIED,  # not a size
    ],
)
def test_a_broken_chunked_answer_is_retried(
    scripted: Callable[..., Scripted], broken: bytes
) -> None:
    headers = {"Transfer-Encoding": "chunked"}
    bad = answer(200, broken, headers)

    def send_and_close(conn: socket.socket) -> None:
        conn.sendall(bad)
        conn.close()

    server = scripted(send_and_close, answer(200, COPIED))
    assert fast(server.url).copy("a", "k", None, "b", "k", {}) is None
    assert len(server.requests) == 2


def test_the_connection_is_kept_after_an_error(scripted: Callable[..., Scripted]) -> None:
    server = scripted(error(404, "NoSuchKey"), answer(200, COPIED), answer(200))
    client = fast(server.url)
    with pytest.raises(StoreError) as caught:
        client.copy("a", "missing", None, "b", "k", {})
    assert (caught.value.http_status, caught.value.code) == (404, "NoSuchKey")
    assert not caught.value.retryable
    assert client.copy("a", "k", None, "b", "k", {}) is None
    client.put_tags("b", "k", None, {"t": "1"})
    assert server.connections == 1
    assert len(server.requests) == 3


@pytest.mark.parametrize("failure", [cut_short, reset], ids=["cut-short", "reset"])
def test_a_failed_exchange_is_retried_on_a_new_connection(
    scripted: Callable[..., Scripted], failure: Callable[[socket.socket], None]
) -> None:
    server = scripted(failure, answer(200, COPIED))
    assert fast(server.url).copy("a", "k", None, "b", "k", {}) is None
    assert server.connections == 2


def test_a_stale_keep_alive_connection_is_reopened_without_a_retry(
    scripted: Callable[..., Scripted],
) -> None:
    server = scripted(answer(200, COPIED), lambda conn: conn.close(), answer(200, COPIED))
    client = fast(server.url, attempts=1)  # no retry to spend: the reopen is not one
    client.copy("a", "k", None, "b", "k", {})
    client.copy("a", "k", None, "b", "k", {})
    assert server.connections == 2


def test_attempts_run_out_with_the_last_error(scripted: Callable[..., Scripted]) -> None:
    server = scripted(*[error(503, "SlowDown", {"Retry-After": "0"})] * 3)
    with pytest.raises(StoreError) as caught:
        fast(server.url, attempts=3).copy("a", "k", None, "b", "k", {})
    assert (caught.value.http_status, caught.value.code, caught.value.delay) == (503, "SlowDown", 0)
    assert len(server.requests) == 3


def test_an_error_inside_a_200_is_an_error(scripted: Callable[..., Scripted]) -> None:
    # S3 sends whitespace to keep a long copy alive, then the outcome: here an error.
    late = b"\n" * 300 + b'<?xml version="1.0"?>\n<Error><Code>InternalError</Code></Error>'
    server = scripted(answer(200, late), answer(200, COPIED))
    assert fast(server.url).copy("a", "k", None, "b", "k", {}) is None  # retried, as botocore
    assert len(server.requests) == 2
    server = scripted(*[answer(200, late)] * 2)
    with pytest.raises(StoreError) as caught:
        fast(server.url, attempts=2).copy("a", "k", None, "b", "k", {})
    assert (caught.value.http_status, caught.value.code) == (500, "InternalError")


@pytest.mark.parametrize(
    "step",
    [
        answer(301, b"", {"Location": "https://s3.eu-west-1.amazonaws.com/b/k"}),
        error(307, "TemporaryRedirect"),
        answer(200, b"<html>proxy says hello</html"),
        answer(403, b"<html>Forbidden</html>"),
        answer(200, b""),  # a copy without its CopyObjectResult
    ],
    ids=["301", "307", "200-not-xml", "403-html", "200-empty"],
)
def test_what_it_cannot_judge_goes_to_boto3(scripted: Callable[..., Scripted], step: bytes) -> None:
    server = scripted(step)
    with pytest.raises(Fallback):
        fast(server.url).copy("a", "k", None, "b", "k", {})
    assert len(server.requests) == 1


def test_the_store_makes_a_redirected_call_through_boto3(moto_endpoint: str) -> None:
    store = S3ObjectStore(
        moto_endpoint,
        "us-east-1",
        credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    )
    try:
        store.create_bucket("redirected")
        store.client.put_object(Bucket="redirected", Key="src", Body=b"x")

        class Redirects:
            def exchange(self, request: bytes) -> Answer:
                return Answer(301, {"location": "elsewhere"}, b"")

            def close(self) -> None:
                pass

        assert store.fast is not None
        store.fast.transport = Redirects()
        from runner.stores.base import CopyOptions

        store.copy("redirected", "src", None, "redirected", "dst", CopyOptions())
        store.put_tags("redirected", "dst", None, {"t": "1"})
        assert store.get_tags("redirected", "dst") == {"t": "1"}
        assert store.client.get_object(Bucket="redirected", Key="dst")["Body"].read() == b"x"
    finally:
        store.close()


# -- where it is used ---------------------------------------------------------------------


def test_it_steps_aside_where_a_proxy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for spelling in (name, name.lower()):
            monkeypatch.delenv(spelling, raising=False)
    assert usable("http://127.0.0.1:9000", "us-east-1")
    assert usable(None, "eu-west-1")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert not usable(None, "eu-west-1")
    assert usable("http://127.0.0.1:9000", "us-east-1")  # an http endpoint: HTTP_PROXY's
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert not usable("http://127.0.0.1:9000", "us-east-1")
    store = S3ObjectStore(
        "http://127.0.0.1:9000",
        "us-east-1",
        credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"},
    )
    assert store.fast is None
    store.close()
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert usable("http://127.0.0.1:9000", "us-east-1")


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "ca.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_is_verified_against_the_ca_bundle(
    scripted: Callable[..., Scripted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = scripted(answer(200, COPIED), context=context)
    with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
        fast(server.url, attempts=1).copy("a", "k", None, "b", "k", {})  # not trusted by default
    assert fast(server.url, verify=str(cert)).copy("a", "k", None, "b", "k", {}) is None
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))  # as botocore reads it
    store = S3ObjectStore(
        server.url,
        "us-east-1",
        credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"},
    )
    try:
        assert store.fast is not None
        server.steps.append(answer(200, COPIED))
        assert store.fast.copy("a", "k", None, "b", "k", {}) is None
    finally:
        store.close()


def test_a_bucket_that_cannot_be_seen_is_not_called_missing() -> None:
    store = S3ObjectStore(
        "http://127.0.0.1:9",
        "us-east-1",
        credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"},
    )
    with Stubber(store.client) as stub:
        stub.add_client_error("head_bucket", "403", http_status_code=403)
        stub.add_client_error("head_bucket", "SlowDown", http_status_code=503)
        stub.add_client_error("head_bucket", "404", http_status_code=404)
        with pytest.raises(StoreError) as caught:
            store.bucket_exists("hidden")
        assert caught.value.http_status == 403
        with pytest.raises(StoreError) as caught:
            store.bucket_exists("busy")
        assert caught.value.retryable
        assert store.bucket_exists("gone") is False
    store.close()
