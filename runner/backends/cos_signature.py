"""The COS request signature (``q-sign-algorithm=sha1``), proven by the published vectors.

SignKey is HMAC-SHA1 of the key time under the secret key; the request is
described as ``method\\npath\\nparams\\nheaders\\n`` with parameter and header
names lower-cased and sorted and their values URL-encoded (RFC 3986: a space is
``%20``, never ``+``; only names are lower-cased, never values); the string to
sign is ``sha1\\nkeytime\\nsha1(described)\\n``. Pitfalls the reference sheet names
— a raw-bytes SignKey, a still-encoded path, lower-cased values, ``+`` for a
space — each break one of the vectors in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping


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
