"""The COS request signature (``q-sign-algorithm=sha1``), proven by the published vectors.

SignKey is HMAC-SHA1 of the key time under the secret key; the request is
described as ``method\\npath\\nparams\\nheaders\\n`` with parameter and header
names lower-cased and sorted and their values URL-encoded (RFC 3986: a space is
``%20``, never ``+``; only names are lower-cased, never values); the string to
sign is ``sha1\\nkeytime\\nsha1(described)\\n``. Pitfalls the reference sheet names
— a raw-bytes SignKey, a still-encoded path, lower-cased values, ``+`` for a
space — each break one of the vectors in the tests.

``verify`` is the server's side (``engine serve``): it recomputes the signature from
the request as received — the decoded path, the parameters and headers the client
says it signed — and refuses more than a mismatch: a key time that does not cover
now, a Host or x-cos-* header left out of the signature, and query parameters left
unsigned; each would let a request be altered on the way without the signature noticing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping

from runner.dialects.sigv4 import SignatureRejected


def _encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def _pairs(items: Mapping[str, str]) -> tuple[str, str]:
    """(name list, name=value list) of headers or parameters, as COS signs them."""
    encoded = sorted((_encode(k.lower()), _encode(v)) for k, v in items.items())
    return ";".join(k for k, _ in encoded), "&".join(f"{k}={v}" for k, v in encoded)


def authorization(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    secret_id: str,
    secret_key: str,
    key_time: str,
) -> str:
    """The Authorization header value of a COS request.

    ``path`` is the decoded path (``/exampleobject(腾讯云)``); ``key_time`` is
    ``start;end`` in epoch seconds; ``headers`` are the ones to sign (Host and the
    x-cos-* headers at least).
    """
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    param_list, http_params = _pairs(params)
    header_list, http_headers = _pairs(headers)
    http_string = f"{method.lower()}\n{path}\n{http_params}\n{http_headers}\n"
    string_to_sign = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    signature = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time}&q-key-time={key_time}"
        f"&q-header-list={header_list}&q-url-param-list={param_list}&q-signature={signature}"
    )


MAX_SKEW_SECONDS = 900


def _fields(value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in value.split("&"):
        name, _, inner = part.partition("=")
        found[name] = inner
    return found


def verify(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    now: float | None = None,
) -> str:
    """Check a request's COS signature; return the SecretId, or raise SignatureRejected."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "").strip()
    if not auth:
        raise SignatureRejected("AccessDenied", "the request is not signed (no Authorization)")
    fields = _fields(auth)
    if fields.get("q-sign-algorithm") != "sha1":
        raise SignatureRejected("AccessDenied", "Authorization is not a q-sign-algorithm=sha1 one")
    secret_id = fields.get("q-ak", "")
    secret = secrets.get(secret_id)
    if secret is None:
        raise SignatureRejected("InvalidAccessKeyId", "the SecretId is not known to this server")
    key_time = fields.get("q-key-time", "")
    if fields.get("q-sign-time") != key_time:
        raise SignatureRejected("AccessDenied", "q-sign-time and q-key-time differ")
    try:
        start, end = (int(part) for part in key_time.split(";"))
    except ValueError:
        raise SignatureRejected("AccessDenied", f"q-key-time {key_time!r} is malformed") from None
    moment = time.time() if now is None else now
    if not start - MAX_SKEW_SECONDS <= moment <= end:
        raise SignatureRejected(
            "RequestTimeTooSkewed", "the signature's key time does not cover now"
        )
    header_names = [n for n in fields.get("q-header-list", "").split(";") if n]
    param_names = [n for n in fields.get("q-url-param-list", "").split(";") if n]
    unsigned = [
        n for n in lower if (n == "host" or n.startswith("x-cos-")) and n not in header_names
    ]
    if unsigned:
        raise SignatureRejected("AccessDenied", f"header {unsigned[0]} must be signed")
    path, _, query = raw_path.partition("?")
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    loose = [k for k, _ in params if k.lower() not in param_names]
    if loose:
        raise SignatureRejected("AccessDenied", f"query parameter {loose[0]} must be signed")
    try:
        signed_headers = {n: lower[n] for n in header_names}
    except KeyError as missing:
        raise SignatureRejected("AccessDenied", f"signed header {missing} is missing") from None
    given = fields.get("q-signature", "")
    # Tencent's SDK (cos-python-sdk-v5) signs the host without its port: a host header
    # of 127.0.0.1:8090 is also checked as 127.0.0.1. Either way it is the host received.
    hosts = [signed_headers.get("host")]
    if hosts[0] and ":" in hosts[0].rsplit("]", 1)[-1]:
        hosts.append(hosts[0].rsplit(":", 1)[0])
    for host in hosts:
        if host is not None:
            signed_headers["host"] = host
        expected = authorization(
            method,
            urllib.parse.unquote(path),
            dict(params),
            signed_headers,
            secret_id=secret_id,
            secret_key=secret,
            key_time=key_time,
        )
        if hmac.compare_digest(_fields(expected)["q-signature"], given):
            return secret_id
    raise SignatureRejected("SignatureDoesNotMatch", "the signature does not match the request")
