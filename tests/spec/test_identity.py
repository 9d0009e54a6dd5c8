"""Spec hash, marker and description budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.spec.identity import (
    _MARKER_RE,
    Marker,
    description_budget,
    full_description,
    parse_marker,
    spec_hash,
)
from runner.spec.loader import SourceFile, parse_sources
from runner.spec.models import BatchJob


def _job(text: str) -> BatchJob:
    specs = parse_sources([SourceFile("x.yaml", text.encode())])
    assert specs.errors == []
    return specs.jobs[0].job


BASE = """apiVersion: batchctl/v1
kind: BatchJob
metadata: {name: tag-logs}
spec:
  priority: 5
  manifest: {generate: {bucket: logs, prefix: 2024/}}
  operation: {tag: {tags: {a: "1", b: "2"}}}
"""


def test_hash_ignores_formatting_key_order_defaults_and_mutable_fields() -> None:
    reordered = """kind: BatchJob
apiVersion: batchctl/v1
metadata:
  name: tag-logs
spec:
  operation:
    tag:
      tags: {b: "2", a: "1"}
  manifest:
    generate: {prefix: 2024/, bucket: logs, versions: current}
  priority: 99
  description: changed
"""
    assert spec_hash(_job(BASE)) == spec_hash(_job(reordered))


def test_hash_changes_with_immutable_fields() -> None:
    changed = BASE.replace('b: "2"', 'b: "3"')
    assert spec_hash(_job(BASE)) != spec_hash(_job(changed))


def test_repository_manifest_is_hashed_by_content() -> None:
    text = BASE.replace("{generate: {bucket: logs, prefix: 2024/}}", "{file: m.csv}")
    job = _job(text)
    assert spec_hash(job, "aa") != spec_hash(job, "bb")
    moved = _job(text.replace("m.csv", "other/m.csv"))
    assert spec_hash(job, "aa") == spec_hash(moved, "aa")


def test_marker_round_trip_and_budget() -> None:
    digest = spec_hash(_job(BASE))
    text = full_description("Tag logs", "tag-logs", digest)
    assert text == f"Tag logs [batchctl:tag-logs:{digest}]"
    found = parse_marker(text)
    assert found is not None
    assert (found.name, found.spec_hash) == ("tag-logs", digest)
    assert parse_marker("someone else's job") is None
    longest = "x" * description_budget("tag-logs")
    assert len(full_description(longest, "tag-logs", digest).encode()) == 256


_MARKERISH = st.text(alphabet="[]:batchlz0123456789abcdef-\n x", max_size=60)


@settings(max_examples=2000, deadline=None)
@given(
    head=_MARKERISH,
    name=st.text(alphabet="abz09-:A_", min_size=0, max_size=66),
    digest=st.text(alphabet="0123456789abcdefg", min_size=14, max_size=18),
    tail=st.sampled_from(["]", "]\n", "]\n\n", "] ", "", "]]"]),
)
def test_parse_marker_reads_exactly_what_the_marker_pattern_matches(
    head: str, name: str, digest: str, tail: str
) -> None:
    for text in (f"{head}[batchctl:{name}:{digest}{tail}", head + tail):
        found = _MARKER_RE.search(text)
        expected = Marker(found.group(1), found.group(2)) if found else None
        assert parse_marker(text) == expected, text
