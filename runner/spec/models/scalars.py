"""Scalar types with human error messages: names, regions, tags, times, cron."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
)

from runner.spec.models.base import MAX_PRIORITY


def matcher(pattern: str, message: str) -> Any:
    rx = re.compile(pattern)

    def check(value: str) -> str:
        if not rx.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


_DNS = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DnsLabel = Annotated[
    str,
    matcher(
        _DNS,
        "must be a DNS label: lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters",
    ),
    Field(json_schema_extra={"pattern": f"^{_DNS}$", "maxLength": 63}),
]

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
BucketName = Annotated[
    str,
    matcher(
        _BUCKET,
        "must be a bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
        "starting and ending with a letter or digit",
    ),
    Field(json_schema_extra={"pattern": f"^{_BUCKET}$"}),
]

ObjectKey = Annotated[str, Field(min_length=1, max_length=1024)]
KeyPrefix = Annotated[str, Field(min_length=1, max_length=512)]

_REGION = r"[a-z]{2}(-[a-z0-9]+)+"
Region = Annotated[
    str,
    matcher(_REGION, "must be a region name such as us-east-1 or ap-guangzhou"),
    Field(json_schema_extra={"pattern": f"^{_REGION}$"}),
]

_URL = r"https?://[^\s/?#]+(:[0-9]+)?(/[^\s]*)?"
EndpointUrl = Annotated[
    str,
    matcher(_URL, "must be an http:// or https:// URL"),
    Field(json_schema_extra={"pattern": f"^{_URL}$"}),
]

# Integers are integers: `true`, "10" and 10.0 are refused rather than read as 1 and 10.
Priority = Annotated[int, Field(ge=0, le=MAX_PRIORITY, strict=True)]

StorageClass = Literal[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "ARCHIVE",
]
ARCHIVE_CLASSES: frozenset[str] = frozenset({"GLACIER", "DEEP_ARCHIVE", "ARCHIVE"})

ChecksumAlgorithm = Literal["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "SHA512", "MD5"]

CannedAcl = Literal[
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
]

MAX_OBJECT_TAGS = 10
_TAG_PUNCTUATION = set("_.:/=+-@ ")


_PLAIN_TAG_TEXT = re.compile(r"[A-Za-z0-9 _.:/=+\-@]*")


def _tag_text_ok(text: str) -> bool:
    # S3's tag pattern: Unicode letters, separators and numbers, plus _.:/=+-@
    if _PLAIN_TAG_TEXT.fullmatch(text):  # the common case, without a lookup per character
        return True
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_OBJECT_TAGS:
        raise ValueError(f"at most {MAX_OBJECT_TAGS} tags per object (got {len(tags)})")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            raise ValueError(f"tag key {key!r} must be 1 to 128 characters")
        if len(value) > 256:
            raise ValueError(f"tag value of {key!r} must be at most 256 characters")
        for text in (key, value):
            if not _tag_text_ok(text):
                raise ValueError(
                    f"tag {key!r}: only letters, digits, spaces and _ . : / = + - @ are allowed"
                )
    return tags


Tags = Annotated[dict[str, str], AfterValidator(_check_tags)]


def _utc(value: datetime) -> datetime:
    # A time without a zone is read as UTC so that a campaign means the same on every runner.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]

LAST_RUN = "lastRun"
CREATED_AFTER_TAGS = frozenset({"time", LAST_RUN})


def _any_of(schema: dict[str, Any]) -> None:
    # "lastRun" is a string as a date-time is: oneOf would refuse it in editors that do
    # not check formats.
    for option in schema.get("anyOf", []):
        if "oneOf" in option:
            option["anyOf"] = option.pop("oneOf")


# A time, or `lastRun`: tagged so that a bad value gets the date-time message only.
CreatedAfter = Annotated[
    Annotated[Timestamp, Tag("time")] | Annotated[Literal["lastRun"], Tag(LAST_RUN)],
    Discriminator(lambda value: LAST_RUN if value == LAST_RUN else "time"),
]


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            "must be a cron expression of 5 fields: minute hour day-of-month month day-of-week"
        )
    if not croniter.is_valid(" ".join(fields)):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return " ".join(fields)


CronExpression = Annotated[
    str, AfterValidator(_cron), Field(json_schema_extra={"examples": ["0 3 * * *"]})
]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name such as Europe/Berlin") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone)]
