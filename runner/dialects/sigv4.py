"""AWS Signature Version 4, both sides: signing (the fast S3 path) and verifying (serve).

One canonical request for both, so a request the client signs is one the server
accepts by construction; botocore's signer is the oracle in the tests. Header
values are trimmed and inner runs of whitespace collapsed, as SigV4 requires; a
value holding CR or LF is refused outright (it would split the header on the wire).

The server refuses unsigned requests, unknown access keys, requests signed more
than 15 minutes away from now, and any signature that does not match the one it
computes from the request as received: method, path as sent, canonical query,
the signed headers' values, and the payload hash the client declared (checked
against the body when it is not UNSIGNED-PAYLOAD).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_SKEW = timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;\-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


class SignatureRejected(Exception):
    """The request is not signed, or not signed right; the message says how."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    """Who signed a request, for which region and service."""

    access_key: str
    region: str
    service: str


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Names and values URL-encoded (RFC 3986), sorted, joined with ``&``."""
    encoded = sorted(
        (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def header_value(value: str) -> str:
    """A header value as signed: trimmed, inner whitespace collapsed; CR/LF refused."""
    if "\r" in value or "\n" in value:
        raise ValueError("a header value cannot hold a line break")
    return " ".join(value.split())


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The derived key of one day, region and service."""
    key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(
    key: bytes,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    names: Sequence[str],
    payload: str,
    stamp: str,
    scope: str,
) -> str:
    """The hex signature of a request; ``headers`` by lower-case name, ``query`` canonical."""
    canonical = "\n".join(
        [
            method.upper(),
            path or "/",
            query,
            "".join(f"{n}:{header_value(headers[n])}\n" for n in names),
            ";".join(names),
            payload,
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    host: str,
    credentials: tuple[str, str, str | None],
    region: str,
    service: str = "s3",
    now: datetime | None = None,
    key: Callable[[str, str], bytes] | None = None,
) -> dict[str, str]:
    """The headers to send (lower-case names, Host left out): ``headers`` plus x-amz-date,
    x-amz-content-sha256, the session token and Authorization. ``path`` is already encoded.
    ``key(secret, day)`` may serve derived keys from a cache."""
    access, secret, token = credentials
    moment = now or datetime.now(UTC)
    stamp, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): header_value(v) for k, v in headers.items()}
    signed.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload})
    if token:
        signed["x-amz-security-token"] = token
    names = sorted(signed)
    scope = f"{day}/{region}/{service}/aws4_request"
    derived = key(secret, day) if key else signing_key(secret, day, region, service)
    found = signature(
        derived,
        method=method,
        path=path,
        query=canonical_query(query.items()),
        headers=signed,
        names=names,
        payload=payload,
        stamp=stamp,
        scope=scope,
    )
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={found}"
    )
    del signed["host"]
    return signed


def verify(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> Verified:
    """Check the SigV4 signature of a request; raise SignatureRejected if it does not hold.

    ``raw_path`` is the request target as received (path and query, still encoded);
    ``headers`` are matched case-insensitively; ``secrets`` maps access keys to secrets.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        raise SignatureRejected("AccessDenied", "the request is not signed (no Authorization)")
    found = _AUTH.match(auth.strip())
    if found is None:
        raise SignatureRejected(
            "AccessDenied", "Authorization is not an AWS4-HMAC-SHA256 signature"
        )
    secret = secrets.get(found["key"])
    if secret is None:
        raise SignatureRejected("InvalidAccessKeyId", "the access key is not known to this server")
    stamp = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejected("AccessDenied", "x-amz-date is missing or malformed") from None
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_SKEW:
        raise SignatureRejected(
            "RequestTimeTooSkewed", "the request was signed over 15 minutes away from now"
        )
    if stamp[:8] != found["day"]:
        raise SignatureRejected("AccessDenied", "the credential scope's date is not the request's")
    payload = lower.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        raise SignatureRejected(
            "XAmzContentSHA256Mismatch", "the body does not match its declared hash"
        )
    path, _, query = raw_path.partition("?")
    names = found["headers"].split(";")
    if "host" not in names:
        raise SignatureRejected("AccessDenied", "the host header must be signed")
    missing = [n for n in names if n not in lower]
    if missing:
        raise SignatureRejected("AccessDenied", f"signed header {missing[0]!r} is missing")
    scope = f"{found['day']}/{found['region']}/{found['service']}/aws4_request"
    try:
        expected = signature(
            signing_key(secret, found["day"], found["region"], found["service"]),
            method=method,
            path=path,
            query=canonical_query(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            headers=lower,
            names=names,
            payload=payload,
            stamp=stamp,
            scope=scope,
        )
    except ValueError:
        raise SignatureRejected("AccessDenied", "a signed header holds a line break") from None
    if not hmac.compare_digest(expected, found["signature"]):
        raise SignatureRejected("SignatureDoesNotMatch", "the signature does not match the request")
    return Verified(found["key"], found["region"], found["service"])
