"""Verifying AWS Signature Version 4 on requests to `batchctl engine serve`.

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
from collections.abc import Mapping
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


def _canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted(
        (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


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
    try:
        header_block = "".join(f"{n}:{' '.join(lower[n].split())}\n" for n in names)
    except KeyError as missing:
        raise SignatureRejected("AccessDenied", f"signed header {missing} is missing") from None
    canonical = "\n".join(
        [
            method.upper(),
            path or "/",
            _canonical_query(query),
            header_block,
            found["headers"],
            payload,
        ]
    )
    scope = f"{found['day']}/{found['region']}/{found['service']}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (found["day"], found["region"], found["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, found["signature"]):
        raise SignatureRejected("SignatureDoesNotMatch", "the signature does not match the request")
    return Verified(found["key"], found["region"], found["service"])
