"""Checksums as S3 prints them: base64 of the big-endian digest."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import BinaryIO, Protocol

import google_crc32c

SUPPORTED = ("CRC32", "CRC32C", "SHA1", "SHA256", "SHA512", "MD5")
_CHUNK = 1 << 20


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self.inner = google_crc32c.Checksum()  # type: ignore[no-untyped-call]

    def update(self, data: bytes, /) -> None:
        self.inner.update(data)  # type: ignore[no-untyped-call]

    def digest(self) -> bytes:
        return bytes(self.inner.digest())  # type: ignore[no-untyped-call]


def _hasher(algorithm: str) -> _Hasher:
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm == "CRC32C":
        return _Crc32c()
    names = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512", "MD5": "md5"}
    if algorithm not in names:
        raise ValueError(f"unsupported checksum algorithm {algorithm}")
    return hashlib.new(names[algorithm])


def checksum_stream(stream: BinaryIO, algorithm: str) -> str:
    """Checksum of everything ``stream`` yields, base64-encoded."""
    hasher = _hasher(algorithm)
    while chunk := stream.read(_CHUNK):
        hasher.update(chunk)
    return base64.b64encode(hasher.digest()).decode()
